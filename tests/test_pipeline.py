"""The pipeline from a TOML config: stages in order, one run directory."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from textdistill.errors import TextdistillError
from textdistill.pipeline import Pipeline, RunConfig

CONFIG = """
[run]
seed = 0
threshold_mode = "per_label"

[data]
train = "{train}"
test = "{test}"
unannotated = "{unannotated}"
validation_fraction = 0.2
text_columns = ["subject", "body"]
id_column = "id"
clean_email = true

[evaluate]
threads = 1
latency_samples = 20
warmup = 2
min_messages = 256
repeats = 1
"""


def write_config(tmp_path, sample_data, **extra):
    text = CONFIG.format(train=sample_data.train, test=sample_data.test, unannotated=sample_data.unannotated)
    for section, body in extra.items():
        text += f"\n[{section}]\n{body}\n"
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_full_run_writes_every_artefact(sample_data, tmp_path):
    config_path = write_config(tmp_path, sample_data, report='title = "Inbox"')
    state = Pipeline(RunConfig.from_toml(config_path), tmp_path / "run", config_path=config_path).run()
    run = tmp_path / "run"
    summary = json.loads((run / "data" / "summary.json").read_text())
    assert summary["train"]["n_messages"] == 400 and summary["unannotated"]["n_messages"] == 50
    assert summary["test"]["skipped_rows"] == 0
    split = json.loads((run / "data" / "split.json").read_text())
    # iterative stratification gets close to the requested 80, not exactly there
    assert abs(len(split["validation"]) - 80) <= 4 and set(split["train"]).isdisjoint(split["validation"])
    manifest = json.loads((run / "models" / "baseline" / "manifest.json").read_text())
    assert manifest["multi_label"] and manifest["threshold_mode"] == "per_label"
    assert manifest["config"]["data"]["text_columns"] == ["subject", "body"]
    evaluation = json.loads((run / "evaluations" / "baseline.json").read_text())
    assert evaluation["micro_f1"] > 0.6 and evaluation["by_level"][0]["level"] == 1
    assert state.report_html == run / "report" / "report.html"
    assert "Inbox" in state.report_html.read_text() and (run / "config.toml").exists()


def test_skipped_rows_are_counted_in_summary_and_report(sample_data, tmp_path):
    bad_test = tmp_path / "test.csv"
    lines = sample_data.test.read_text(encoding="utf-8")
    bad_test.write_text(lines + "bad-1,,,Billing > Refund request\n", encoding="utf-8")
    config_path = write_config(tmp_path, sample_data)
    text = config_path.read_text().replace(str(sample_data.test), str(bad_test)).replace("clean_email = true", "clean_email = true\nskip_bad_rows = true")
    config_path.write_text(text)
    Pipeline(RunConfig.from_toml(config_path), tmp_path / "run").run()
    summary = json.loads((tmp_path / "run" / "data" / "summary.json").read_text())
    assert summary["test"]["skipped_rows"] == 1 and summary["test"]["skipped"][0]["column"] == "subject + body"
    evaluation = json.loads((tmp_path / "run" / "evaluations" / "baseline.json").read_text())
    assert evaluation["skipped_rows"] == 1
    assert "skipped" in (tmp_path / "run" / "report" / "report.md").read_text().lower()


def test_config_errors_are_explained(sample_data, tmp_path):
    path = write_config(tmp_path, sample_data)
    path.write_text(path.read_text().replace("seed = 0", 'seed = 0\nstages = ["baseline", "report"]'))
    with pytest.raises(TextdistillError, match="needs stage 'split'"):
        RunConfig.from_toml(path)
    path.write_text("[data]\ntrain = 'x.csv'\n")
    with pytest.raises(TextdistillError, match="needs `train` and `test`"):
        RunConfig.from_toml(path)
    path.write_text("[data\n")
    with pytest.raises(TextdistillError, match="not valid TOML"):
        RunConfig.from_toml(path)
    for body, message in (('strategy = "smart"', r"\[suggest\] strategy 'smart' is unknown"), ("k = 0", r"\[suggest\] k is the number"), ("check_folds = 1", r"\[suggest\] check_folds is 0")):
        with pytest.raises(TextdistillError, match=message):
            RunConfig.from_toml(write_config(tmp_path, sample_data, suggest=body))


def test_suggest_stage_asks_the_baseline_without_a_teacher(sample_data, tmp_path):
    path = write_config(tmp_path, sample_data, suggest='strategy = "uncertainty"\nk = 7')
    path.write_text(path.read_text().replace("seed = 0", 'seed = 0\nstages = ["load", "split", "baseline", "suggest"]'))
    state = Pipeline(RunConfig.from_toml(path), tmp_path / "run").run()
    assert len(state.suggestions.picks) == 7 and state.suggestions.reused == 0 and state.suggestions.embedding is None
    assert state.queue.read_text().splitlines()[0].startswith("id,subject,body,labels,annotated,rank")
    # and the label check of the training annotations, its flagged messages most suspect first
    check = state.label_check
    assert len(check) == len(state.train) and check.n_flagged > 0
    with state.label_issues.open(newline="") as handle:
        flagged = list(csv.DictReader(handle))
    assert [row["id"] for row in flagged] == [check.ids[i] for i in check.ranked()]


def test_validate_stage_sets_thresholds_and_a_single_label_reject_option(sample_data, tmp_path):
    from synthetic import synthetic

    for name, seed, n in (("train", 0, 400), ("test", 1, 150)):
        with (tmp_path / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("text", "label"), *synthetic(n, seed)])
    single = tmp_path / "single.toml"
    single.write_text(
        f'[run]\nstages = ["load", "split", "baseline", "validate", "evaluate"]\n[data]\ntrain = "{tmp_path / "train.csv"}"\n'
        f'test = "{tmp_path / "test.csv"}"\n[validate]\ntarget_precision = 0.9\nmax_in_scope_loss = 0.02\n[evaluate]\nmeasure = false\n',
        encoding="utf-8",
    )
    Pipeline(RunConfig.from_toml(single), tmp_path / "single").run()
    evaluation = json.loads((tmp_path / "single" / "evaluations" / "baseline.json").read_text())
    assert evaluation["automation"]["target_precision"] == 0.9 and evaluation["out_of_scope"]["max_in_scope_loss"] == 0.02
    # multi-label data: thresholds only ("no label" is already a multi-label answer)
    multi = write_config(tmp_path, sample_data, validate="out_of_scope = \"energy\"")
    multi.write_text(multi.read_text().replace("seed = 0", 'seed = 0\nstages = ["load", "split", "baseline", "validate"]'))
    Pipeline(RunConfig.from_toml(multi), tmp_path / "multi").run()
    assert (tmp_path / "multi" / "models" / "baseline" / "automation.json").is_file()
    assert not (tmp_path / "multi" / "models" / "baseline" / "out_of_scope.json").exists()
    bad = write_config(tmp_path, sample_data, validate="out_of_scope = \"softmax\"")
    with pytest.raises(TextdistillError, match="out_of_scope"):
        RunConfig.from_toml(bad)


STUDENTS = """
[[students]]
kind = "static"
dim = 16

