"""The Ray engine: same output as the local engine (reading files in Ray tasks for predictions),
a bad row read by Ray, a killed worker, resuming, the CLI, no Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import crashing_model
import numpy as np
import pyarrow.parquet as pq
import pytest
from stopping_engine import StopsAfter
from synthetic import message_set, requests, synthetic, write_messages
from typer.testing import CliRunner

from textdistill.cli import app
from textdistill.data.messages import DataSpec
from textdistill.engines import make_engine
from textdistill.engines.ray_engine import RayEngine, plan_actors
from textdistill.errors import DataError, TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.predict import Predictions, predict_files
from textdistill.shards import shard_path
from textdistill.transfer import AugmentConfig, label_messages

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'textdistill[ray]')")
pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One local Ray for the module; its workers can import the test-only model kind."""
    crashing_model.register()
    python_path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": python_path}, "worker_process_setup_hook": "crashing_model.register"},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def teacher_dir(tiny_encoder_dir, tmp_path_factory) -> Path:
    """A tiny random transformer teacher: torch in the actors, as with a real teacher."""
    from textdistill.models.transformer import EncoderConfig, TransformerClassifier
    from textdistill.training.arguments import TrainingArguments

    rows = synthetic(60, seed=0)
    model = TransformerClassifier(
        EncoderConfig(model=str(tiny_encoder_dir), max_length=32), training=TrainingArguments(epochs=0, linear_probe=False)
    )
    model.fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False)
    return model.save(tmp_path_factory.mktemp("teacher") / "model")


@pytest.fixture(scope="module")
def multi_label_dir(tmp_path_factory) -> Path:
    rows, extra = synthetic(120, seed=1), synthetic(120, seed=2)
    texts = [a + " Also, " + b for (a, _), (b, _) in zip(rows, extra)]
    label_sets = [tuple(sorted({la, lb})) for (_, la), (_, lb) in zip(rows, extra)]
    return TfidfBaseline().fit(texts, label_sets, multi_label=True).save(tmp_path_factory.mktemp("multi") / "model")


@pytest.fixture(scope="module")
def messages():
    return message_set([t for t, _ in synthetic(230, seed=3)])


BAD_ROW = 7  # of b.jsonl: an empty text


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    """Three files of three formats: 100, 70 (one of them bad) and 60 messages."""
    folder = tmp_path / "in"
    folder.mkdir()
    jsonl = requests(70, 5)
    jsonl[BAD_ROW - 1] = ""
    return [write_messages(folder / "a.csv", requests(100, 4)), write_messages(folder / "b.jsonl", jsonl), write_messages(folder / "c.parquet", requests(60, 6))]


def shard_names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "shards").iterdir())


def assert_same_predictions(first: Predictions, second: Predictions) -> None:
    """The same rows (ids, texts, files, rows, label sets) in the same order, logits within 1e-5."""
    assert len(first.ids) == len(set(first.ids))
    assert (first.ids, first.texts, first.files, first.rows) == (second.ids, second.texts, second.files, second.rows)
    assert first.label_sets == second.label_sets
    np.testing.assert_allclose(first.logits, second.logits, atol=1e-5, rtol=0)


def test_label_on_ray_equals_local_with_augmentation(teacher_dir, messages, tmp_path):
    options = {"augment": AugmentConfig(methods=("mask", "ngram"), factor=1), "shard_size": 50, "batch_size": 16}
    local = label_messages(teacher_dir, messages, tmp_path / "local", **options)
    on_ray = label_messages(teacher_dir, messages, tmp_path / "ray", **options, engine=RayEngine())
    assert len(local) > len(messages) and "mask" in local.origins  # augmented rows were scored too
    assert on_ray.ids == local.ids and len(set(on_ray.ids)) == len(on_ray.ids)
    assert on_ray.texts == local.texts and on_ray.origins == local.origins and on_ray.source_ids == local.source_ids
    np.testing.assert_allclose(on_ray.logits, local.logits, atol=1e-5, rtol=0)
    assert on_ray.manifest["counts"] == local.manifest["counts"]
    assert shard_names(tmp_path / "ray") == shard_names(tmp_path / "local")
    schema = pq.read_schema(shard_path(tmp_path / "ray", 0))
    assert schema.equals(pq.read_schema(shard_path(tmp_path / "local", 0)), check_metadata=True)


