"""Teacher fine-tuning methods: exactly the right parameters train, and the encoder still works."""

import copy

import pytest
import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    GPT2Config,
    GPT2Model,
    MPNetConfig,
    MPNetModel,
    PreTrainedModel,
)

from textdistill.tuning import (
    TuningMethod,
    adapter_state_dict,
    count_parameters,
    load_adapter_state_dict,
    merge_lora,
    parse_method,
    prepare_encoder,
    transformer_layers,
)

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
ARCHITECTURES = {"bert": (BertConfig, BertModel), "mpnet": (MPNetConfig, MPNetModel)}
QUERY_VALUE = {"bert": ("query", "value"), "mpnet": ("q", "v")}


def tiny(arch="bert", seed=0):
    torch.manual_seed(seed)
    config_class, model_class = ARCHITECTURES[arch]
    return model_class(config_class(**TINY)).eval()


def batch():
    ids = torch.tensor([[5, 17, 42, 9, 3, 0], [7, 8, 60, 2, 0, 0]])
    return dict(input_ids=ids, attention_mask=(ids != 0).long())


def run(model, **kwargs):
    return model(**batch(), **kwargs).last_hidden_state


def trainable(module):
    return {name for name, p in module.named_parameters() if p.requires_grad}


def numel(module, names):
    return sum(p.numel() for name, p in module.named_parameters() if name in names)


# --- parse_method --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("full", TuningMethod("full")),
        ("freeze:9", TuningMethod("freeze", freeze_layers=9)),
        ("freeze:0", TuningMethod("freeze", freeze_layers=0)),
        ("bitfit", TuningMethod("bitfit")),
        ("adapter", TuningMethod("adapter", adapter_size=64)),
        ("adapter:16", TuningMethod("adapter", adapter_size=16)),
        ("lora", TuningMethod("lora", lora_rank=8)),
        (" LoRA:4 ", TuningMethod("lora", lora_rank=4)),
        ("head", TuningMethod("head")),
    ],
)
def test_parse_method_accepts_the_cli_forms(text, expected):
    assert parse_method(text) == expected


@pytest.mark.parametrize(
    "text", ["", "freeze", "freeze:", "freeze:-1", "freeze:x", "adapter:0", "lora:0", "lora:2.5", "full:3", "bitfit:1", "head:2", "prefix", "lora:8:1"]
)
def test_parse_method_rejects_other_forms_listing_the_valid_ones(text):
    with pytest.raises(ValueError, match=r"full, freeze:K, bitfit, adapter, adapter:SIZE, lora, lora:RANK, head"):
        parse_method(text)


def test_tuning_method_validates_its_fields():
    with pytest.raises(ValueError, match="unknown tuning method"):
        TuningMethod("prompt")
    with pytest.raises(ValueError):
        TuningMethod("freeze", freeze_layers=-1)
    with pytest.raises(ValueError):
        TuningMethod("lora", lora_dropout=1.0)


# --- counting, full, head ------------------------------------------------------------------


def test_count_parameters_counts_shared_weights_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Linear(4, 2), shared)
    model[1].requires_grad_(False)
    assert count_parameters(model) == (20, 30)


def test_full_trains_everything_and_head_nothing():
    encoder = tiny()
    total = sum(p.numel() for p in encoder.parameters())
    assert prepare_encoder(encoder, TuningMethod("full")) is encoder
    assert count_parameters(encoder) == (total, total)
    assert prepare_encoder(encoder, TuningMethod("head")) is encoder
    assert count_parameters(encoder) == (0, total)
    assert run(encoder).shape == (2, 6, 32)


# --- freeze --------------------------------------------------------------------------------