[[students]]
name = "lstm"
kind = "bilstm"
dim = 16
hidden = 8
mlp = 16
training = { epochs = 2 }

[[students]]
name = "small"
kind = "transformer"
losses = [{ name = "kd", weight = 0.5, temperature = 2.0 }, { name = "tinybert_hidden", weight = 0.5 }]
training = { epochs = 1, batch_size = 16 }
"""


def test_teacher_transfer_and_distill_stages(sample_data, tiny_encoder_dir, tmp_path, monkeypatch):
    # Each model's peak memory is measured in a fresh interpreter: nine here, most of the test's
    # time. The probe itself is tested in test_cost.py, on every model kind in test_compress.py and
    # in the pipeline by test_full_run_writes_every_artefact; here each model is only to be probed.
    from textdistill.evaluate import cost

    probed = []
    monkeypatch.setattr(cost, "measure_peak_rss_mb", lambda model_dir, texts, **kwargs: probed.append(Path(model_dir).name) or 123.5)
    config_path = write_config(
        tmp_path,
        sample_data,
        teacher=f'model = "{tiny_encoder_dir}"\nmethod = "bitfit"\nepochs = 1\nbatch_size = 16\nmax_length = 32',
        transfer='augment = ["mask"]\naugment_factor = 1',
        compress='models = ["static", "lstm"]\nprecisions = ["fp32", "int8"]',
        suggest='strategy = "diverse"\nk = 10',
    )
    stages = 'stages = ["load", "split", "baseline", "teach", "label", "distill", "compress", "evaluate", "report", "suggest"]'
    text = config_path.read_text().replace("seed = 0", f"seed = 0\n{stages}") + STUDENTS
    config_path.write_text(text)
    state = Pipeline(RunConfig.from_toml(config_path), tmp_path / "run").run()
    run = tmp_path / "run"
    # the queue: the teacher's picks from the unannotated pool, its logits taken from the transfer set
    assert state.queue == run / "suggest" / "queue.csv" and len(state.suggestions.picks) == 10
    assert state.suggestions.reused == 50 and state.suggestions.embedding == "encoder"
    queued = [line.split(",")[0] for line in state.queue.read_text().splitlines()[1:] if line.startswith("msg-")]
    assert len(queued) == 10 and set(queued) <= set(state.unannotated.ids)
    teacher = json.loads((run / "models" / "teacher" / "manifest.json").read_text())
    assert teacher["kind"] == "transformer" and teacher["config"]["method"] == "bitfit"
    assert "teacher_is_better" in teacher["metrics"]["validation"]
    transfer = json.loads((run / "transfer" / "manifest.json").read_text())
    # train split + unannotated pool, plus one masked copy of each (minus exact duplicates)
    n_train = len(json.loads((run / "data" / "split.json").read_text())["train"])
    assert transfer["finished"] and transfer["counts"]["originals"] == n_train + 50
    assert transfer["counts"]["augmented"] > 0
    for name, kind in (("static", "static"), ("lstm", "bilstm"), ("small", "transformer")):
        manifest = json.loads((run / "models" / name / "manifest.json").read_text())
        assert manifest["kind"] == kind and manifest["labels"] == teacher["labels"]
        # repeated texts (short chats) and validation texts are left out of distillation once each
        assert 0.98 * transfer["counts"]["written"] <= manifest["config"]["distillation"]["n_messages"] <= transfer["counts"]["written"]
        assert manifest["config"]["data"]["text_columns"] == ["subject", "body"]
    for name in ("static", "lstm"):
        for suffix, precision in (("onnx", "fp32"), ("int8", "int8")):
            manifest = json.loads((run / "models" / f"{name}-{suffix}" / "manifest.json").read_text())
            assert manifest["kind"] == "onnx" and manifest["config"]["compression"]["precision"] == precision
            assert manifest["config"]["compression"]["source"] == str((run / "models" / name).resolve())
    compressed = ["lstm-int8", "lstm-onnx", "static-int8", "static-onnx"]
    assert sorted(p.stem for p in (run / "evaluations").glob("*.json")) == sorted(["baseline", "lstm", "small", "static", "teacher", *compressed])
    assert sorted(probed) == sorted(p.stem for p in (run / "evaluations").glob("*.json"))
    assert all(json.loads(p.read_text())["peak_rss_mb"] == 123.5 for p in (run / "evaluations").glob("*.json"))
    fp32 = json.loads((run / "evaluations" / "static-onnx.json").read_text())
    assert fp32["macro_f1"] == pytest.approx(json.loads((run / "evaluations" / "static.json").read_text())["macro_f1"], abs=0.01)
    report = (run / "report" / "report.md").read_text()
    assert all(name in report for name in ("teacher", "static", "lstm", "small", *compressed))
    assert "## Compression" in report
    assert not (run / "models" / "teacher" / "checkpoint").exists()


def test_student_tables_are_checked(sample_data, tmp_path):
    path = write_config(tmp_path, sample_data)
    path.write_text(path.read_text() + '\n[[students]]\nkind = "forest"\n')
    with pytest.raises(TextdistillError, match="unknown student kind 'forest'"):
        RunConfig.from_toml(path)
    path.write_text(path.read_text().replace('"forest"', '"static"') + '\n[[students]]\nkind = "static"\n')
    with pytest.raises(TextdistillError, match="is taken"):
        RunConfig.from_toml(path)


def test_teacher_options_are_checked(sample_data, tmp_path):
    path = write_config(tmp_path, sample_data, teacher='model = "minilm-l6"\nepochz = 3')
    with pytest.raises(TextdistillError, match="unknown EncoderConfig options: epochz"):
        RunConfig.from_toml(path)


def test_compress_stage_is_checked(sample_data, tmp_path):
    path = write_config(tmp_path, sample_data, compress='precisions = ["int4"]')
    with pytest.raises(TextdistillError, match=r"precisions must be a non-empty list of \['fp32', 'int8'\]"):
        RunConfig.from_toml(path)
    path.write_text(path.read_text().replace("[compress]", "").replace('precisions = ["int4"]', "").replace("seed = 0", 'seed = 0\nstages = ["compress"]'))
    with pytest.raises(TextdistillError, match="nothing to compress"):
        RunConfig.from_toml(path)
    path = write_config(tmp_path, sample_data, compress='models = ["static"]')
    config = replace(RunConfig.from_toml(path), stages=("load", "split", "baseline", "compress"))
    with pytest.raises(TextdistillError, match=r"\['static'\] are not under .*saved: \['baseline'\]"):
        Pipeline(config, tmp_path / "run").run()


def test_summary_records_what_clean_up_removed_per_split(sample_data, tmp_path):
    import numpy as np

    from textdistill.data.email import clean_email
    from textdistill.data.messages import DataSpec, load_messages

    config_path = write_config(tmp_path, sample_data)
    config_path.write_text(config_path.read_text().replace("[run]\n", '[run]\nstages = ["load"]\n'))
    Pipeline(RunConfig.from_toml(config_path), tmp_path / "run").run()
    summary = json.loads((tmp_path / "run" / "data" / "summary.json").read_text())
    raw = load_messages(sample_data.test, DataSpec(text_columns=("subject", "body"), id_column="id")).texts
    before, after = [len(t) for t in raw], [len(clean_email(t)) for t in raw]
    assert summary["test"]["text_cleaning"] == {
        "messages": len(raw),
        "chars_before_p50": pytest.approx(np.median(before)),
        "chars_before_p95": pytest.approx(np.percentile(before, 95)),
        "chars_after_p50": pytest.approx(np.median(after)),
        "chars_after_p95": pytest.approx(np.percentile(after, 95)),
    }
    assert summary["train"]["text_cleaning"]["messages"] == summary["train"]["n_messages"] == 400
    assert summary["unannotated"]["text_cleaning"]["messages"] == 50
    assert summary["test"]["text_cleaning"]["chars_after_p95"] < summary["test"]["text_cleaning"]["chars_before_p95"]