def test_predict_on_ray_reads_the_files_and_equals_local(multi_label_dir, inputs, tmp_path):
    options = {"spec": DataSpec(skip_bad_rows=True), "shard_size": 32}
    local_counts = predict_files(multi_label_dir, inputs, tmp_path / "local", **options)["counts"]
    ray_counts = predict_files(multi_label_dir, inputs, tmp_path / "ray", **options, engine=RayEngine(actors=2))["counts"]
    local, on_ray = Predictions.load(tmp_path / "local"), Predictions.load(tmp_path / "ray")
    assert_same_predictions(on_ray, local)
    assert ray_counts == local_counts and [f["skipped_rows"] for f in ray_counts["files"]] == [0, 1, 0]
    assert len(on_ray.ids) == 229 and on_ray.files[100:102] == [str(inputs[1])] * 2 and BAD_ROW not in on_ray.rows[100:169]
    model = load_model(multi_label_dir)
    assert on_ray.label_sets == model.predict_label_sets(on_ray.texts)
    assert {len(s) for s in on_ray.label_sets} - {1}  # multi-label: some messages get several or none
    assert shard_names(tmp_path / "ray") == shard_names(tmp_path / "local") and len(shard_names(tmp_path / "ray")) == 4 + 3 + 2
    for key in [(0, 0), (1, 2)]:
        schema = pq.read_schema(shard_path(tmp_path / "ray", key))
        assert schema.equals(pq.read_schema(shard_path(tmp_path / "local", key)), check_metadata=True)


def test_a_bad_row_read_by_ray_stops_it_with_the_local_engines_message(multi_label_dir, inputs, tmp_path):
    with pytest.raises(DataError) as local:
        predict_files(multi_label_dir, inputs, tmp_path / "local", shard_size=32)
    with pytest.raises(DataError) as on_ray:
        predict_files(multi_label_dir, inputs, tmp_path / "ray", shard_size=32, engine=RayEngine(actors=1))
    assert str(on_ray.value) == str(local.value)
    assert str(on_ray.value).startswith(f"{inputs[1]}, row {BAD_ROW}, column 'text': the message text is empty\n  What to do:")


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(tmp_path, messages):
    rows = synthetic(100, seed=4)
    model_dir = crashing_model.CrashOnce().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False).save(tmp_path / "model")
    assert load_model(model_dir).kind == crashing_model.KIND

    on_ray = label_messages(model_dir, messages, tmp_path / "ray", shard_size=40, engine=RayEngine(actors=2))
    assert (model_dir / crashing_model.MARKER).exists()  # an actor died on its first shard
    local = label_messages(model_dir, messages, tmp_path / "local", shard_size=40)  # the marker is there: no crash
    assert sorted(on_ray.ids) == sorted(messages.ids) and len(on_ray.ids) == len(set(on_ray.ids))
    assert on_ray.ids == local.ids and on_ray.texts == local.texts
    np.testing.assert_allclose(on_ray.logits, local.logits, atol=1e-5, rtol=0)


def test_a_worker_killed_mid_prediction_loses_and_duplicates_no_row(tmp_path, inputs):
    rows = synthetic(100, seed=4)
    model_dir = crashing_model.CrashOnce().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False).save(tmp_path / "model")
    spec = DataSpec(skip_bad_rows=True)
    predict_files(model_dir, inputs, tmp_path / "ray", spec=spec, shard_size=40, engine=RayEngine(actors=2))
    assert (model_dir / crashing_model.MARKER).exists()  # an actor died on its first batch
    predict_files(model_dir, inputs, tmp_path / "local", spec=spec, shard_size=40)  # the marker is there: no crash
    assert_same_predictions(Predictions.load(tmp_path / "ray"), Predictions.load(tmp_path / "local"))


