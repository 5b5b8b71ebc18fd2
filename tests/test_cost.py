"""Cost measurement on a real, small TF-IDF baseline: relations, not absolute numbers."""

from __future__ import annotations

import json
import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from textdistill.errors import TextdistillError
from textdistill.evaluate import memory_probe
from textdistill.evaluate.cost import (
    CostReport,
    latency_sample,
    limit_threads,
    machine_info,
    measure_cost,
    measure_latency,
    measure_latency_by_length,
    measure_peak_rss_mb,
    measure_throughput,
    size_on_disk_mb,
)
from textdistill.models.baseline import TfidfBaseline

SUBJECTS = ["my invoice", "the last payment", "order 1182", "our account", "the refund", "the new plan",
            "ticket 77", "the delivery", "my password", "the contract"]  # fmt: skip
TEMPLATES = {
    "billing": ["I was charged twice for {}", "please send a corrected bill for {}", "why is the amount on {} wrong"],
    "shipping": ["where is the parcel for {}", "the courier lost {}", "can you ship {} to another address"],
    "account": ["I cannot log in to {}", "please reset access for {}", "how do I change the email on {}"],
}


def _texts_and_labels() -> tuple[list[str], list[list[str]]]:
    texts, labels = [], []
    for label, templates in TEMPLATES.items():
        for i, subject in enumerate(SUBJECTS * 2):
            texts.append(templates[i % len(templates)].format(subject))
            labels.append([label])
    return texts, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    texts, labels = _texts_and_labels()
    model = TfidfBaseline().fit(texts, labels, multi_label=False)
    directory = model.save(tmp_path_factory.mktemp("baseline") / "model")
    return model, directory, texts


class SlowModel:
    """The real model plus 20 ms of sleep per call: far more than the noise of a loaded machine."""

    def __init__(self, model):
        self.model = model
        self.n_params = model.n_params

    def predict_proba(self, texts):
        time.sleep(0.02)
        return self.model.predict_proba(texts)


def test_latency_is_positive_and_ordered(trained):
    model, _, texts = trained
    p50, p95 = measure_latency(model, texts, samples=30, warmup=3)
    assert p50 > 0
    assert p95 >= p50


def test_slow_model_measures_slower(trained):
    model, _, texts = trained
    slow = SlowModel(model)
    settings = {"batch_size": 4, "min_messages": 32, "repeats": 3}
    fast_rate, slow_rate = measure_throughput(model, texts, **settings), measure_throughput(slow, texts, **settings)
    assert fast_rate > 0
    assert slow_rate < fast_rate
    fast_p50, _ = measure_latency(model, texts, samples=30, warmup=3)
    slow_p50, _ = measure_latency(slow, texts, samples=30, warmup=3)
    assert slow_p50 > fast_p50


def test_peak_rss_is_plausible_and_not_the_parents(trained):
    _, directory, texts = trained
    # Raise this process's peak well above the probe's: on Linux a child's ru_maxrss inherits it.
    ballast = np.ones(2**26)  # 512 MiB, written
    try:
        peak = measure_peak_rss_mb(directory, texts, threads=1, batch_size=16)
    finally:
        del ballast
    assert 20 < peak < 4000
    assert peak < 512


