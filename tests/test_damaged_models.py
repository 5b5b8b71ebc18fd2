"""Damaged saved models, transfer sets and prediction shards: one clear error that names the
file and what is wrong (a ModelError or DataError, exit code 2 from the CLI, no traceback), or a
model identical to the one saved. Never a traceback, never a hub download, never a wrong model."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import textdistill
from textdistill.data.labels import LabelSpace
from textdistill.errors import DataError, ModelError
from textdistill.models import TfidfBaseline

from synthetic import message_set, synthetic, write_messages

torch = pytest.importorskip("torch")

ROWS = synthetic(120, seed=50)
TEXTS = [t for t, _ in ROWS]
LABEL_SETS = [(label,) for _, label in ROWS]
PROBE = TEXTS[:20] + ["", "zzz qqq", "refund " * 50]


def _randomise_and_save(model, directory: Path) -> Path:
    """Random (untrained) but non-trivial weights, saved: damage does not need a good model."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.network.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model.save(directory, config={}, training_data={})


def _make_baseline(directory: Path, encoder_dir: Path) -> Path:
    return TfidfBaseline().fit(TEXTS, LABEL_SETS, multi_label=False).save(directory)


def _make_static(directory: Path, encoder_dir: Path) -> Path:
    from textdistill.students.static import StaticConfig, StaticStudent

    model = StaticStudent(StaticConfig(embeddings="hash", dim=16, hash_buckets=1024, bigram_buckets=256))
    model.label_space = LabelSpace.from_label_sets(LABEL_SETS, False)
    model.build_network(TEXTS)
    return _randomise_and_save(model, directory)


def _make_bilstm(directory: Path, encoder_dir: Path) -> Path:
    from textdistill.students.bilstm import BiLSTMConfig, BiLSTMStudent

    model = BiLSTMStudent(BiLSTMConfig(embeddings="hash", dim=16, hidden=8, mlp=12, hash_buckets=1024))
    model.label_space = LabelSpace.from_label_sets(LABEL_SETS, False)
    model.build_network(TEXTS)
    return _randomise_and_save(model, directory)


def _make_transformer(directory: Path, encoder_dir: Path) -> Path:
    from textdistill.models.transformer import EncoderConfig, TransformerClassifier

    model = TransformerClassifier(EncoderConfig(model=str(encoder_dir), max_length=24))
    model.label_space = LabelSpace.from_label_sets(LABEL_SETS, False)
    model.build(str(encoder_dir), len(model.label_space))
    return _randomise_and_save(model, directory)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_encoder_dir) -> dict[str, Path]:
    """One small saved model of each kind (and an ONNX copy of the static one), made once."""
    root = tmp_path_factory.mktemp("models")
    made = {
        name: make(root / name, tiny_encoder_dir)
        for name, make in [("baseline", _make_baseline), ("static", _make_static), ("bilstm", _make_bilstm), ("transformer", _make_transformer)]
    }
    pytest.importorskip("onnxruntime")
    from textdistill.compress.convert import compress_model

    compress_model(made["static"], root / "onnx")
    made["onnx"] = root / "onnx"
    return made


@pytest.fixture(scope="module")
def expected(models) -> dict[str, np.ndarray]:
    """Each intact model's probabilities on the probe texts."""
    return {name: textdistill.load(directory).predict_proba(PROBE) for name, directory in models.items()}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection (a hub download, say) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a saved model tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- the damage classes --------------------------------------------------------------------
WEIGHTS = {"baseline": "weights.safetensors", "static": "weights.safetensors", "bilstm": "bilstm.safetensors", "transformer": "head.safetensors"}
LABEL_AXIS = {"baseline": ("weights", 1), "static": ("head.weight", 0), "bilstm": ("head.4.weight", 0), "transformer": ("weight", 0)}


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def _edit_manifest(directory: Path, edit: Callable[[dict], object]) -> None:
    """Write ``edit(manifest)`` in place of the manifest."""
    (directory / "manifest.json").write_text(json.dumps(edit(_manifest(directory))), encoding="utf-8")


def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _one_label_fewer(kind: str) -> Callable[[Path], None]:
    """Replace the weights by ones for a label fewer: a file that reads, with the wrong shape."""

    def damage(directory: Path) -> None:
        path = directory / WEIGHTS[kind]
        arrays = load_file(str(path))
        name, axis = LABEL_AXIS[kind]
        arrays[name] = np.ascontiguousarray(np.delete(arrays[name], -1, axis=axis))
        save_file(arrays, str(path))

    return damage


