"""The Ray engine: same output as the local engine, a killed worker, resuming, the CLI, no Ray."""

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
from synthetic import message_set, synthetic
from typer.testing import CliRunner

from textdistill.cli import app
from textdistill.engines import LocalEngine, make_engine
from textdistill.engines.ray_engine import RayEngine, plan_actors
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.predict import Predictions, predict_messages
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


@pytest.fixture(scope="module")
def requests():
    """Messages of one or two requests each, for the multi-label model."""
    first, second = synthetic(230, seed=4), synthetic(230, seed=5)
    return message_set([a if i % 3 else a + " Also, " + b for i, ((a, _), (b, _)) in enumerate(zip(first, second))])


def shard_names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "shards").iterdir())


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


def test_predict_on_ray_equals_local_and_the_models_own_predictions(multi_label_dir, requests, tmp_path):
    local = predict_messages(multi_label_dir, requests, tmp_path / "local", shard_size=64)
    on_ray = predict_messages(multi_label_dir, requests, tmp_path / "ray", shard_size=64, engine=RayEngine(actors=2))
    assert on_ray.ids == local.ids == requests.ids and on_ray.texts == requests.texts
    np.testing.assert_allclose(on_ray.logits, local.logits, atol=1e-5, rtol=0)
    model = load_model(multi_label_dir)
    assert on_ray.label_sets == local.label_sets == model.predict_label_sets(requests.texts)
    assert {len(s) for s in on_ray.label_sets} - {1}  # multi-label: some messages get several or none
    assert shard_names(tmp_path / "ray") == [f"part-{k:05d}.parquet" for k in range(4)]


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


class StopsAfter:
    """An engine that runs the local one and stops (as if killed) after writing ``n`` shards."""

    def __init__(self, n: int) -> None:
        self.n = n

    def run(self, model_dir, texts, shards, batch_size, write, description):
        written = []

        def write_then_stop(k, logits):
            write(k, logits)
            written.append(k)
            if len(written) == self.n:
                raise KeyboardInterrupt

        LocalEngine().run(model_dir, texts, shards, batch_size, write_then_stop, description)


class Recording(RayEngine):
    """The Ray engine, remembering which shards it was given."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.given: list[list[int]] = []

    def run(self, model_dir, texts, shards, batch_size, write, description):
        self.given.append(sorted(shards))
        super().run(model_dir, texts, shards, batch_size, write, description)


def test_an_interrupted_local_run_finishes_on_ray_and_a_rerun_skips_finished_shards(multi_label_dir, requests, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_messages(multi_label_dir, requests, out, shard_size=30, engine=StopsAfter(3))
    done = {p: p.stat().st_mtime_ns for p in (out / "shards").glob("part-*.parquet")}
    assert len(done) == 3 and json.loads((out / "manifest.json").read_text())["finished"] is False
    with pytest.raises(TextdistillError, match="rerun `textdistill predict` with the same arguments"):
        Predictions.load(out)

    engine = Recording()
    resumed = predict_messages(multi_label_dir, requests, out, shard_size=30, engine=engine)
    assert engine.given == [[k for k in range(8) if shard_path(out, k) not in done]]  # 230 messages: 8 shards
    assert {p: p.stat().st_mtime_ns for p in done} == done
    fresh = predict_messages(multi_label_dir, requests, tmp_path / "fresh", shard_size=30)
    assert resumed.ids == fresh.ids and resumed.label_sets == fresh.label_sets
    np.testing.assert_allclose(resumed.logits, fresh.logits, atol=1e-5, rtol=0)

    before = {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    again = predict_messages(multi_label_dir, requests, out, shard_size=30, engine=engine)
    assert engine.given[-1] == [] and {p: p.stat().st_mtime_ns for p in before} == before
    assert again.ids == fresh.ids


def test_cli_predict_and_label_with_engine_ray_start_their_own_ray(multi_label_dir, tmp_path):
    data = tmp_path / "messages.jsonl"
    data.write_text("".join(json.dumps({"id": f"u{i}", "text": t}) + "\n" for i, (t, _) in enumerate(synthetic(150, seed=6))))
    command = [sys.executable, "-m", "textdistill", "predict", str(multi_label_dir), "--data", str(data), "--out", str(tmp_path / "p"),
               "--id-column", "id", "--shard-size", "40", "--engine", "ray", "--cpus-per-actor", "1", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Predictions: 150 messages" in result.stdout and "Started a local Ray instance" in result.stderr
    predictions = Predictions.load(tmp_path / "p")
    model = load_model(multi_label_dir)
    texts = [t for t, _ in synthetic(150, seed=6)]
    assert predictions.ids == [f"u{i}" for i in range(150)] and predictions.texts == texts
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
