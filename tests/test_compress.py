"""Compression: ONNX export of every student kind (single- and multi-label) reproduces the torch
model within 1e-4, int8 stays an ordinary, smaller model that evaluate measures, and exported
models load and predict in a virtual environment without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_cli

from textdistill.data.labels import LabelSpace
from textdistill.errors import TextdistillError
from textdistill.models import load_model

from synthetic import synthetic

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from textdistill.compress.convert import compress_model  # noqa: E402

ROWS = synthetic(120, seed=40)
TEXTS = [t for t, _ in ROWS]
# Hierarchical labels for the multi-label models: parents come with every child.
MULTI = [(f"Intent > {label}", "Tone > polite") if i % 3 else (f"Intent > {label}",) for i, (_, label) in enumerate(ROWS)]
# The random 32-wide BERT's int8 copy moves its probe probabilities by 0.01 to 0.07, as its random
# head falls; tests about other things than the int8 tolerance allow that.
TINY_BERT_INT8_TOLERANCE = 0.1
ODD = ["", "   ", "\u2603 \u2603 zzzqqq", "refund " * 200, "Where is my parcel? It was due on Monday."]


def _label_sets(multi_label: bool):
    return MULTI if multi_label else [(label,) for _, label in ROWS]


def _finish(model, directory: Path, multi_label: bool) -> Path:
    """Random (not trained) but non-trivial weights, thresholds for multi-label, saved."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.network.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    if multi_label:
        model.thresholds = np.linspace(0.3, 0.7, len(model.label_space))
    model.save(directory, config={}, training_data={})
    return directory


def make_static(directory: Path, multi_label: bool) -> Path:
    from textdistill.students.static import StaticConfig, StaticStudent

    model = StaticStudent(StaticConfig(embeddings="hash", dim=16, hash_buckets=2048, bigram_buckets=1024, hidden=8 if multi_label else 0))
    model.label_space = LabelSpace.from_label_sets(_label_sets(multi_label), multi_label, " > ")
    model.build_network(TEXTS)
    return _finish(model, directory, multi_label)


def make_bilstm(directory: Path, multi_label: bool) -> Path:
    from textdistill.students.bilstm import BiLSTMConfig, BiLSTMStudent

    model = BiLSTMStudent(BiLSTMConfig(embeddings="hash", dim=16, hidden=8, mlp=12, hash_buckets=2048))
    model.label_space = LabelSpace.from_label_sets(_label_sets(multi_label), multi_label, " > ")
    model.build_network(TEXTS)
    return _finish(model, directory, multi_label)


def make_transformer(directory: Path, multi_label: bool, encoder_dir: Path) -> Path:
    from textdistill.models.transformer import EncoderConfig, TransformerClassifier

    model = TransformerClassifier(EncoderConfig(model=str(encoder_dir), max_length=24))
    model.label_space = LabelSpace.from_label_sets(_label_sets(multi_label), multi_label, " > ")
    model.build(str(encoder_dir), len(model.label_space))
    return _finish(model, directory, multi_label)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_encoder_dir):
    root = tmp_path_factory.mktemp("compress")
    built = {}
    for multi_label in (False, True):
        suffix = "multi" if multi_label else "single"
        built[("static", multi_label)] = make_static(root / f"static-{suffix}", multi_label)
        built[("bilstm", multi_label)] = make_bilstm(root / f"bilstm-{suffix}", multi_label)
        built[("transformer", multi_label)] = make_transformer(root / f"transformer-{suffix}", multi_label, tiny_encoder_dir)
    return built


@pytest.mark.parametrize("multi_label", [False, True], ids=["single-label", "multi-label"])
@pytest.mark.parametrize("kind", ["static", "bilstm", "transformer"])
def test_onnx_fp32_reproduces_the_torch_model(models, kind, multi_label, tmp_path):
    source = load_model(models[(kind, multi_label)])
    exported = compress_model(models[(kind, multi_label)], tmp_path / "onnx")
    assert exported.kind == "onnx" and exported.precision == "fp32"
    texts = TEXTS[:40] + ODD
    np.testing.assert_allclose(exported.predict_proba(texts), source.predict_proba(texts), atol=1e-4)
    np.testing.assert_allclose(exported.decision_function(texts), source.decision_function(texts), atol=1e-4)
    assert exported.predict(texts) == source.predict(texts)
    manifest = exported.manifest
    assert manifest.labels == source.manifest.labels and manifest.thresholds == source.manifest.thresholds
    assert manifest.config["compression"]["source_kind"] == kind
    assert manifest.config["compression"]["fp32_max_abs_diff"] <= 1e-4
    if multi_label:  # the graph itself applies the sigmoid: rows do not sum to one
        assert not np.allclose(exported.predict_proba(texts).sum(axis=1), 1.0)


