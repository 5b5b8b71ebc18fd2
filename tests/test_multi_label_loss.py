"""Multi-label hard-label losses: BCE, focal and class-balanced, in the teacher's loop, the
students' ce term and the TF-IDF baseline."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from textdistill.distill.losses import DistillBatch, WeightedLossSum, get_loss
from textdistill.distill.recipe import with_label_loss
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline
from textdistill.models.baseline import BaselineConfig
from textdistill.models.class_balance import effective_number, positive_weights
from textdistill.training.arguments import TrainingArguments
from textdistill.training.finetune import FineTuner
from textdistill.training.multi_label_loss import MultiLabelLoss

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 4.0, 0.0], [0.2, 0.1, -0.4]])
TARGETS = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_focal_with_gamma_0_is_bce_and_with_gamma_2_weighs_well_predicted_examples_less():
    bce = F.binary_cross_entropy_with_logits(LOGITS, TARGETS, reduction="none")
    torch.testing.assert_close(MultiLabelLoss("focal", gamma=0.0)(LOGITS, TARGETS), bce)
    torch.testing.assert_close(MultiLabelLoss("bce")(LOGITS, TARGETS), bce)
    focal = MultiLabelLoss("focal", gamma=2.0)(LOGITS, TARGETS)
    p_true = torch.where(TARGETS.bool(), LOGITS.sigmoid(), 1 - LOGITS.sigmoid())
    torch.testing.assert_close(focal, (1 - p_true) ** 2 * bce)
    ratio = focal / bce
    assert ratio[1, 1] < ratio[0, 2]  # the confident right answer (logit 4, positive) keeps less than the unsure one


def test_balanced_weighs_a_rare_labels_positive_more_than_a_frequent_ones():
    labels = torch.zeros(100, 2)
    labels[:50, 0] = 1  # frequent
    labels[:3, 1] = 1  # rare
    loss = MultiLabelLoss("balanced").fit(labels)
    weights = loss.positive_weights
    assert weights[1] > 10 * weights[0] and weights[0] == pytest.approx(1.0)  # 50/50: even
    same = torch.zeros(1, 2)
    positive = loss(same, torch.ones(1, 2))[0]
    negative = loss(same, torch.zeros(1, 2))[0]
    assert positive[1] / negative[1] == pytest.approx(weights[1].item())  # the rare label's positive weighs its weight
    assert positive[0] == pytest.approx(negative[0].item())


def test_balanced_weights_are_effective_number_ratios_capped_below_the_raw_count_ratio():
    weights = positive_weights(np.array([77, 20_000, 0]), 40_000)
    assert weights[0] == pytest.approx(effective_number(39_923) / effective_number(77))
    assert weights[0] < 39_923 / 77  # effective numbers saturate: not the raw 518x
    assert weights[1] == pytest.approx(1.0) and np.isfinite(weights[2]) and weights[2] > weights[0]
    with pytest.raises(TextdistillError, match="beta"):
        positive_weights(np.array([1]), 10, beta=1.0)


def test_a_balanced_loss_not_fitted_says_so():
    with pytest.raises(TextdistillError, match="fit"):
        MultiLabelLoss("balanced")(LOGITS, TARGETS)


@pytest.mark.parametrize("kind, gamma", [("bce", 2.0), ("focal", 2.0), ("focal", 0.5), ("balanced", 2.0)])
def test_gradients_stay_finite_on_saturated_logits(kind, gamma):
    logits = torch.tensor([[40.0, -40.0, 0.0], [-40.0, 40.0, 1e-4]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    loss = MultiLabelLoss(kind, gamma=gamma).fit(targets)
    loss(logits, targets).mean().backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[1, 0] < 0  # a badly wrong positive is still pushed up


def test_unknown_losses_and_bad_gammas_name_the_choices():
    with pytest.raises(TextdistillError, match="'dice' is unknown; choose one of: bce, focal, balanced"):
        MultiLabelLoss("dice")
    with pytest.raises(TextdistillError, match="gamma >= 0"):
        MultiLabelLoss("focal", gamma=-1)
    with pytest.raises(TextdistillError, match="choose one of: bce, focal, balanced"):
        TrainingArguments(multi_label_loss="Focal")
    with pytest.raises(TextdistillError, match="'focal' is not available for the TF-IDF baseline"):
        BaselineConfig(multi_label_loss="focal")


# -- where the losses are used ----------------------------------------------------------------
class Space:
    multi_label = True

    @staticmethod
    def encode(label_sets):
        return np.array([[label in labels for label in ("a", "b")] for labels in label_sets], dtype=np.int8)


class Model:
    label_space = Space()


def test_the_teachers_loop_uses_the_multi_label_loss_of_its_arguments_with_frequencies_of_its_labels():
    label_sets = [("a",)] * 9 + [("a", "b")]
    for kind in ("bce", "focal", "balanced"):
        tuner = FineTuner(TrainingArguments(multi_label_loss=kind))
        targets = tuner.targets(Model(), label_sets)
        expected = MultiLabelLoss(kind).fit(targets["labels"])(LOGITS[:, :2], TARGETS[:, :2]).mean()
        torch.testing.assert_close(tuner.loss(Model(), LOGITS[:, :2], {"labels": TARGETS[:, :2]}, {}), expected)
    assert tuner.label_loss.positive_weights[1] > tuner.label_loss.positive_weights[0]  # b: 1 of 10


def test_the_ce_term_counts_label_frequencies_on_annotated_rows_only():
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    mask = torch.tensor([True, True, False, False])  # unannotated rows carry placeholder labels
    objective = WeightedLossSum([{"name": "ce", "multi_label_loss": "balanced"}])
    objective.prepare(labels, mask)
    expected = MultiLabelLoss("balanced").fit(labels[:2])
    torch.testing.assert_close(objective.losses["ce"].multi_label_loss.positive_weights, expected.positive_weights)
    batch = DistillBatch(LOGITS[:2, :2], labels=labels[:2], multi_label=True)
    assert objective(batch)[0].item() == pytest.approx(expected(LOGITS[:2, :2], labels[:2]).mean().item())
    focal = get_loss("ce", multi_label_loss="focal", gamma=0.0)(batch)
    assert focal.item() == pytest.approx(get_loss("ce")(batch).item())  # gamma 0: plain BCE


def test_a_students_ce_terms_take_its_multi_label_loss_unless_they_name_one():
    terms = [{"name": "kd", "weight": 0.7}, {"name": "ce", "weight": 0.3}]
    assert with_label_loss(terms, "focal") == [{"name": "kd", "weight": 0.7}, {"name": "ce", "multi_label_loss": "focal", "weight": 0.3}]
    own = [{"name": "ce", "multi_label_loss": "bce"}]
    assert with_label_loss(own, "balanced") == own


def test_the_balanced_baseline_gives_a_rare_label_higher_probabilities_and_records_its_loss(tmp_path):
    texts = [f"order {i} arrived late" for i in range(40)] + [f"refund order {i} please" for i in range(4)]
    label_sets = [("delivery",)] * 40 + [("delivery", "refund")] * 4
    rare = ["refund order 99 please", "refund please"]
    plain = TfidfBaseline().fit(texts, label_sets, multi_label=True)
    balanced = TfidfBaseline(BaselineConfig(multi_label_loss="balanced")).fit(texts, label_sets, multi_label=True)
    column = plain.label_space.index("refund")
    assert (balanced.predict_proba(rare)[:, column] > plain.predict_proba(rare)[:, column]).all()
    balanced.save(tmp_path / "b")
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["config"]["baseline"]["multi_label_loss"] == "balanced"
