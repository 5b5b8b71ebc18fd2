"""Batch prediction: the shard format, the model's own labels, refusing to mix runs, the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from synthetic import message_set, synthetic
from typer.testing import CliRunner

from textdistill.cli import app
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.predict import Predictions, predict_messages


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory) -> Path:
    rows = synthetic(100, seed=0)
    model = TfidfBaseline().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False)
    return model.save(tmp_path_factory.mktemp("single") / "model", training_data={"sha256": "abc"})


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory) -> Path:
    rows, extra = synthetic(120, seed=1), synthetic(120, seed=2)
    texts = [a + " Also, " + b for (a, _), (b, _) in zip(rows, extra)]
    label_sets = [tuple(sorted({la, lb})) for (_, la), (_, lb) in zip(rows, extra)]
    return TfidfBaseline().fit(texts, label_sets, multi_label=True).save(tmp_path_factory.mktemp("multi") / "model")


@pytest.fixture(scope="module")
def messages():
    first, second = synthetic(150, seed=3), synthetic(150, seed=4)
    return message_set([a if i % 3 else a + " Also, " + b for i, ((a, _), (b, _)) in enumerate(zip(first, second))])


def test_shards_hold_ids_texts_the_models_labels_and_logits(single_dir, messages, tmp_path):
    result = predict_messages(single_dir, messages, tmp_path / "p", shard_size=64, batch_size=16)
    model = load_model(single_dir)
    assert result.ids == messages.ids and result.texts == messages.texts
    assert result.label_sets == model.predict_label_sets(messages.texts)
    assert result.logits.dtype == np.float32 and result.logits.shape == (150, 5)
    np.testing.assert_allclose(result.logits, model.decision_function(messages.texts), atol=1e-6, rtol=0)
    assert result.labels == list(model.label_space.labels) and result.multi_label is False

    assert sorted(p.name for p in (tmp_path / "p" / "shards").iterdir()) == [f"part-{k:05d}.parquet" for k in range(3)]
    schema = pq.read_schema(tmp_path / "p" / "shards" / "part-00000.parquet")
    assert schema.names == ["id", "text", "labels", "logits"]
    assert schema.field("labels").type == pa.list_(pa.string()) and schema.field("logits").type.value_type == pa.float32()
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["finished"] is True and manifest["n_shards"] == 3 and manifest["options"] == {"shard_size": 64}
    assert manifest["model"]["kind"] == "baseline" and manifest["model"]["training_data_sha256"] == "abc"
    assert manifest["source"]["n_messages"] == 150 and manifest["labels"] == result.labels


def test_multi_label_predictions_apply_the_models_thresholds(multi_dir, messages, tmp_path):
    result = predict_messages(multi_dir, messages, tmp_path / "p", shard_size=50)
    model = load_model(multi_dir)
    assert result.multi_label is True and result.manifest["thresholds"] == model.thresholds.tolist()
    assert result.label_sets == model.predict_label_sets(messages.texts)
    assert {len(s) for s in result.label_sets} - {1}  # some messages get several labels or none


def test_a_rerun_with_another_model_or_input_is_refused(single_dir, multi_dir, messages, tmp_path):
    out = tmp_path / "p"
    first = predict_messages(single_dir, messages, out, shard_size=64)
    with pytest.raises(TextdistillError, match=r"different model, multi_label, thresholds"):
        predict_messages(multi_dir, messages, out, shard_size=64)
    with pytest.raises(TextdistillError, match=r"different source"):
        predict_messages(single_dir, messages.subset(range(10)), out, shard_size=64)
    with pytest.raises(TextdistillError, match=r"different options"):
        predict_messages(single_dir, messages, out, shard_size=32)
    assert Predictions.load(out).ids == first.ids  # the refused calls changed nothing
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TextdistillError, match="not empty and holds no prediction set manifest"):
        predict_messages(single_dir, messages, tmp_path / "other")
    with pytest.raises(TextdistillError, match="Run `textdistill predict` first"):
        Predictions.load(tmp_path / "other")


@pytest.mark.slow
def test_cli_predict_reads_the_columns_the_model_was_trained_with(sample_data, tmp_path):
    runner = CliRunner()
    columns = ["--text-column", "subject", "--text-column", "body", "--id-column", "id"]
    trained = runner.invoke(app, ["baseline", "--train", str(sample_data.train), "--out", str(tmp_path / "m"), *columns, "--quiet"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["predict", str(tmp_path / "m"), "--data", str(sample_data.unannotated), "--out", str(tmp_path / "p"),
                                 "--id-column", "id", "--shard-size", "20", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Predictions: 50 messages" in result.output
    predictions = Predictions.load(tmp_path / "p")
    with open(sample_data.unannotated, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert predictions.ids == [row["id"] for row in rows]
    joined = ["\n\n".join(part for part in (row["subject"].strip(), row["body"].strip()) if part) for row in rows]
    assert predictions.texts == joined  # the text columns the model was trained on
    assert predictions.label_sets == load_model(tmp_path / "m").predict_label_sets(predictions.texts)
    local_only = runner.invoke(app, ["predict", str(tmp_path / "m"), "--data", str(sample_data.unannotated), "--out", str(tmp_path / "q"), "--actors", "2"])
    assert isinstance(local_only.exception, TextdistillError) and "add --engine ray" in str(local_only.exception)