WEIGHT_KINDS = ["baseline", "static", "bilstm", "transformer"]
VOCABULARY_KINDS = ["baseline", "static", "bilstm", "onnx"]
# (case, kinds, damage, whether it removes a file, path the message names, what it says without checksums)
CASES = [
    ("truncated safetensors", WEIGHT_KINDS, lambda d, k: _truncate(d / WEIGHTS[k]), False, lambda k: WEIGHTS[k], "safetensors|cut short"),
    ("empty safetensors", WEIGHT_KINDS, lambda d, k: (d / WEIGHTS[k]).write_bytes(b""), False, lambda k: WEIGHTS[k], "safetensors|cut short"),
    ("missing weights", WEIGHT_KINDS, lambda d, k: (d / WEIGHTS[k]).unlink(), True, lambda k: WEIGHTS[k], "is missing"),
    ("wrong weight shape", WEIGHT_KINDS, lambda d, k: _one_label_fewer(k)(d), False, lambda k: WEIGHTS[k], "shape|size mismatch"),
    ("missing vocabulary", VOCABULARY_KINDS, lambda d, k: (d / "vocabulary.json").unlink(), True, lambda k: "vocabulary.json", "is missing"),
    ("truncated vocabulary", VOCABULARY_KINDS, lambda d, k: _truncate(d / "vocabulary.json"), False, lambda k: "vocabulary.json", "not valid JSON"),
    ("truncated ONNX graph", ["onnx"], lambda d, k: _truncate(d / "model.onnx"), False, lambda k: "model.onnx", "ONNX Runtime"),
    ("transformer without encoder/", ["transformer"], lambda d, k: shutil.rmtree(d / "encoder"), True, lambda k: "encoder", "is missing"),
    ("encoder/ without config.json", ["transformer"], lambda d, k: (d / "encoder" / "config.json").unlink(), True, lambda k: "encoder", "lacks config.json"),
    ("truncated tokenizer", ["transformer"], lambda d, k: _truncate(d / "encoder" / "tokenizer.json"), False, lambda k: "encoder", "cannot be read"),
]
MANIFEST_CASES = [
    ("manifest a JSON array", lambda m: [m], "holds an array, not the JSON object"),
    ("kind a list", lambda m: {**m, "kind": [m["kind"]]}, "kind = .* must be a string"),
    ("missing labels", lambda m: _without(m, "labels"), "lacks the field.*labels"),
    ("format_version a string", lambda m: {**m, "format_version": "1"}, "format_version '1'.*whole number"),
    ("labels not strings", lambda m: {**m, "labels": [1, 2]}, "labels that are not a list of distinct strings"),
    # As from a newer textdistill with a new kind (its checksums would be valid; these are left out).
    ("unknown kind", lambda m: {**_without(m, "checksums"), "kind": "telepathy"}, r"'telepathy'.*known: baseline, bilstm, early_exit, onnx, static, transformer"),
]
ALL_KINDS = ["baseline", "static", "bilstm", "transformer", "onnx"]


def _damaged_copy(models, kind: str, tmp_path: Path, checksums: bool) -> Path:
    directory = tmp_path / kind
    shutil.copytree(models[kind], directory)
    if not checksums:  # as a model saved before textdistill recorded checksums
        _edit_manifest(directory, lambda m: _without(m, "checksums"))
    return directory


def _params(cases, kinds_at: int):
    return [pytest.param(case, kind, id=f"{case[0]}-{kind}") for case in cases for kind in case[kinds_at]]