@pytest.mark.parametrize("kind", ["static", "bilstm", "transformer"])
def test_int8_is_a_smaller_ordinary_model_that_evaluate_measures(models, kind, tmp_path):
    from textdistill.evaluate.evaluation import CostSettings, evaluate_model
    from textdistill.evaluate.report.tables import compression_table

    from textdistill.data.messages import MessageSet

    fp32 = compress_model(models[(kind, False)], tmp_path / "fp32")
    int8 = compress_model(models[(kind, False)], tmp_path / "int8", int8=True, int8_tolerance=TINY_BERT_INT8_TOLERANCE)
    assert int8.precision == "int8" and int8.manifest.config["compression"]["int8_nodes"]
    int8_bytes, fp32_bytes = ((tmp_path / name / "model.onnx").stat().st_size for name in ("int8", "fp32"))
    # Weights shrink about 4x; in the 32-wide BERT the per-node scales and quantize nodes weigh too.
    assert int8_bytes < (0.9 if kind == "transformer" else 0.5) * fp32_bytes
    a, b = fp32.predict_proba(TEXTS), int8.predict_proba(TEXTS)
    assert np.abs(a - b).max() < (TINY_BERT_INT8_TOLERANCE if kind == "transformer" else 0.05)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.9

    test = MessageSet(TEXTS[:30], [f"t{i}" for i in range(30)], [(label,) for _, label in ROWS[:30]], list(range(1, 31)), "synthetic", False)
    cost = CostSettings(latency_samples=5, warmup=1, min_messages=30, repeats=1, threads=1)
    evaluations = [evaluate_model(directory, test, cost=cost) for directory in (models[(kind, False)], tmp_path / "int8")]
    assert evaluations[1]["kind"] == "onnx" and evaluations[1]["compression"]["precision"] == "int8"
    assert evaluations[1]["size_mb"] < evaluations[0]["size_mb"] or kind == "transformer"  # the tiny BERT's tokenizer files dominate
    table = compression_table(evaluations)
    (row,) = table.rows
    assert row[0] == evaluations[1]["name"] and row[2] == evaluations[0]["name"]
    assert row[3] == f"{100 * (evaluations[1]['accuracy'] - evaluations[0]['accuracy']):+.2f} pts"


