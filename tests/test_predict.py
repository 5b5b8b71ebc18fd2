"""Batch prediction: input files, the shard format, the model's own labels, bad rows, refusing
to mix runs, resuming without reading finished files, the CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stopping_engine import StopsAfter
from synthetic import requests, synthetic, write_messages
from typer.testing import CliRunner

from textdistill.cli import app
from textdistill.data import chunks
from textdistill.data.chunks import input_files
from textdistill.data.messages import DataSpec
from textdistill.errors import DataError, TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.predict import Predictions, predict_files
from textdistill.shards import shard_path, shard_stats


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


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    """Three files of three formats: 100, 70 and 30 messages."""
    folder = tmp_path / "in"
    folder.mkdir()
    return [write_messages(folder / name, requests(n, seed)) for name, n, seed in [("a.csv", 100, 3), ("b.jsonl", 70, 4), ("c.parquet", 30, 5)]]


def shard_names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "shards").iterdir())


def test_shards_hold_ids_texts_files_rows_the_models_labels_and_logits(single_dir, inputs, tmp_path):
    manifest = predict_files(single_dir, inputs, tmp_path / "p", shard_size=64, batch_size=16)
    result = Predictions.load(tmp_path / "p")
    texts = [requests(100, 3), requests(70, 4), requests(30, 5)]
    model = load_model(single_dir)
    assert result.texts == sum(texts, [])
    assert result.ids == [f"{i}/{path.stem}:{row}" for i, (path, t) in enumerate(zip(inputs, texts)) for row in range(1, len(t) + 1)]
    assert result.files == [str(path) for path, t in zip(inputs, texts) for _ in t]
    assert result.rows == [row for t in texts for row in range(1, len(t) + 1)]
    assert result.label_sets == model.predict_label_sets(result.texts)
    assert result.logits.dtype == np.float32 and result.logits.shape == (200, 5)
    np.testing.assert_allclose(result.logits, model.decision_function(result.texts), atol=1e-6, rtol=0)
    assert result.labels == list(model.label_space.labels) and result.multi_label is False

    out = tmp_path / "p"
    assert shard_names(out) == ["part-00000-00000.parquet", "part-00000-00001.parquet", "part-00001-00000.parquet",
                                "part-00001-00001.parquet", "part-00002-00000.parquet"]
    schema = pq.read_schema(shard_path(out, (0, 0)))
    assert schema.names == ["id", "text", "labels", "logits", "file", "row"]
    assert schema.field("labels").type == pa.list_(pa.string()) and schema.field("logits").type.value_type == pa.float32()
    assert schema.field("file").type == pa.string() and schema.field("row").type == pa.int64()
    assert shard_stats(shard_path(out, (0, 0))) == {"n_input": 64, "skipped_rows": 0, "last": False}
    assert shard_stats(shard_path(out, (1, 1))) == {"n_input": 6, "skipped_rows": 0, "last": True}
    assert manifest == json.loads((out / "manifest.json").read_text()) == result.manifest
    assert manifest["finished"] is True and manifest["options"] == {"shard_size": 64}
    assert manifest["model"]["kind"] == "baseline" and manifest["model"]["training_data_sha256"] == "abc"
    assert [f["path"] for f in manifest["source"]["files"]] == [str(p) for p in inputs]
    assert [(f["size"], f["mtime_ns"]) for f in manifest["source"]["files"]] == [(p.stat().st_size, p.stat().st_mtime_ns) for p in inputs]
    assert manifest["counts"]["n_messages"] == 200 and manifest["counts"]["skipped_rows"] == 0
    assert [(f["n_messages"], f["n_shards"]) for f in manifest["counts"]["files"]] == [(100, 2), (70, 2), (30, 1)]


def test_multi_label_predictions_apply_the_models_thresholds(multi_dir, tmp_path):
    data = write_messages(tmp_path / "m.jsonl", requests(150, 3))
    predict_files(multi_dir, data, tmp_path / "p", shard_size=50)
    result = Predictions.load(tmp_path / "p")
    model = load_model(multi_dir)
    assert result.ids == [f"m:{row}" for row in range(1, 151)]  # one file: ids as every command gives them
    assert result.multi_label is True and result.manifest["thresholds"] == model.thresholds.tolist()
    assert result.label_sets == model.predict_label_sets(requests(150, 3))
    assert {len(s) for s in result.label_sets} - {1}  # some messages get several labels or none


def test_data_names_files_directories_and_glob_patterns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = Path("in")
    folder.mkdir()
    for name in ["b.jsonl", "a.csv", "c.parquet"]:
        write_messages(folder / name, ["where is my parcel"])
    (folder / "notes.txt").write_text("not messages")
    write_messages(Path("z.csv"), ["cancel my plan"])
    found = input_files(["z.csv", "in"])
    assert [f.path for f in found] == ["z.csv", "in/a.csv", "in/b.jsonl", "in/c.parquet"]  # as given, a directory by name
    assert found[1].absolute == str(tmp_path / "in" / "a.csv") and found[1].size == (folder / "a.csv").stat().st_size
    assert [f.path for f in input_files(["in/[bc].*", "in/*.csv"])] == ["in/b.jsonl", "in/c.parquet", "in/a.csv"]

    with pytest.raises(DataError, match=r"a\.csv: is named twice \(as in/a\.csv and as in/a\.csv\)"):
        input_files(["in", "in/*.csv"])
    with pytest.raises(DataError, match=r"in/\*\.tsv: the pattern matches no message files"):
        input_files(["in/*.tsv"])
    Path("empty").mkdir()
    with pytest.raises(DataError, match=r"empty: holds no message files"):
        input_files(["empty"])
    with pytest.raises(DataError, match=r"missing\.csv: file not found"):
        input_files(["z.csv", "missing.csv"])
    with pytest.raises(DataError, match=r"notes\.txt: unsupported file type"):
        input_files(["in/notes.txt"])
    with pytest.raises(DataError, match=r"no input named"):
        input_files([])


def test_a_bad_row_is_named_by_file_row_and_column_or_skipped_and_counted(single_dir, tmp_path):
    good = write_messages(tmp_path / "a.csv", requests(5, 6))
    bad = write_messages(tmp_path / "b.jsonl", ["where is my parcel", "", "refund please", "cancel my plan", "", "hi, login fails", ""])
    with pytest.raises(DataError) as error:
        predict_files(single_dir, [good, bad], tmp_path / "p", shard_size=2)
    assert str(error.value).startswith(f"{bad}, row 2, column 'text': the message text is empty")
    assert shard_names(tmp_path / "p") == ["part-00000-00000.parquet", "part-00000-00001.parquet", "part-00000-00002.parquet"]  # kept

    manifest = predict_files(single_dir, [good, bad], tmp_path / "q", shard_size=2, spec=DataSpec(skip_bad_rows=True))
    result = Predictions.load(tmp_path / "q")
    assert result.rows == [1, 2, 3, 4, 5, 1, 3, 4, 6]
    assert [(f["n_messages"], f["skipped_rows"]) for f in manifest["counts"]["files"]] == [(5, 0), (4, 3)]
    assert manifest["counts"]["skipped_rows"] == 3
    # a chunk counts the rows skipped after the previous chunk's last row; the last chunk those after it too
    assert shard_stats(shard_path(tmp_path / "q", (1, 0))) == {"n_input": 2, "skipped_rows": 1, "last": False}
    assert shard_stats(shard_path(tmp_path / "q", (1, 1))) == {"n_input": 2, "skipped_rows": 2, "last": True}


def test_default_ids_stay_unique_across_files_of_the_same_name(single_dir, tmp_path):
    texts = requests(5, 7)
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
    first, second = write_messages(tmp_path / "x" / "inbox.csv", texts[:3]), write_messages(tmp_path / "y" / "inbox.csv", texts[3:])
    predict_files(single_dir, [first, second], tmp_path / "p")
    assert Predictions.load(tmp_path / "p").ids == ["0/inbox:1", "0/inbox:2", "0/inbox:3", "1/inbox:1", "1/inbox:2"]

    given = write_messages(tmp_path / "given.csv", texts[:2], ids=["u7", "u9"])
    predict_files(single_dir, [given, write_messages(tmp_path / "more.csv", texts[2:], ids=["u1", "u2", "u3"])], tmp_path / "q", spec=DataSpec(id_column="id"))
    assert Predictions.load(tmp_path / "q").ids == ["u7", "u9", "u1", "u2", "u3"]  # an id column's ids are kept


def test_a_rerun_with_another_model_changed_files_or_options_is_refused(single_dir, multi_dir, inputs, tmp_path):
    out = tmp_path / "p"
    predict_files(single_dir, inputs, out, shard_size=64)
    first = Predictions.load(out)
    with pytest.raises(TextdistillError, match=r"different model, multi_label, thresholds"):
        predict_files(multi_dir, inputs, out, shard_size=64)
    with pytest.raises(TextdistillError, match=r"different source \(source\.files: was"):
        predict_files(single_dir, inputs[:2], out, shard_size=64)
    with pytest.raises(TextdistillError, match=r"different options"):
        predict_files(single_dir, inputs, out, shard_size=32)
    with pytest.raises(TextdistillError, match=r"different source \(source\.reading\.skip_bad_rows: was false, now true\)"):
        predict_files(single_dir, inputs, out, shard_size=64, spec=DataSpec(skip_bad_rows=True))
    stat = inputs[1].stat()
    os.utime(inputs[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: maybe changed
    with pytest.raises(TextdistillError, match=rf"different source \(source\.files\[1\]: was {{\"path\": \"{inputs[1]}\""):
        predict_files(single_dir, inputs, out, shard_size=64)
    assert Predictions.load(out).ids == first.ids  # the refused calls changed nothing
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "format_version": manifest["format_version"] - 1}))
    for call in (lambda: Predictions.load(out), lambda: predict_files(single_dir, inputs, out, shard_size=64)):
        with pytest.raises(TextdistillError, match=r"written by an older textdistill \(format 1; this one reads format 2\)"):
            call()

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TextdistillError, match="not empty and holds no prediction set manifest"):
        predict_files(single_dir, inputs, tmp_path / "other")
    with pytest.raises(TextdistillError, match="Run `textdistill predict` first"):
        Predictions.load(tmp_path / "other")


def test_an_interrupted_run_resumes_without_reading_finished_files(single_dir, inputs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        predict_files(single_dir, inputs, out, shard_size=30, engine=StopsAfter(5))  # a.csv's 4 chunks, b.jsonl's first
    done = {p: p.stat().st_mtime_ns for p in (out / "shards").glob("part-*.parquet")}
    assert len(done) == 5 and json.loads((out / "manifest.json").read_text())["finished"] is False
    with pytest.raises(TextdistillError, match="rerun `textdistill predict` with the same arguments"):
        Predictions.load(out)

    reads = []
    load_messages = chunks.load_messages
    monkeypatch.setattr(chunks, "load_messages", lambda path, *args, **kwargs: reads.append(Path(path).name) or load_messages(path, *args, **kwargs))
    predict_files(single_dir, inputs, out, shard_size=30)
    assert reads == ["b.jsonl", "c.parquet"]  # a.csv was finished
    assert {p: p.stat().st_mtime_ns for p in done} == done
    assert len(shard_names(out)) == 8  # 100, 70, 30 messages: 4 + 3 + 1 chunks
    predict_files(single_dir, inputs, tmp_path / "fresh", shard_size=30)
    resumed, fresh = Predictions.load(out), Predictions.load(tmp_path / "fresh")
    assert (resumed.ids, resumed.files, resumed.rows, resumed.label_sets) == (fresh.ids, fresh.files, fresh.rows, fresh.label_sets)
    np.testing.assert_allclose(resumed.logits, fresh.logits, atol=1e-6, rtol=0)

    reads.clear()
    predict_files(single_dir, inputs, out, shard_size=30)
    assert reads == []  # a finished run reads nothing


@pytest.mark.slow
def test_cli_predict_reads_the_columns_the_model_was_trained_with(sample_data, tmp_path):
    runner = CliRunner()
    columns = ["--text-column", "subject", "--text-column", "body", "--id-column", "id"]
    trained = runner.invoke(app, ["baseline", "--train", str(sample_data.train), "--out", str(tmp_path / "m"), *columns, "--quiet"])
    assert trained.exit_code == 0, trained.output
    again = shutil.copy(sample_data.unannotated, tmp_path / "again.csv")
    result = runner.invoke(app, ["predict", str(tmp_path / "m"), "--data", str(sample_data.unannotated), "--data", str(again),
                                 "--out", str(tmp_path / "p"), "--id-column", "id", "--shard-size", "20", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Predictions: 100 messages from 2 files" in result.output
    predictions = Predictions.load(tmp_path / "p")
    with open(sample_data.unannotated, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert predictions.ids == [row["id"] for row in rows] * 2
    assert predictions.files == [str(sample_data.unannotated)] * 50 + [str(again)] * 50
    joined = ["\n\n".join(part for part in (row["subject"].strip(), row["body"].strip()) if part) for row in rows]
    assert predictions.texts == joined * 2  # the text columns the model was trained on
    assert predictions.label_sets == load_model(tmp_path / "m").predict_label_sets(predictions.texts)
    local_only = runner.invoke(app, ["predict", str(tmp_path / "m"), "--data", str(sample_data.unannotated), "--out", str(tmp_path / "q"), "--actors", "2"])
    assert isinstance(local_only.exception, TextdistillError) and "add --engine ray" in str(local_only.exception)
