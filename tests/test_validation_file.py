"""A validation file beside the training file: labels it may carry, and the annotated flag."""

import csv
import json
import subprocess
import sys


def write(path, header, rows):
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def baseline(*args):
    return subprocess.run([sys.executable, "-m", "textdistill", "baseline", *map(str, args), "--quiet"], capture_output=True, text=True, timeout=300)


TRAIN = [(f"r{i}", f"refund my money please {i}", "refund", "true") for i in range(12)] + [
    (f"d{i}", f"where is my parcel delivery {i}", "delivery", "true") for i in range(12)
] + [("u1", "some message nobody labelled", "", "false")]


def test_a_validation_label_the_training_data_lacks_is_refused_with_its_rows(tmp_path):
    train = write(tmp_path / "train.csv", ("id", "text", "label", "annotated"), TRAIN)
    validation = write(tmp_path / "val.csv", ("id", "text", "label"), [("v1", "refund please", "refund"), ("v2", "my password", "account"), ("v3", "login fails", "account")])
    result = baseline("--train", train, "--validation", validation, "--annotated-column", "annotated", "--out", tmp_path / "m")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{validation}, row 2, column 'label'" in result.stderr and "'account'" in result.stderr and "rows 2, 3" in result.stderr
    assert not (tmp_path / "m" / "manifest.json").exists()


def test_a_validation_file_without_the_flag_column_is_annotated_throughout_and_one_with_it_is_read_by_it(tmp_path):
    train = write(tmp_path / "train.csv", ("id", "text", "label", "annotated"), TRAIN)
    plain = write(tmp_path / "val.csv", ("id", "text", "label"), [("v1", "refund please", "refund"), ("v2", "parcel late", "delivery")])
    result = baseline("--train", train, "--validation", plain, "--annotated-column", "annotated", "--out", tmp_path / "a")
    assert result.returncode == 0 and "24 training messages" in result.stdout, result.stderr
    flagged = write(tmp_path / "val2.csv", ("id", "text", "label", "annotated"), [("v1", "refund please", "refund", "true"), ("v2", "parcel late", "", "false")])
    result = baseline("--train", train, "--validation", flagged, "--annotated-column", "annotated", "--out", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["labels"] == ["delivery", "refund"]


def test_the_pipeline_reads_held_out_files_without_the_flag_column_as_annotated(tmp_path):
    from textdistill.pipeline import Pipeline, RunConfig

    write(tmp_path / "train.csv", ("id", "text", "label", "annotated"), TRAIN)
    write(tmp_path / "val.csv", ("id", "text", "label"), [("v1", "refund please", "refund"), ("v2", "parcel late", "delivery")])
    write(tmp_path / "test.csv", ("id", "text", "label"), [("t1", "money back", "refund"), ("t2", "delivery parcel", "delivery"), ("t3", "refund", "refund")])
    config = tmp_path / "config.toml"
    config.write_text(
        '[run]\nstages = ["load", "split", "baseline"]\n[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = "val.csv"\n'
        'id_column = "id"\nannotated_column = "annotated"\n',
        encoding="utf-8",
    )
    state = Pipeline(RunConfig.from_toml(config), tmp_path / "run").run()
    assert len(state.train) == 24 and state.unannotated is not None and state.unannotated.ids == ["u1"]
    assert state.validation.ids == ["v1", "v2"] and state.test.ids == ["t1", "t2", "t3"]