def test_probe_predicts_every_text(trained, tmp_path, capsys):
    _, directory, texts = trained
    texts_file = tmp_path / "texts.jsonl"
    texts_file.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    assert memory_probe.main([str(directory), str(texts_file), "--threads", "1", "--batch-size", "7"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_predicted"] == len(texts)
    assert result["peak_rss_mb"] > 0


def test_broken_model_dir_raises_helpful_error(tmp_path):
    (tmp_path / "not_a_model").mkdir()
    with pytest.raises(TextdistillError) as error:
        measure_peak_rss_mb(tmp_path / "not_a_model", ["hello"], threads=1)
    message = str(error.value)
    assert "memory probe" in message
    assert "no manifest.json" in message  # the probe's own stderr is quoted
    assert "What to do" in message


def test_corrupt_weights_raise_helpful_error(trained, tmp_path):
    _, directory, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in directory.iterdir():
        (broken / path.name).write_bytes(path.read_bytes()[:20] if path.suffix == ".safetensors" else path.read_bytes())
    with pytest.raises(TextdistillError, match="exit status") as error:
        measure_peak_rss_mb(broken, ["hello"], threads=1)
    assert "What to do" in str(error.value)


def test_size_on_disk_is_the_sum_of_file_sizes(trained):
    _, directory, _ = trained
    expected = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20
    assert expected > 0
    assert size_on_disk_mb(directory) == pytest.approx(expected)


def test_machine_info():
    info = machine_info()
    assert set(info) == {"cpu", "cores", "instruction_sets"}
    assert isinstance(info["cpu"], str)
    assert info["cores"] == os.cpu_count()
    assert isinstance(info["instruction_sets"], list)
    assert info["instruction_sets"] == sorted(info["instruction_sets"])


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_limit_threads_changes_and_restores():
    before = _blas_threads()
    assert before, "numpy's BLAS should be loaded"
    target = 1 if max(before) != 1 else 2
    with limit_threads(target) as effective:
        assert effective == target
        assert set(_blas_threads()) == {target}
    assert _blas_threads() == before
    with limit_threads(None) as effective:
        assert effective == os.cpu_count()


def test_limit_threads_sets_and_restores_torch_when_imported(monkeypatch):
    state = {"threads": 8}
    fake_torch = SimpleNamespace(
        get_num_threads=lambda: state["threads"], set_num_threads=lambda n: state.update(threads=n)
    )
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    with limit_threads(3):
        assert state["threads"] == 3
    assert state["threads"] == 8


def test_limit_threads_rejects_zero():
    with pytest.raises(TextdistillError, match="threads"):
        with limit_threads(0):
            pass


def test_measure_cost_report(trained):
    model, directory, texts = trained
    report = measure_cost(
        model, directory, texts, threads=1, latency_samples=20, warmup=2, batch_size=16, min_messages=40, repeats=2
    )
    assert isinstance(report, CostReport)
    data = report.to_dict()
    assert data["threads"] == 1
    assert data["n_params"] == model.n_params
    assert data["size_mb"] == pytest.approx(size_on_disk_mb(directory))
    assert data["settings"] == {
        "latency_samples": 20,
        "warmup": 2,
        "throughput_batch_size": 16,
        "throughput_messages": 48,
        "repeats": 2,
    }
    assert 0 < data["latency_ms_p50"] <= data["latency_ms_p95"]
    assert [q["quartile"] for q in data["latency_by_length"]] == [1, 2, 3, 4]
    assert sum(q["n"] for q in data["latency_by_length"]) == 20
    assert data["throughput_per_s"] > 0 and data["peak_rss_mb"] > 20


# -- latency at the data's real lengths ----------------------------------------------------------
class LengthSpy:
    """Sleeps in proportion to the text's length (like a transformer) and records every text."""

    n_params = 0

    def __init__(self):
        self.seen = []

    def predict_proba(self, texts):
        self.seen += texts
        time.sleep(sum(len(t) for t in texts) * 2e-5)
        return np.zeros((len(texts), 2))


def _lengths_1_to_40() -> list[str]:
    """Forty texts of 1..40 characters, longest first: data order says nothing about length."""
    return ["x" * n for n in range(40, 0, -1)]


def test_latency_sample_draws_evenly_from_each_length_quartile():
    texts = _lengths_1_to_40()
    drawn = latency_sample(texts, 20, seed=3)
    assert len(drawn) == 20
    for quartile, low, high in ((1, 1, 10), (2, 11, 20), (3, 21, 30), (4, 31, 40)):
        lengths = [len(texts[i]) for q, i in drawn if q == quartile]
        assert len(lengths) == 5 and all(low <= n <= high for n in lengths)
        assert len(set(lengths)) == 5  # no text twice while its quartile has others left
    assert [q for q, _ in drawn] != sorted(q for q, _ in drawn)  # timed in mixed order, not quartile by quartile
    assert latency_sample(texts, 20, seed=3) == drawn


def test_latency_sample_repeats_a_quartile_only_after_all_its_texts():
    texts = _lengths_1_to_40()
    drawn = latency_sample(texts, 48, seed=0)  # 12 per quartile of 10 texts
    for quartile in (1, 2, 3, 4):
        counts = np.bincount([i for q, i in drawn if q == quartile], minlength=40)
        members = [i for i, text in enumerate(texts) if (quartile - 1) * 10 < len(text) <= quartile * 10]
        assert sorted(counts[members]) == [1] * 8 + [2] * 2 and counts.sum() == 12


def test_latency_by_length_reports_every_quartile_of_the_real_lengths():
    texts = ["word " * n for n in range(80, 0, -1)]  # 5..400 characters
    spy = LengthSpy()
    p50, p95, by_length = measure_latency_by_length(spy, texts, samples=16, warmup=2)
    lengths = sorted(len(t) for t in texts)
    assert [q["quartile"] for q in by_length] == [1, 2, 3, 4]
    for q, part in zip(by_length, (lengths[:20], lengths[20:40], lengths[40:60], lengths[60:])):
        assert (q["min_chars"], q["max_chars"], q["n"]) == (part[0], part[-1], 4)
        assert 0 < q["p50_ms"] <= q["p95_ms"]
    assert by_length[3]["p50_ms"] > by_length[0]["p50_ms"]  # the longest quartile was timed, and is slower
    assert max(len(t) for t in spy.seen[2:]) >= lengths[60]
    assert 0 < p50 <= p95


def test_latency_by_length_with_fewer_texts_than_quartiles():
    spy = LengthSpy()
    _, _, by_length = measure_latency_by_length(spy, ["short", "a much longer message"], samples=3, warmup=0)
    assert [(q["quartile"], q["min_chars"], q["max_chars"], q["n"]) for q in by_length] == [(1, 5, 5, 2), (2, 21, 21, 1)]
