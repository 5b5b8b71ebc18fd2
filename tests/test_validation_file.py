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
