"""Measure a model's peak memory in a fresh process.

Run as ``python -m textdistill.evaluate.memory_probe MODEL_DIR TEXTS_FILE --threads N --batch-size B``:
loads the model with :func:`textdistill.models.base.load_model`, predicts every text of
``TEXTS_FILE`` (JSON lines, one string per line) in batches, and prints one JSON line
``{"peak_rss_mb": ..., "n_predicted": ...}`` to stdout. A fresh process is the only honest way to
see what serving a model costs: the measuring process already holds other models and caches.

Errors the user can act on are printed to stderr with exit status 2; others raise as usual.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from textdistill.errors import TextdistillError

_STATUS_FILE = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (2**20 bytes).

    On Linux this is ``VmHWM`` from ``/proc/self/status``. ``ru_maxrss`` is not used there
    because Linux carries the parent's peak over fork and exec into the child's ``ru_maxrss``,
    so a probe started by a process holding a big model would report that model's memory.
    Elsewhere ``ru_maxrss`` is used (bytes on macOS, KiB on other systems).
    """
    if _STATUS_FILE.is_file():
        for line in _STATUS_FILE.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # the value is in kB (KiB)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def _read_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def probe(model_dir: Path, texts_file: Path, *, threads: int | None, batch_size: int) -> dict[str, float | int]:
    """Load the model and predict every text in batches, under ``threads`` threads."""
    # Imported here so that importing this module alone stays light.
    from textdistill.evaluate.cost import limit_threads
    from textdistill.models.base import load_model
    from textdistill.progress import set_quiet

    set_quiet(True)
    texts = _read_texts(texts_file)
    n_predicted = 0
    with limit_threads(threads):
        model = load_model(model_dir)
        for start in range(0, len(texts), batch_size):
            n_predicted += len(model.predict_proba(texts[start : start + batch_size]))
    return {"peak_rss_mb": peak_rss_mb(), "n_predicted": n_predicted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m textdistill.evaluate.memory_probe", description="Measure a model's peak memory in a fresh process."
    )
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("texts_file", type=Path, help="JSON lines, one string per line")
    parser.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP/torch threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    try:
        result = probe(args.model_dir, args.texts_file, threads=args.threads, batch_size=args.batch_size)
    except TextdistillError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
