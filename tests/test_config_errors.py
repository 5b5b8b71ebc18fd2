"""Data errors in a `textdistill run` config name the config's [data] keys, not command-line flags."""

import re

import pytest

from textdistill.errors import DataError, TextdistillError
from textdistill.pipeline import Pipeline, RunConfig

ROWS = "".join(f"refund my order {i},billing\nparcel {i} is late,delivery\n" for i in range(4))


def write_config(tmp_path, data_lines: str):
    (tmp_path / "train.csv").write_text("text,label\n" + ROWS + ",billing\n", encoding="utf-8")
    config = tmp_path / "run.toml"
    config.write_text(f'[run]\nstages = ["load"]\n[data]\ntrain = "train.csv"\ntest = "train.csv"\n{data_lines}\n', encoding="utf-8")
    return config


def run_error(tmp_path, config) -> DataError:
    with pytest.raises(DataError) as raised:
        Pipeline(RunConfig.from_toml(config), tmp_path / "run", config_path=config).run()
    return raised.value


def test_one_column_for_both_label_modes_names_the_config_keys(tmp_path):
    config = write_config(tmp_path, 'labels_column = "label"')
    with pytest.raises(TextdistillError) as raised:
        RunConfig.from_toml(config)
    message = str(raised.value)
    assert message.startswith(f"{config}: [data] label_column (by default 'label') and labels_column = 'label' name the same column")
    assert "multi_label = true" in message and "--" not in message
    # said outright, it is no clash
    multi = write_config(tmp_path, 'labels_column = "label"\nmulti_label = true')
    assert RunConfig.from_toml(multi).data.spec.labels_column == "label"


@pytest.mark.parametrize(
    ("data_lines", "key"),
    [
        ('text_columns = ["body"]', "[data] text_columns"),  # a missing column
        ("", "set [data] skip_bad_rows = true"),  # the empty text in the last row
        ('id_column = "label"', "set [data] skip_bad_rows = true"),  # duplicate ids
    ],
)
def test_a_data_error_while_running_a_config_points_to_its_keys(tmp_path, data_lines, key):
    config = write_config(tmp_path, data_lines)
    error = run_error(tmp_path, config)
    assert error.file == str(tmp_path / "train.csv")
    assert key in error.hint and error.hint.endswith(f"(in {config})")
    assert not re.search(r"--[a-z]", error.hint), error.hint


def test_an_unknown_threshold_mode_is_refused_when_the_config_is_read(tmp_path):
    config = write_config(tmp_path, "")
    config.write_text(config.read_text().replace("[run]\n", '[run]\nthreshold_mode = "per-label"\n'), encoding="utf-8")
    with pytest.raises(TextdistillError, match=r"\[run\] threshold_mode = 'per-label' is unknown; choose one of: auto, global, per_label"):
        RunConfig.from_toml(config)
    assert RunConfig.from_toml(write_config(tmp_path, "")).threshold_mode == "global"  # the default