class Recording(RayEngine):
    """The Ray engine, remembering which files (and chunks of them already written) it was given."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.given: list[list[tuple[str, list[int]]]] = []

    def run_files(self, model_dir, reader, files, batch_size, write, description):
        self.given.append([(Path(todo.file.path).name, sorted(todo.done)) for todo in files])
        super().run_files(model_dir, reader, files, batch_size, write, description)


def test_an_interrupted_local_run_finishes_on_ray_without_reading_finished_files(multi_label_dir, inputs, tmp_path):
    options = {"spec": DataSpec(skip_bad_rows=True), "shard_size": 30}
    predict_files(multi_label_dir, inputs, tmp_path / "fresh", **options)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_files(multi_label_dir, inputs, out, **options, engine=StopsAfter(5))  # a.csv's 4 chunks, b.jsonl's first
    done = {p: p.stat().st_mtime_ns for p in (out / "shards").glob("part-*.parquet")}
    assert len(done) == 5 and json.loads((out / "manifest.json").read_text())["finished"] is False
    with pytest.raises(TextdistillError, match="rerun `textdistill predict` with the same arguments"):
        Predictions.load(out)
    # a.csv is finished: garbage of the same size and time there would fail the run, were it read
    stat = inputs[0].stat()
    inputs[0].write_bytes(b"x" * stat.st_size)
    os.utime(inputs[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))

    engine = Recording(actors=2)
    predict_files(multi_label_dir, inputs, out, **options, engine=engine)
    assert engine.given == [[("b.jsonl", [0]), ("c.parquet", [])]]
    assert {p: p.stat().st_mtime_ns for p in done} == done
    assert_same_predictions(Predictions.load(out), Predictions.load(tmp_path / "fresh"))

    before = {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    predict_files(multi_label_dir, inputs, out, **options, engine=engine)
    assert engine.given[-1] == [] and {p: p.stat().st_mtime_ns for p in before} == before


def test_cli_predict_and_label_with_engine_ray_start_their_own_ray(multi_label_dir, tmp_path):
    texts = [t for t, _ in synthetic(150, seed=6)]
    data = write_messages(tmp_path / "messages.jsonl", texts, ids=[f"u{i}" for i in range(150)])
    first = write_messages(tmp_path / "first.jsonl", texts[:100], ids=[f"u{i}" for i in range(100)])
    more = write_messages(tmp_path / "more.csv", texts[100:], ids=[f"u{i}" for i in range(100, 150)])
    command = [sys.executable, "-m", "textdistill", "predict", str(multi_label_dir), "--data", str(first), "--data", str(more),
               "--out", str(tmp_path / "p"), "--id-column", "id", "--shard-size", "40", "--engine", "ray", "--cpus-per-actor", "1", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "Predictions: 150 messages from 2 files" in result.stdout and "Started a local Ray instance" in result.stderr
    predictions = Predictions.load(tmp_path / "p")
    model = load_model(multi_label_dir)
    assert predictions.ids == [f"u{i}" for i in range(150)] and predictions.texts == texts
    assert predictions.rows == [*range(1, 101), *range(1, 51)]
    assert predictions.label_sets == model.predict_label_sets(texts)
    np.testing.assert_allclose(predictions.logits, model.decision_function(texts), atol=1e-5, rtol=0)

    # in this process Ray is already running: the command uses it
    labelled = CliRunner().invoke(app, ["label", "--teacher", str(multi_label_dir), "--texts", str(data), "--id-column", "id",
                                        "--out", str(tmp_path / "t"), "--engine", "ray", "--actors", "1", "--quiet"])
    assert labelled.exit_code == 0, labelled.output
    assert "Transfer set: 150 messages" in labelled.output
    assert ray.is_initialized()


def test_without_ray_engine_ray_names_the_extra_to_install(monkeypatch, multi_label_dir, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(TextdistillError, match=r"pip install 'textdistill\[ray\]'"):
        make_engine("ray")
    data = tmp_path / "m.csv"
    data.write_text("text\nwhere is my parcel\n")
    result = CliRunner().invoke(app, ["predict", str(multi_label_dir), "--data", str(data), "--out", str(tmp_path / "p"), "--engine", "ray"])
    assert isinstance(result.exception, TextdistillError) and "pip install 'textdistill[ray]'" in str(result.exception)
    assert not (tmp_path / "p").exists()  # refused before anything was read or written


def test_engine_options_are_checked():
    with pytest.raises(TextdistillError, match="only apply to the Ray engine"):
        make_engine("local", actors=2)
    with pytest.raises(TextdistillError, match="unknown engine 'spark'"):
        make_engine("spark")


def test_actor_plan_uses_gpus_when_the_cluster_has_them():
    assert plan_actors({"CPU": 32.0}, None, 1.0, None) == (32, 0.0)
    assert plan_actors({"CPU": 32.0}, None, 4.0, None) == (8, 0.0)
    assert plan_actors({"CPU": 32.0, "GPU": 4.0}, None, 1.0, None) == (4, 1.0)  # one actor per GPU
    assert plan_actors({"CPU": 32.0, "GPU": 4.0}, None, 1.0, 0.5) == (8, 0.5)
    assert plan_actors({"CPU": 32.0, "GPU": 4.0}, 3, 2.0, 0.0) == (3, 0.0)  # CPU actors on a GPU cluster
    with pytest.raises(TextdistillError, match="too few for one actor"):
        plan_actors({"CPU": 2.0}, None, 1.0, 1.0)
    with pytest.raises(TextdistillError, match="actors must be at least 1"):
        plan_actors({"CPU": 2.0}, 0, 1.0, None)