def test_early_exit_and_baseline_are_refused_with_what_to_do(tmp_path):
    from textdistill.models import TfidfBaseline

    baseline = TfidfBaseline().fit(TEXTS, [(label,) for _, label in ROWS], multi_label=False)
    baseline.save(tmp_path / "baseline", config={}, training_data={})
    with pytest.raises(TextdistillError, match="scikit-learn model and already needs no torch"):
        compress_model(tmp_path / "baseline", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_onnx_sessions_follow_the_thread_limit(models, tmp_path):
    from textdistill.threads import limit_threads

    exported = compress_model(models[("static", False)], tmp_path / "onnx")
    with limit_threads(1):
        assert exported.session().get_session_options().intra_op_num_threads == 1
        expected = exported.predict_proba(TEXTS[:5])
    with limit_threads(2):
        assert exported.session().get_session_options().intra_op_num_threads == 2
        np.testing.assert_array_equal(exported.predict_proba(TEXTS[:5]), expected)


# Just what a torch-free deployment of a static or ONNX model needs; textdistill comes from the source tree.
RUNTIME_PACKAGES = ("numpy", "tokenizers", "onnxruntime", "safetensors", "rich", "threadpoolctl")


@pytest.mark.slow
def test_static_and_onnx_models_predict_in_a_virtual_environment_without_torch(models, tmp_path):
    directories = {"static": models[("static", True)]}
    for kind in ("static", "bilstm", "transformer"):
        directories[f"{kind}-onnx"] = tmp_path / f"{kind}-onnx"
        compress_model(models[(kind, True)], directories[f"{kind}-onnx"])
    directories["transformer-int8"] = tmp_path / "transformer-int8"
    compress_model(models[("transformer", True)], directories["transformer-int8"], int8=True, int8_tolerance=TINY_BERT_INT8_TOLERANCE)
    texts = TEXTS[:20] + ODD
    expected = {name: load_model(d).predict_proba(texts) for name, d in directories.items()}
    labels = {name: load_model(d).predict(texts) for name, d in directories.items()}

    environment = tmp_path / "venv"
    # This environment's pip installs into the new one: bootstrapping a pip of its own (ensurepip)
    # costs seconds and is not what the test is about.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True)
    python = str(environment / "bin" / "python")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", *RUNTIME_PACKAGES], capture_output=True, text=True, timeout=500
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    script = """
import importlib.util, json, sys
assert importlib.util.find_spec("torch") is None and importlib.util.find_spec("transformers") is None
import textdistill
directories, texts = json.loads(sys.stdin.read())
out = {}
for name, directory in directories.items():
    model = textdistill.load(directory)
    out[name] = {"proba": model.predict_proba(texts).tolist(), "labels": model.predict(texts)}
assert "torch" not in sys.modules
print(json.dumps(out))
"""
    source = Path(__file__).resolve().parents[1] / "src"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [python, "-c", script], input=json.dumps([{k: str(v) for k, v in directories.items()}, texts]),
        capture_output=True, text=True, timeout=300, env={**env, "PYTHONPATH": str(source)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    for name in directories:
        np.testing.assert_allclose(np.array(result[name]["proba"]), expected[name], atol=1e-6)
        assert result[name]["labels"] == labels[name]


def test_compress_evaluate_report_from_the_command_line(models, tmp_path):
    import csv

    data = tmp_path / "test.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *ROWS[:40]])
    source = models[("static", False)]

    def cli(*args):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        return done

    refused = run_cli("compress", source, "--out", tmp_path / "x")
    assert refused.returncode == 2 and "--onnx" in refused.stderr and "Traceback" not in refused.stderr
    assert "int8 ONNX model" in cli("compress", source, "--onnx", "--int8", "--out", tmp_path / "int8").stdout
    for name, directory in (("fp32", source), ("int8", tmp_path / "int8")):
        cli("evaluate", directory, "--data", data, "--json", tmp_path / "eval" / f"{name}.json", "--threads", "1", "--latency-samples", "5", "--quiet")
    cli("report", tmp_path / "eval", "--out", tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    section = report[report.index("## Compression") :]
    assert "| int8 | int8 | static-single |" in section and " pts |" in section


@pytest.mark.slow
def test_an_exported_model_is_served_with_its_own_answers(models, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from test_serve import start_server, wait_ready

    exported = compress_model(models[("bilstm", True)], tmp_path / "onnx", int8=True)
    server = start_server(tmp_path / "onnx", tmp_path / "serve.log")
    try:
        wait_ready(server)
        texts = TEXTS[:12]
        answer = httpx.post(f"{server.url}/predict", json={"messages": [{"id": i, "text": t} for i, t in enumerate(texts)]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert [sorted(r["labels"]) for r in answer.json()["results"]] == [sorted(labels) for labels in exported.predict(texts)]
        assert httpx.get(f"{server.url}/model", timeout=5).json()["kind"] == "onnx"
    finally:
        server.stop()


def test_the_int8_tolerance_is_a_setting_recorded_in_the_manifest_and_refuses_more_change(models, tmp_path):
    from textdistill.compress import INT8_TOLERANCE

    source = models[("bilstm", False)]
    int8 = compress_model(source, tmp_path / "int8", int8=True)
    compression = int8.manifest.config["compression"]
    assert INT8_TOLERANCE == 0.03 and compression["int8_tolerance"] == INT8_TOLERANCE and compression["fp32_tolerance"] == 1e-4
    change = compression["int8_max_abs_diff"]
    assert 0 < change <= INT8_TOLERANCE
    # a tolerance below the change it measures: refused, nothing written, and it says what to do
    with pytest.raises(TextdistillError) as refused:
        compress_model(source, tmp_path / "strict", int8=True, int8_tolerance=change / 2)
    assert f"up to {change:.3g} on the probe texts, more than the int8 tolerance of {change / 2:g}" in str(refused.value)
    assert "--int8-tolerance" in str(refused.value) and "--onnx without --int8" in str(refused.value)
    assert not (tmp_path / "strict").exists()
    loose = compress_model(source, tmp_path / "loose", int8=True, int8_tolerance=0.5)
    assert loose.manifest.config["compression"]["int8_tolerance"] == 0.5
    for bad in (0.0, -0.1, float("nan"), 2.0):
        with pytest.raises(TextdistillError, match="int8 tolerance"):
            compress_model(source, tmp_path / "bad", int8=True, int8_tolerance=bad)


def test_the_int8_tolerance_from_the_command_line_and_the_run_config(models, tmp_path):
    from textdistill.pipeline import RunConfig

    refused = run_cli("compress", models[("static", False)], "--int8", "--int8-tolerance", "1e-12", "--out", tmp_path / "x")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "more than the int8 tolerance of 1e-12" in refused.stderr and not (tmp_path / "x").exists()
    raw = {"data": {"train": "t.csv", "test": "t.csv"}, "compress": {"models": ["static"], "int8_tolerance": 0.05}}
    assert RunConfig.from_dict(raw).compress.int8_tolerance == 0.05
    assert RunConfig.from_dict({"data": raw["data"]}).compress.int8_tolerance == 0.03
    for bad in (0, "0.05", 1.5):
        with pytest.raises(ValueError, match="int8_tolerance is a largest probability change"):
            RunConfig.from_dict({**raw, "compress": {"int8_tolerance": bad}})
