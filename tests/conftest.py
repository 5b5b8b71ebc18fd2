import os

import pytest

from textdistill.data.sample import write_sample_dataset
from textdistill.progress import set_quiet


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Model aliases and cached features go to a throw-away directory, not the user's cache
    (subprocesses started by tests inherit it through the environment)."""
    previous = os.environ.get("TEXTDISTILL_CACHE")
    os.environ["TEXTDISTILL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("TEXTDISTILL_CACHE", None)
    else:
        os.environ["TEXTDISTILL_CACHE"] = previous


@pytest.fixture(autouse=True)
def quiet_progress():
    set_quiet(True)
    yield
    set_quiet(False)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """A small copy of the built-in email sample: hierarchical, partly multi-label; no annotations
    planted wrong, so that learning tests measure the models, not the noise (tests of the label
    check plant their own)."""
    return write_sample_dataset(tmp_path_factory.mktemp("sample"), seed=1, n_train=400, n_test=160, n_unannotated=50, n_label_errors=0)


TINY_WORDS = (
    "refund money back charge charged twice card payment invoice order parcel late delivery courier arrived "
    "password reset login account locked cannot log in where is my the a please help thanks hello hi i want to "
    "it was not has been broken damaged box item wrong address cancel subscription plan upgrade great service"
).split()


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    """A randomly initialised 2-layer, 32-wide BERT with a small WordPiece vocabulary, saved
    like a pretrained model (config, safetensors, tokenizer), so tests run offline and fast."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(TINY_WORDS)), *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"], *"abcdefghijklmnopqrstuvwxyz0123456789.,!?"]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
