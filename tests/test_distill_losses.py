"""Distillation losses against hand-computed values, the loss registry, and the forward-hook recorder."""

import math

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, MPNetConfig, MPNetModel

from textdistill.distill.hooks import HiddenStateRecorder, layer_paths
from textdistill.distill.losses import DistillBatch, WeightedLossSum, available_losses, get_loss
from textdistill.distill.losses.pkd import pkd_teacher_layers
from textdistill.distill.losses.states import uniform_layer_map
from textdistill.errors import TextdistillError
from textdistill.models.transformer import EncoderNetwork

ALL_LOSSES = ["ce", "cosine", "kd", "logit_mse", "pkd", "tinybert_attention", "tinybert_embedding", "tinybert_hidden"]


def t(values):
    return torch.tensor(values, dtype=torch.float32)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def softmax2(a, b):
    return math.exp(a) / (math.exp(a) + math.exp(b)), math.exp(b) / (math.exp(a) + math.exp(b))


def states(*values, width=2, tokens=2):
    """One (1, tokens, width) tensor per value, every entry equal to that value."""
    return [torch.full((1, tokens, width), float(v)) for v in values]


# -- losses on logits and labels -----------------------------------------------------------


def test_the_registry_knows_every_loss():
    assert available_losses() == ALL_LOSSES


def test_kd_single_label_is_the_tempered_kl_by_hand():
    student, teacher = t([[1.0, 0.0], [0.0, 2.0]]), t([[2.0, 0.0], [0.0, 0.0]])
    # T = 2: teacher z/T = [1, 0] and [0, 0]; student z/T = [0.5, 0] and [0, 1].
    p1, q1 = softmax2(1, 0), softmax2(0.5, 0)
    p2, q2 = softmax2(0, 0), softmax2(0, 1)
    kl1 = p1[0] * math.log(p1[0] / q1[0]) + p1[1] * math.log(p1[1] / q1[1])
    kl2 = p2[0] * math.log(p2[0] / q2[0]) + p2[1] * math.log(p2[1] / q2[1])
    expected = 2**2 * (kl1 + kl2) / 2
    value = get_loss("kd", temperature=2.0)(DistillBatch(student, teacher))
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_kd_is_zero_when_the_student_is_the_teacher():
    logits = t([[1.5, -0.3, 0.2], [0.0, 4.0, -2.0]])
    assert get_loss("kd", temperature=3.0)(DistillBatch(logits, logits.clone())).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_multi_label_is_the_per_label_bce_against_teacher_sigmoids():
    student, teacher = t([[0.0, 2.0], [-4.0, 1.0]]), t([[2.0, -2.0], [0.0, 6.0]])
    T = 2.0
    terms = []
    for zs_row, zt_row in zip(student.tolist(), teacher.tolist()):
        for zs, zt in zip(zs_row, zt_row):
            q, p = sigmoid(zs / T), sigmoid(zt / T)
            terms.append(-(p * math.log(q) + (1 - p) * math.log(1 - q)))
    expected = T**2 * sum(terms) / len(terms)
    value = get_loss("kd", temperature=T)(DistillBatch(student, teacher, multi_label=True))
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_kd_rejects_a_non_positive_temperature():
    with pytest.raises(TextdistillError, match="temperature > 0"):
        get_loss("kd", temperature=0)


def test_ce_uses_only_the_labelled_rows():
    logits = t([[1.0, 0.0], [3.0, -3.0], [0.0, 0.0]]).requires_grad_()
    # Row 2 is unannotated: its label 7 is out of range and would fail if it were used.
    batch = DistillBatch(logits, labels=torch.tensor([0, 7, 1]), label_mask=torch.tensor([True, False, True]))
    expected = (-math.log(softmax2(1, 0)[0]) + math.log(2)) / 2
    value = get_loss("ce")(batch)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.backward()
    assert logits.grad[1].abs().sum() == 0