def test_transformer_layers_finds_bert_mpnet_and_distilbert_layers_and_refuses_others():
    bert, mpnet = tiny("bert"), tiny("mpnet")
    assert transformer_layers(bert) is bert.encoder.layer and transformer_layers(mpnet) is mpnet.encoder.layer
    distil = DistilBertModel(DistilBertConfig(vocab_size=100, dim=32, n_layers=3, n_heads=2, hidden_dim=64))
    assert transformer_layers(distil) is distil.transformer.layer
    with pytest.raises(ValueError, match="cannot find the transformer layers of GPT2Model"):
        transformer_layers(GPT2Model(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2)))


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_freeze_one_layer_freezes_embeddings_and_layer_zero_only(arch):
    encoder = prepare_encoder(tiny(arch), parse_method("freeze:1"))
    names = {name for name, _ in encoder.named_parameters()}
    frozen = {n for n in names if n.startswith(("embeddings.", "encoder.layer.0.", "encoder.relative_attention_bias."))}
    assert frozen and any(n.startswith("encoder.layer.0.") for n in frozen)
    assert trainable(encoder) == names - frozen
    assert any(n.startswith("encoder.layer.1.") for n in trainable(encoder))
    assert count_parameters(encoder) == (numel(encoder, names - frozen), numel(encoder, names))


def test_freeze_all_layers_leaves_only_the_pooler_and_too_many_is_refused():
    encoder = prepare_encoder(tiny(), parse_method("freeze:2"))
    assert trainable(encoder) == {"pooler.dense.weight", "pooler.dense.bias"}
    with pytest.raises(ValueError, match="freeze:3 asks for 3 frozen layers but the encoder has 2"):
        prepare_encoder(tiny(), parse_method("freeze:3"))


def test_freeze_undoes_an_earlier_freeze():
    encoder = prepare_encoder(tiny(), TuningMethod("head"))
    prepare_encoder(encoder, parse_method("freeze:0"))
    assert all(n.startswith("encoder.layer.") or n.startswith("pooler.") for n in trainable(encoder))
    assert any(n.startswith("encoder.layer.0.") for n in trainable(encoder))


# --- bitfit --------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_bitfit_trains_exactly_the_biases(arch):
    encoder = prepare_encoder(tiny(arch), parse_method("bitfit"))
    names = trainable(encoder)
    assert names and all(n.endswith(".bias") for n in names)
    assert names == {n for n, _ in encoder.named_parameters() if n.endswith(".bias")}
    assert "embeddings.LayerNorm.bias" in names and "encoder.layer.0.output.LayerNorm.bias" in names
    assert count_parameters(encoder)[0] == numel(encoder, names)


# --- adapters ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_adapters_train_only_adapters_and_layer_norms(arch):
    encoder = tiny(arch)
    total = sum(p.numel() for p in encoder.parameters())
    model = prepare_encoder(encoder, parse_method("adapter:8"))
    names = trainable(model)
    assert all(n.startswith("adapters.") or ".LayerNorm." in n for n in names)
    assert {n for n in names if n.startswith("adapters.")} == {
        f"adapters.{layer}.{where}.{proj}.{kind}"
        for layer in range(2)
        for where in ("attention", "feed_forward")
        for proj in ("down", "up")
        for kind in ("weight", "bias")
    }
    assert {n for n, _ in model.named_parameters() if ".LayerNorm." in n} <= names
    per_adapter = 32 * 8 + 8 + 8 * 32 + 32
    layer_norms = 5 * 2 * 32  # embeddings + two per layer
    assert count_parameters(model) == (2 * 2 * per_adapter + layer_norms, total + 2 * 2 * per_adapter)
    assert any(key.startswith("adapters.") for key in model.state_dict())
    assert model.config is encoder.config


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_adapters_start_as_the_pretrained_model_and_change_it_once_trained(arch):
    reference = run(tiny(arch))
    model = prepare_encoder(tiny(arch), TuningMethod("adapter", adapter_size=8))
    assert torch.equal(run(model), reference)
    out = model(**batch(), output_hidden_states=True)
    assert len(out.hidden_states) == 3 and torch.equal(out.last_hidden_state, reference)
    with torch.no_grad():
        model.adapters[1]["attention"].up.weight.normal_()
    # Only layer 1's adapter moved: layer 0's output is untouched, layer 1's changes.
    hidden = model(**batch(), output_hidden_states=True).hidden_states
    assert torch.equal(hidden[1], tiny(arch)(**batch(), output_hidden_states=True).hidden_states[1])
    assert not torch.allclose(hidden[2], reference, atol=1e-3)


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_adapter_backward_reaches_only_trainable_parameters(arch):
    model = prepare_encoder(tiny(arch), TuningMethod("adapter", adapter_size=8)).train()
    with torch.no_grad():
        for pair in model.adapters:
            for adapter in pair.values():
                adapter.up.weight.normal_(std=0.1)
    run(model).pow(2).mean().backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == trainable(model)
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in with_grad if n.startswith("adapters."))


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_adapter_state_round_trips_into_a_fresh_encoder(arch):
    model = prepare_encoder(tiny(arch), TuningMethod("adapter", adapter_size=8))
    with torch.no_grad():  # stand-in for training: move every trainable weight
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    state = adapter_state_dict(model)
    assert set(state) == trainable(model) and all(k.startswith("adapters.") or ".LayerNorm." in k for k in state)

    fresh = prepare_encoder(tiny(arch), TuningMethod("adapter", adapter_size=8))
    assert not torch.allclose(run(fresh), run(model))
    load_adapter_state_dict(fresh, {k: v.clone() for k, v in state.items()})
    assert torch.equal(run(fresh), run(model))

    with pytest.raises(ValueError, match="missing"):
        load_adapter_state_dict(fresh, {k: v for k, v in state.items() if not k.startswith("adapters.0.")})