@pytest.mark.parametrize("checksums", [True, False], ids=["checksummed", "unchecked"])
@pytest.mark.parametrize("case,kind", _params(CASES, 1))
def test_each_damaged_file_is_one_error_naming_it(models, case, kind, checksums, tmp_path, no_network):
    _, _, damage, removes, named, says = case
    directory = _damaged_copy(models, kind, tmp_path, checksums)
    damage(directory, kind)
    with pytest.raises(ModelError) as caught:
        textdistill.load(directory)
    message = str(caught.value)
    assert str(directory / named(kind)) in message and "What to do:" in message
    # With checksums a changed file is found before it is read; without, the reader's own check says what is wrong.
    if checksums:
        says = "is missing" if removes else "does not match the sha256"
    assert re.search(says, message), message


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("case", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_each_damaged_manifest_is_one_error_naming_it(models, case, kind, tmp_path):
    _, edit, says = case
    directory = _damaged_copy(models, kind, tmp_path, checksums=True)
    _edit_manifest(directory, edit)
    with pytest.raises(ModelError, match=says) as caught:
        textdistill.load(directory)
    assert str(directory / "manifest.json") in str(caught.value)


def test_a_manifest_edited_by_hand_is_refused_until_its_checksums_are_removed(models, tmp_path):
    directory = _damaged_copy(models, "static", tmp_path, checksums=True)
    _edit_manifest(directory, lambda m: {**m, "config": {**m["config"], "static": {**m["config"]["static"], "max_tokens": 3}}})
    with pytest.raises(ModelError, match='altered or damaged.*\n.*delete its "checksums" entry'):
        textdistill.load(directory)
    _edit_manifest(directory, lambda m: _without(m, "checksums"))
    assert textdistill.load(directory).config.max_tokens == 3


def test_checksums_list_the_model_files_and_not_a_training_checkpoint(models, tmp_path):
    directory = tmp_path / "static"
    shutil.copytree(models["static"], directory)
    model = textdistill.load(directory)
    (directory / "checkpoint").mkdir()
    (directory / "checkpoint" / "state.pt").write_bytes(b"left by training")
    model.save(directory)  # in place: the files are rewritten, the checkpoint is not the model's
    assert sorted(_manifest(directory)["checksums"]["files"]) == ["vocabulary.json", "weights.safetensors"]
    shutil.rmtree(directory / "checkpoint")
    textdistill.load(directory)
    onnx = textdistill.load(models["onnx"])
    onnx.save(tmp_path / "onnx", config=onnx.manifest.config, training_data={})
    onnx_again = textdistill.load(tmp_path / "onnx")
    onnx_again.save(tmp_path / "onnx", config=onnx.manifest.config, training_data={})  # the graph is not copied onto itself
    assert "model.onnx" in _manifest(tmp_path / "onnx")["checksums"]["files"]


def test_models_saved_without_checksums_still_load_the_same(models, expected, tmp_path):
    for kind in ALL_KINDS:
        directory = _damaged_copy(models, kind, tmp_path, checksums=False)
        np.testing.assert_array_equal(textdistill.load(directory).predict_proba(PROBE), expected[kind])


# -- random damage -------------------------------------------------------------------------
PROPERTY_KINDS = ["static", "bilstm", "onnx"]


def _model_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _damage_randomly(data, directory: Path) -> None:
    """Cut one of the model's files short, or overwrite one of its bytes with another value."""
    path = directory / data.draw(st.sampled_from(_model_files(directory)), label="file")
    content = bytearray(path.read_bytes())
    if data.draw(st.booleans(), label="truncate"):
        content = content[: data.draw(st.integers(0, len(content) - 1), label="length")]
    else:
        position = data.draw(st.integers(0, len(content) - 1), label="position")
        content[position] = data.draw(st.integers(0, 255).filter(lambda b: b != content[position]), label="byte")
    path.write_bytes(bytes(content))


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_truncation_or_byte_flip_is_a_clear_error_or_the_same_model(models, expected, tmp_path_factory, data):
    """Cut any file of a static, BiLSTM or ONNX model short, or overwrite one of its bytes: it
    loads as the same model (identical probabilities), or loading raises a ModelError.

    Checkable strictly because each saved model records the sha256 of every file it wrote and of
    its manifest's parsed fields: any change to a weight, vocabulary or graph byte is a checksum
    error, and a change to the manifest is invisible to JSON (whitespace between tokens), changes
    a field and is refused, or garbles the "checksums" key itself, leaving every other byte as
    saved. For models saved without checksums see the next test.
    """
    kind = data.draw(st.sampled_from(PROPERTY_KINDS), label="kind")
    directory = tmp_path_factory.mktemp("damaged") / kind
    shutil.copytree(models[kind], directory)
    _damage_randomly(data, directory)
    try:
        model = textdistill.load(directory)
    except ModelError as error:
        assert str(directory) in str(error)
        event(f"refused: {kind}")
        return
    event(f"loaded unchanged: {kind}")
    np.testing.assert_array_equal(model.predict_proba(PROBE), expected[kind])


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_to_a_model_without_checksums_is_a_clear_error_or_a_working_model(models, tmp_path_factory, data):
    """The same damage to a model saved before textdistill recorded checksums: a byte changed
    inside a float weight gives a valid, different model, which nothing can tell from the
    original. What holds is that loading raises a ModelError naming the directory, or the model
    loads and predicts one probability per label for every message; never another exception."""
    kind = data.draw(st.sampled_from(PROPERTY_KINDS), label="kind")
    directory = tmp_path_factory.mktemp("unchecked") / kind
    shutil.copytree(models[kind], directory)
    _edit_manifest(directory, lambda m: _without(m, "checksums"))
    _damage_randomly(data, directory)
    try:
        model = textdistill.load(directory)
    except ModelError as error:
        assert str(directory) in str(error)
        event(f"refused: {kind}")
        return
    event(f"loaded: {kind}")
    assert model.predict_proba(PROBE).shape == (len(PROBE), len(model.label_space))


# -- the CLI and the service ---------------------------------------------------------------
def _serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``textdistill serve ARGS`` in a process of its own: were the model not refused, the
    server would start, and the timeout ends it."""
    # Wide enough that the console does not wrap the paths it prints.
    env = {**os.environ, "COLUMNS": "2000"}
    return subprocess.run([sys.executable, "-m", "textdistill", "serve", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_the_cli_says_which_file_is_damaged_without_a_traceback(models, tmp_path):
    static = _damaged_copy(models, "static", tmp_path, checksums=False)
    _truncate(static / "weights.safetensors")
    transformer = _damaged_copy(models, "transformer", tmp_path, checksums=True)
    shutil.rmtree(transformer / "encoder")
    data = tmp_path / "test.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "label"), *ROWS[:10]])
    runs = {
        "evaluate": (run_cli("evaluate", str(static), "--data", str(data), "--json", str(tmp_path / "r.json"), "--no-cost"), static / "weights.safetensors"),
        "predict": (run_cli("predict", str(transformer), "--data", str(data), "--out", str(tmp_path / "p")), transformer / "encoder"),
    }
    for command, (result, named) in runs.items():
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        output = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
        assert "Traceback" not in result.stderr and str(named) in output, (command, output)


def test_serve_refuses_a_damaged_model_at_start(models, tmp_path):
    pytest.importorskip("fastapi")
    directory = _damaged_copy(models, "baseline", tmp_path, checksums=True)
    _edit_manifest(directory, lambda m: {**m, "kind": ["baseline"]})
    result = _serve(str(directory), "--port", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "must be a string" in " ".join((result.stdout + result.stderr).split())


# -- damaged shards ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def baseline_dir(models) -> Path:
    return models["baseline"]


def _cut_shard(path: Path) -> None:
    _truncate(path, keep=0.6)


def test_a_truncated_prediction_shard_is_named_and_a_rerun_after_deleting_it_completes(baseline_dir, tmp_path):
    from textdistill.predict import Predictions, predict_files

    texts = [t for t, _ in synthetic(50, seed=51)]
    data = write_messages(tmp_path / "in.csv", texts)
    predict_files(baseline_dir, data, tmp_path / "clean", shard_size=16)
    predict_files(baseline_dir, data, tmp_path / "p", shard_size=16)
    shard = tmp_path / "p" / "shards" / "part-00000-00001.parquet"
    _cut_shard(shard)
    for attempt in (lambda: Predictions.load(tmp_path / "p"), lambda: predict_files(baseline_dir, data, tmp_path / "p", shard_size=16)):
        with pytest.raises(DataError) as caught:
            attempt()
        message = str(caught.value)
        assert str(shard) in message and f"delete {shard}" in message and "textdistill predict" in message
    shard.unlink()
    predict_files(baseline_dir, data, tmp_path / "p", shard_size=16)
    resumed, clean = Predictions.load(tmp_path / "p"), Predictions.load(tmp_path / "clean")
    assert resumed.ids == clean.ids and resumed.label_sets == clean.label_sets and len(resumed) == 50
    np.testing.assert_array_equal(resumed.logits, clean.logits)


def test_a_truncated_transfer_set_shard_is_named_and_a_rerun_after_deleting_it_completes(baseline_dir, tmp_path):
    from textdistill.transfer import TransferSet, label_messages

    messages = message_set([t for t, _ in synthetic(50, seed=52)])
    clean = label_messages(baseline_dir, messages, tmp_path / "clean", shard_size=16)
    label_messages(baseline_dir, messages, tmp_path / "t", shard_size=16)
    shard = tmp_path / "t" / "shards" / "part-00002.parquet"
    _cut_shard(shard)
    for attempt in (lambda: TransferSet.load(tmp_path / "t"), lambda: label_messages(baseline_dir, messages, tmp_path / "t", shard_size=16)):
        with pytest.raises(DataError) as caught:
            attempt()
        message = str(caught.value)
        assert str(shard) in message and f"delete {shard}" in message and "textdistill label" in message
    shard.unlink()
    resumed = label_messages(baseline_dir, messages, tmp_path / "t", shard_size=16)
    assert resumed.ids == clean.ids and len(resumed) == 50
    np.testing.assert_array_equal(resumed.logits, clean.logits)