def test_ce_multi_label_is_the_bce_over_labelled_rows():
    logits = t([[0.0, 2.0], [9.0, 9.0], [-1.0, 1.0]])
    labels = t([[1.0, 0.0], [float("nan"), float("nan")], [0.0, 1.0]])
    batch = DistillBatch(logits, labels=labels, label_mask=torch.tensor([True, False, True]), multi_label=True)
    terms = [-math.log(sigmoid(0.0)), -math.log(1 - sigmoid(2.0)), -math.log(1 - sigmoid(-1.0)), -math.log(sigmoid(1.0))]
    assert get_loss("ce")(batch).item() == pytest.approx(sum(terms) / 4, rel=1e-6)


@pytest.mark.parametrize("multi_label", [False, True])
def test_ce_is_a_zero_with_a_graph_when_no_row_is_labelled(multi_label):
    logits = t([[1.0, 0.0], [0.0, 1.0]]).requires_grad_()
    labels = torch.zeros(2, 2) if multi_label else torch.tensor([0, 1])
    for batch in (
        DistillBatch(logits, labels=labels, label_mask=torch.tensor([False, False]), multi_label=multi_label),
        DistillBatch(logits, multi_label=multi_label),  # no labels at all
    ):
        value = get_loss("ce")(batch)
        assert value.item() == 0.0 and not math.isnan(value.item())
        value.backward()
        assert logits.grad.abs().sum() == 0


def test_logit_mse_by_hand():
    batch = DistillBatch(t([[1.0, 2.0], [3.0, 4.0]]), t([[1.0, 0.0], [0.0, 4.0]]))
    assert get_loss("logit_mse")(batch).item() == pytest.approx((0 + 4 + 9 + 0) / 4)


