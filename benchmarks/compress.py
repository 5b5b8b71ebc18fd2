"""Benchmark: ONNX fp32 and int8 copies of the BANKING77 students against the students themselves.

    python benchmarks/compress.py [--students static bilstm minilm-l6] [--threads 2] [--repeats 3]

Needs the students of benchmarks/students.py in ``runs/banking77/student-NAME``. Each is
compressed with `textdistill compress --onnx` and `--onnx --int8`; the student and both copies
are evaluated on the test set in one run with the same thread count (cost: median of
``--repeats`` evaluations), and one report is built (its Compression table). Prints accuracy,
its change against the student, batch-1 latency, messages/s at batch 256, peak memory and size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import CLI, evaluate, run

HERE = Path(__file__).resolve().parent
VARIANTS = {"onnx": ["--onnx"], "int8": ["--onnx", "--int8"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "banking77")
    parser.add_argument("--students", nargs="+", default=["static", "bilstm", "minilm-l6"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    evaluations = args.runs / "compress-eval"
    evaluations.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for student in args.students:
        source = args.runs / f"student-{student}"
        if not (source / "manifest.json").exists():
            raise SystemExit(f"{source} is missing: run benchmarks/students.py first")
        models = {student: source}
        for variant, flags in VARIANTS.items():
            out = args.runs / "compressed" / f"{student}-{variant}"
            if not (out / "manifest.json").exists():
                run([*CLI, "compress", str(source), *flags, "--out", str(out)])
            models[f"{student}-{variant}"] = out
        for name, path in models.items():
            results[name] = evaluate(path, args.data / "test.csv", evaluations, name, args.threads, args.repeats) | {"student": student}
    run([*CLI, "report", *(str(evaluations / f"{name}.json") for name in results), "--out", str(args.runs / "compress-report"), "--title", "BANKING77: students, ONNX and int8"])
    print("| model | accuracy | change | ms/msg p50 | msgs/s (batch 256) | peak MB | size MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        base = results[r["student"]]
        print(
            f"| {name} | {r['accuracy']:.4f} | {100 * (r['accuracy'] - base['accuracy']):+.2f} pts | {r['latency_ms_p50']:.2f} | "
            f"{r['throughput_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | {r['size_mb']:.1f} |"
        )


if __name__ == "__main__":
    main()