def test_deep_copy_of_an_adapter_model_uses_its_own_adapters():
    model = prepare_encoder(tiny(), TuningMethod("adapter", adapter_size=8))
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.adapters[0]["feed_forward"].up.weight.normal_()
    assert torch.equal(run(model), run(tiny())) and not torch.allclose(run(twin), run(model))


# --- LoRA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_lora_trains_only_query_and_value_low_rank_matrices(arch):
    encoder = tiny(arch)
    total = sum(p.numel() for p in encoder.parameters())
    model = prepare_encoder(encoder, parse_method("lora:4"))
    names = trainable(model)
    query, value = QUERY_VALUE[arch]
    assert names and all(".lora_A." in n or ".lora_B." in n for n in names)
    assert {n.split(".lora_")[0].rsplit(".", 1)[1] for n in names} == {query, value}
    lora = 2 * 2 * (4 * 32 + 32 * 4)  # layers x projections x (A + B)
    assert count_parameters(model) == (lora, total + lora)
    out = model(**batch(), output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 6, 32) and len(out.hidden_states) == 3


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_trained_lora_merges_into_a_plain_encoder_with_the_same_output(arch):
    torch.manual_seed(1)
    base = run(tiny(arch))
    model = prepare_encoder(tiny(arch), TuningMethod("lora", lora_rank=4, lora_dropout=0.1)).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    target = torch.randn(2, 6, 32)
    for _ in range(5):
        optimizer.zero_grad()
        (run(model) - target).pow(2).mean().backward()
        optimizer.step()
    model.eval()
    tuned = run(model).detach()
    assert not torch.allclose(tuned, base, atol=1e-4)

    merged = merge_lora(model)
    assert isinstance(merged, PreTrainedModel) and type(merged) is ARCHITECTURES[arch][1]
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(run(merged.eval()), tuned, atol=1e-5, rtol=0)


def test_lora_targets_can_be_overridden_and_unknown_architectures_must_name_them():
    model = prepare_encoder(tiny(), TuningMethod("lora", lora_rank=2, lora_target_modules=("key",)))
    assert {n.split(".lora_")[0].rsplit(".", 1)[1] for n in trainable(model)} == {"key"}
    gpt2 = GPT2Model(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2))
    with pytest.raises(ValueError, match="no default LoRA targets for model type 'gpt2'"):
        prepare_encoder(gpt2, TuningMethod("lora"))
    with pytest.raises(TypeError):
        merge_lora(tiny())