def test_batch_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        DistillBatch(t([[1.0, 2.0]]), t([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="label_mask"):
        DistillBatch(t([[1.0, 2.0]]), labels=torch.tensor([0]), label_mask=torch.tensor([1]))


# -- losses on intermediate states ---------------------------------------------------------


def test_cosine_averages_over_real_tokens_of_the_final_layer():
    student = [torch.zeros(1, 3, 2), t([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])]
    teacher = [torch.zeros(1, 3, 2), t([[[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]])]
    batch = DistillBatch(t([[0.0, 0.0]]), student_hidden=student, teacher_hidden=teacher, attention_mask=torch.tensor([[1, 1, 0]]))
    expected = ((1 - 1) + (1 - 1 / math.sqrt(2))) / 2  # the third token is padding
    assert get_loss("cosine")(batch).item() == pytest.approx(expected, rel=1e-6)


def test_uniform_layer_map():
    assert uniform_layer_map(3, 12) == {1: 4, 2: 8, 3: 12}
    assert uniform_layer_map(2, 4) == {1: 2, 2: 4}
    assert uniform_layer_map(4, 6) == {1: 1, 2: 3, 3: 4, 4: 6}
    with pytest.raises(TextdistillError, match="layer_map"):
        uniform_layer_map(4, 2)


def test_tinybert_hidden_follows_the_uniform_and_the_explicit_layer_map():
    # Student states are all 0; teacher layer k is all k, so a mapped pair (l, k) costs k².
    batch = DistillBatch(t([[0.0, 0.0]]), student_hidden=states(0, 0, 0), teacher_hidden=states(0, 1, 2, 3, 4))
    assert get_loss("tinybert_hidden")(batch).item() == pytest.approx(2**2 + 4**2)  # {1: 2, 2: 4}
    assert get_loss("tinybert_hidden", layer_map={1: 1, 2: 3})(batch).item() == pytest.approx(1**2 + 3**2)
    assert get_loss("tinybert_hidden", layer_map={"2": 1})(batch).item() == pytest.approx(1**2)  # TOML keys are strings
    with pytest.raises(TextdistillError, match="beyond"):
        get_loss("tinybert_hidden", layer_map={3: 1})(batch)


def test_tinybert_embedding_excludes_padding():
    student = [t([[[0.0, 0.0], [100.0, 100.0]]]), torch.zeros(1, 2, 2)]
    teacher = [torch.full((1, 2, 2), 0.5), torch.zeros(1, 2, 2)]
    batch = DistillBatch(t([[0.0, 0.0]]), student_hidden=student, teacher_hidden=teacher, attention_mask=torch.tensor([[1, 0]]))
    assert get_loss("tinybert_embedding")(batch).item() == pytest.approx(0.25)


def test_tinybert_projection_only_when_the_widths_differ_and_it_learns():
    assert list(get_loss("tinybert_hidden").parameters()) == []
    assert list(get_loss("tinybert_hidden", student_dim=3, teacher_dim=3).parameters()) == []
    loss = get_loss("tinybert_hidden", student_dim=2, teacher_dim=3)
    assert isinstance(loss.width.projection, nn.Linear)
    with torch.no_grad():
        loss.width.projection.weight.copy_(t([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        loss.width.projection.bias.zero_()
    student = [torch.zeros(1, 2, 2, requires_grad=True), t([[[1.0, 2.0], [3.0, 4.0]]]).requires_grad_()]
    teacher = [torch.zeros(1, 2, 3), t([[[1.0, 2.0, 3.0], [3.0, 4.0, 0.0]]])]
    value = loss(DistillBatch(t([[0.0, 0.0]]), student_hidden=student, teacher_hidden=teacher))
    assert value.item() == pytest.approx(3.0**2 / 6)  # projected student = [1, 2, 0], [3, 4, 0]
    value.backward()
    assert loss.width.projection.weight.grad.abs().sum() > 0 and student[1].grad is not None


def test_tinybert_without_dims_names_them_when_the_widths_differ():
    batch = DistillBatch(t([[0.0, 0.0]]), student_hidden=states(0, 0, width=2), teacher_hidden=states(0, 0, width=3))
    with pytest.raises(TextdistillError, match="student_dim=2 and teacher_dim=3"):
        get_loss("tinybert_hidden")(batch)


def test_tinybert_attention_maps_layers_averages_heads_and_skips_padding():
    # One student layer, two teacher layers: the uniform map compares student 1 with teacher 2.
    # Only (query 0, key 0) is between real tokens; there head 0 differs by 0.5 and head 1 by 0.1.
    student = torch.zeros(1, 2, 2, 2)
    teacher_top = torch.full((1, 2, 2, 2), 9.0)
    teacher_top[0, 0, 0, 0], teacher_top[0, 1, 0, 0] = 0.5, 0.1
    batch = DistillBatch(
        t([[0.0, 0.0]]),
        student_attentions=[student],
        teacher_attentions=[torch.full((1, 2, 2, 2), -7.0), teacher_top],
        attention_mask=torch.tensor([[1, 0]]),
    )
    assert get_loss("tinybert_attention")(batch).item() == pytest.approx((0.5**2 + 0.1**2) / 2)
    assert get_loss("tinybert_attention", layer_map={1: 1})(batch).item() == pytest.approx(7.0**2)


def test_pkd_picks_the_teacher_layers_of_its_strategy():
    assert pkd_teacher_layers(6, 12, "skip") == [2, 4, 6, 8, 10]
    assert pkd_teacher_layers(6, 12, "last") == [7, 8, 9, 10, 11]
    assert pkd_teacher_layers(3, 6, "skip") == [2, 4]
    assert pkd_teacher_layers(3, 6, "last") == [4, 5]


def test_pkd_compares_normalised_cls_states_of_the_chosen_layers():
    def cls_states(*vectors):  # position 0 is [CLS]; position 1 is noise the "cls" pooling ignores
        return [torch.stack([t(v), t([50.0, -50.0])]).unsqueeze(0) for v in vectors]

    student = cls_states([0, 0], [1, 0], [0, 1], [0, 0])  # embeddings, layers 1-3
    # Teacher layers 2 and 4 point like student layers 1 and 2 ("skip"); layers 4 and 5 are "last".
    teacher = cls_states([0, 0], [-1, 0], [3, 0], [-1, 0], [0, 2], [0, 7], [5, 5])
    batch = DistillBatch(t([[0.0, 0.0]]), student_hidden=student, teacher_hidden=teacher)
    assert get_loss("pkd", strategy="skip")(batch).item() == pytest.approx(0.0)
    # last: [1, 0] against [0, 1] (squared differences 1 + 1), [0, 1] against [0, 1]; mean over 2 layers x 2 dims.
    assert get_loss("pkd", strategy="last")(batch).item() == pytest.approx(2 / 4)


def test_pkd_mean_pooling_skips_padding():
    student = [torch.zeros(1, 2, 2), t([[[1.0, 0.0], [1.0, 0.0]]]), torch.zeros(1, 2, 2)]
    teacher = [torch.zeros(1, 2, 2), t([[[0.0, 1.0], [2.0, 1.0]]]), torch.zeros(1, 2, 2)]
    batch = DistillBatch(t([[0.0, 0.0]]), student_hidden=student, teacher_hidden=teacher, attention_mask=torch.tensor([[1, 1]]))
    # Teacher layer 1 mean-pools to [1, 1] -> [1, 1]/√2; the student's to [1, 0].
    expected = ((1 - 1 / math.sqrt(2)) ** 2 + (1 / math.sqrt(2)) ** 2) / 2
    assert get_loss("pkd", pooling="mean")(batch).item() == pytest.approx(expected, rel=1e-6)
    batch.attention_mask = torch.tensor([[0, 1]])  # now only [2, 1] counts for the teacher
    expected = ((1 - 2 / math.sqrt(5)) ** 2 + (1 / math.sqrt(5)) ** 2) / 2
    assert get_loss("pkd", pooling="mean")(batch).item() == pytest.approx(expected, rel=1e-6)


def test_teacher_losses_are_zero_in_a_hard_label_only_step_but_wiring_mistakes_raise():
    logits = t([[1.0, 0.0]]).requires_grad_()
    batch = DistillBatch(logits, labels=torch.tensor([0]))
    for name in ALL_LOSSES:
        if name != "ce":
            assert get_loss(name)(batch).item() == 0.0
    with pytest.raises(ValueError, match="teacher_hidden"):
        get_loss("tinybert_hidden")(DistillBatch(logits, t([[0.0, 1.0]])))  # the teacher ran, its states are missing
    with pytest.raises(ValueError, match="student_hidden"):
        get_loss("cosine")(DistillBatch(logits, teacher_hidden=states(0, 1)))


# -- the weighted sum -----------------------------------------------------------------------


def test_weighted_loss_sum_adds_the_weighted_terms():
    batch = DistillBatch(t([[1.0, 0.0], [0.0, 2.0]]), t([[2.0, 0.0], [0.0, 0.0]]), labels=torch.tensor([0, 1]))
    objective = WeightedLossSum(
        [{"name": "kd", "weight": 0.5, "temperature": 2.0}, {"name": "ce", "weight": 0.25}, {"name": "logit_mse", "weight": 2}]
    )
    total, values = objective(batch)
    kd, ce, mse = get_loss("kd", temperature=2.0)(batch), get_loss("ce")(batch), get_loss("logit_mse")(batch)
    assert values == {"kd": pytest.approx(kd.item()), "ce": pytest.approx(ce.item()), "logit_mse": pytest.approx(mse.item())}
    assert total.item() == pytest.approx(0.5 * kd.item() + 0.25 * ce.item() + 2 * mse.item())
    assert WeightedLossSum([{"name": "ce"}])(batch)[0].item() == pytest.approx(ce.item())  # weight 1 by default


def test_weighted_loss_sum_exposes_the_projection_parameters():
    objective = WeightedLossSum([{"name": "tinybert_hidden", "student_dim": 16, "teacher_dim": 32, "layer_map": {1: 2}}])
    assert sum(p.numel() for p in objective.parameters()) == 16 * 32 + 32


@pytest.mark.parametrize(
    "terms, message",
    [
        ([{"name": "kdd"}], "unknown loss 'kdd'; the losses are: " + ", ".join(ALL_LOSSES)),
        ([{"name": "kd", "temp": 2.0}], "loss 'kd' has no parameter 'temp'; its parameters are: temperature"),
        ([{"name": "logit_mse", "temperature": 2.0}], "it takes no parameters"),
        ([{"name": "ce", "temperature": 2.0}], "its parameters are: multi_label_loss, gamma, beta"),
        ([{"name": "ce", "multi_label_loss": "dice"}], "multi-label loss 'dice' is unknown; choose one of: bce, focal, balanced"),
        ([{"name": "pkd", "strategy": "first"}], "strategy in"),
        ([{"weight": 1.0}], "loss term 1 has no 'name'"),
        ([{"name": "ce"}, {"name": "kd", "weight": -1}], "loss term 2 has weight -1"),
        ([{"name": "ce"}, {"name": "ce"}], "repeats loss 'ce'"),
        ([], "no loss terms"),
    ],
)
def test_weighted_loss_sum_rejects_bad_terms_with_the_valid_choices(terms, message):
    with pytest.raises(TextdistillError) as error:
        WeightedLossSum(terms)
    assert message in str(error.value)


# -- forward hooks ---------------------------------------------------------------------------

TINY = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def tiny_encoder(kind="bert"):
    torch.manual_seed(0)
    if kind == "distilbert":
        return DistilBertModel(DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=64)).eval()
    config_class, model_class = {"bert": (BertConfig, BertModel), "mpnet": (MPNetConfig, MPNetModel)}[kind]
    return model_class(config_class(**TINY)).eval()


def inputs():
    return {"input_ids": torch.tensor([[2, 7, 9, 11, 3], [2, 8, 3, 0, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}


def hook_count(model):
    return sum(len(module._forward_hooks) for module in model.modules())


@pytest.mark.parametrize("kind, layers", [("bert", "encoder.layer"), ("mpnet", "encoder.layer"), ("distilbert", "transformer.layer")])
def test_recorder_matches_output_hidden_states_and_removes_its_hooks(kind, layers):
    model = tiny_encoder(kind)
    paths = layer_paths(model, embeddings=True)
    assert paths == ["embeddings", f"{layers}.0", f"{layers}.1"]
    with torch.no_grad():
        expected = model(**inputs(), output_hidden_states=True).hidden_states
        own_hooks = hook_count(model)  # transformers 5 leaves hooks of its own once output_hidden_states was asked for
        with HiddenStateRecorder(model, paths) as recorder:
            model(**inputs())
            assert hook_count(model) == own_hooks + 3
    assert hook_count(model) == own_hooks
    assert len(recorder.outputs) == len(expected) == 3
    for recorded, reference in zip(recorder.outputs, expected):
        assert torch.equal(recorded, reference)


def test_recorder_reaches_the_encoder_inside_a_classifier_network():
    encoder = tiny_encoder()
    network = EncoderNetwork(encoder, 32, n_labels=3, dropout=0.0).eval()
    assert layer_paths(network) == ["encoder.encoder.layer.0", "encoder.encoder.layer.1"]
    with torch.no_grad():
        expected = encoder(**inputs(), output_hidden_states=True).hidden_states
        own_hooks = hook_count(network)
        with HiddenStateRecorder(network, [*layer_paths(network), "encoder.encoder.layer.0.attention"]) as recorder:
            network(**inputs())
    layer_0, layer_1, attention = recorder.outputs
    assert torch.equal(layer_0, expected[1]) and torch.equal(layer_1, expected[2])
    assert attention.shape == (2, 5, 32)  # a sublayer that output_hidden_states does not give
    assert hook_count(network) == own_hooks


def test_recorder_takes_the_first_element_of_a_tuple_and_keeps_gradients():
    student = nn.ModuleDict({"embed": nn.Embedding(10, 4), "lstm": nn.LSTM(4, 3, batch_first=True, bidirectional=True)})
    with HiddenStateRecorder(student, ["lstm"]) as recorder:
        output, _ = student["lstm"](student["embed"](torch.tensor([[1, 2, 3]])))
    (recorded,) = recorder.outputs
    assert torch.equal(recorded, output) and recorded.requires_grad


def test_recorder_names_what_is_wrong():
    model = tiny_encoder()
    with pytest.raises(TextdistillError, match=r"no submodule 'encoder.layer.5'.*embeddings, encoder, pooler"):
        HiddenStateRecorder(model, ["encoder.layer.5"])
    recorder = HiddenStateRecorder(model, ["encoder.layer.1"])
    with pytest.raises(RuntimeError, match="nothing recorded for encoder.layer.1"):
        recorder.outputs
    with pytest.raises(TextdistillError, match="found no transformer layers"):
        layer_paths(nn.Linear(2, 2))
