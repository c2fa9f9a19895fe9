"""Heads, losses and metrics of the utterance-level tasks: shapes, masking, formulas, brute-force metrics."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s3prl.downstream.heads import (
    XVECTOR_FRAME_REDUCTION, AMSoftmaxLoss, SoftmaxLoss, TDNN, UtteranceHead, XVectorHead,
    from_original_state_dict, mean_pool, statistics_pool)
from s3prl.downstream.metrics import accuracy, compute_eer, compute_min_dcf, cosine_scores, roc_points


def _padded(lengths, dim, fill=None, seed=0):
    """Per-utterance features and their padded batch (padding = ``fill`` or random garbage)."""
    gen = torch.Generator().manual_seed(seed)
    feats = [torch.randn(n, dim, generator=gen) for n in lengths]
    batch = torch.randn(len(lengths), max(lengths), dim, generator=gen) * 100 if fill is None else \
        torch.full((len(lengths), max(lengths), dim), float(fill))
    for i, f in enumerate(feats):
        batch[i, :len(f)] = f
    return feats, batch, torch.tensor(lengths)


# ----------------------------------------------------------------------------------------- pooling
def test_pooling_matches_direct_formulas():
    feats, batch, lengths = _padded([7, 3, 1, 5], 6)
    direct_mean = torch.stack([f.mean(0) for f in feats])
    assert torch.allclose(mean_pool(batch, lengths), direct_mean, atol=1e-6)
    stats = statistics_pool(batch, lengths)
    assert stats.shape == (4, 12)
    for i, f in enumerate(feats):
        std = f.std(0) if len(f) > 1 else torch.zeros(6)  # one frame: zero, not NaN
        assert torch.allclose(stats[i], torch.cat([f.mean(0), std]), atol=1e-5)


# ----------------------------------------------------------------------------------------- utterance head
def test_utterance_head_shapes_and_padding_invariance():
    torch.manual_seed(0)
    head = UtteranceHead(16, 12, projector_dim=8).eval()
    feats, batch, lengths = _padded([9, 4, 1], 16)
    logits = head(batch, lengths)
    assert logits.shape == (3, 12)
    alone = torch.cat([head(f[None], torch.tensor([len(f)])) for f in feats])
    assert torch.allclose(logits, alone, atol=1e-5)
    # no non-linearity: the head is projector -> mean -> classifier
    direct = head.classifier(head.projector(feats[0]).mean(0))
    assert torch.allclose(logits[0], direct, atol=1e-5)
    assert head.predict(logits).shape == (3,)
    loss = head.loss(logits, torch.tensor([0, 5, 11]))
    assert torch.allclose(loss, F.cross_entropy(logits, torch.tensor([0, 5, 11])))


def test_utterance_head_multi_output_for_intents():
    torch.manual_seed(0)
    head = UtteranceHead(10, (6, 14, 4))
    assert head.projector.out_features == 256
    _, batch, lengths = _padded([5, 3], 10)
    logits = head(batch, lengths)
    assert logits.shape == (2, 24) and [b.shape[1] for b in head.split(logits)] == [6, 14, 4]
    labels = torch.tensor([[1, 13, 0], [5, 0, 3]])
    a, o, loc = head.split(logits)
    expected = F.cross_entropy(a, labels[:, 0]) + F.cross_entropy(o, labels[:, 1]) + F.cross_entropy(loc, labels[:, 2])
    assert torch.allclose(head.loss(logits, labels), expected)
    pred = head.predict(logits)
    assert pred.shape == (2, 3) and torch.equal(pred[:, 1], o.argmax(-1))
    with pytest.raises(ValueError):
        UtteranceHead(10, [])


# ----------------------------------------------------------------------------------------- x-vector
def test_tdnn_matches_unfold_formula():
    torch.manual_seed(0)
    tdnn = TDNN(4, 3, context=3, dilation=2)
    x = torch.randn(2, 11, 4)
    # the original's layout: frames t, t+d, t+2d concatenated, via unfold over a (T, D) image
    unfolded = F.unfold(x[:, None], (3, 4), stride=(1, 4), dilation=(2, 1)).transpose(1, 2)  # (B, T-4, 12)
    assert torch.allclose(tdnn(x), F.relu(tdnn.kernel(unfolded)), atol=1e-6)
    assert tdnn(x).shape == (2, 7, 3)


def test_xvector_shapes_embedding_and_padding_invariance():
    torch.manual_seed(0)
    head = XVectorHead(12, hidden_size=16, aggregation_size=20, output_size=8).eval()
    assert XVECTOR_FRAME_REDUCTION == 14
    assert [(t.context, t.dilation) for t in head.tdnns] == [(5, 1), (3, 2), (3, 3), (1, 1), (1, 1)]
    assert head.tdnns[-1].kernel.out_features == 20 and head.linear1.in_features == 40
    feats, batch, lengths = _padded([40, 17, 15, 9, 1], 12)
    out, emb = head(batch, lengths), head.embed(batch, lengths)
    assert out.shape == (5, 8) and emb.shape == (5, 8)
    assert torch.allclose(out, F.relu(head.linear2(emb)))
    alone = torch.cat([head.embed(f[None], torch.tensor([len(f)])) for f in feats])
    assert torch.allclose(emb, alone, atol=1e-5)  # garbage padding, short utterances included
    # an utterance long enough gives the plain formula: TDNNs on its frames, mean || std, linear1 + ReLU
    x = head.projector(feats[0])[None]
    for tdnn in head.tdnns:
        x = tdnn(x)
    direct = F.relu(head.linear1(torch.cat([x[0].mean(0), x[0].std(0)])))
    assert x.shape[1] == 40 - 14 and torch.allclose(emb[0], direct, atol=1e-5)


# ----------------------------------------------------------------------------------------- losses
def test_am_softmax_matches_direct_formula():
    torch.manual_seed(0)
    loss_fn = AMSoftmaxLoss(8, 5)
    assert (loss_fn.margin, loss_fn.scale) == (0.4, 30.0) and loss_fn.W.shape == (8, 5)
    x, labels = torch.randn(6, 8), torch.tensor([0, 1, 4, 4, 2, 3])
    w = loss_fn.W / loss_fn.W.norm(dim=0, keepdim=True)
    cos = (x / x.norm(dim=1, keepdim=True)) @ w  # (B, C)
    total = 0.0
    for i, y in enumerate(labels.tolist()):  # -log( e^{s(cos_y - m)} / (e^{s(cos_y - m)} + sum_{j != y} e^{s cos_j}) )
        numerator = 30.0 * (cos[i, y] - 0.4)
        others = torch.cat([cos[i, :y], cos[i, y + 1:]])
        total = total - (numerator - torch.log(torch.exp(numerator) + torch.exp(30.0 * others).sum()))
    assert torch.allclose(loss_fn(x, labels), total / len(labels), atol=1e-4)
    loss_fn(x, labels).backward()
    assert loss_fn.W.grad is not None and torch.isfinite(loss_fn.W.grad).all()


def test_softmax_loss():
    torch.manual_seed(0)
    loss_fn = SoftmaxLoss(8, 5)
    x, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    assert torch.allclose(loss_fn(x, labels), F.cross_entropy(loss_fn.fc(x), labels))


def test_original_state_dict_keys():
    torch.manual_seed(0)
    head, loss_fn = XVectorHead(12, 16, 20, 8), AMSoftmaxLoss(8, 3)
    original = {"connector.weight": head.projector.weight, "connector.bias": head.projector.bias,
                "objective.W": loss_fn.W, "best_score": torch.ones(1)}
    for i, tdnn in enumerate(head.tdnns):
        for name, p in tdnn.kernel.named_parameters():
            original[f"model.framelevel_feature_extractor.module.{i}.kernel.{name}"] = p
    for layer in ("linear1", "linear2"):
        for name, p in getattr(head, layer).named_parameters():
            original[f"model.utterancelevel_feature_extractor.{layer}.{name}"] = p
    parts = from_original_state_dict(original, "xvector")
    XVectorHead(12, 16, 20, 8).load_state_dict(parts["head"], strict=True)
    AMSoftmaxLoss(8, 3).load_state_dict(parts["loss"], strict=True)
    utt = UtteranceHead(12, 4)
    parts = from_original_state_dict({"projector.weight": utt.projector.weight, "projector.bias": utt.projector.bias,
                                      "model.post_net.linear.weight": utt.classifier.weight,
                                      "model.post_net.linear.bias": utt.classifier.bias}, "utterance")
    UtteranceHead(12, 4).load_state_dict(parts["head"], strict=True)
    with pytest.raises(KeyError, match="model.pre_net.x"):
        from_original_state_dict({"model.pre_net.x": torch.zeros(1)}, "utterance")


# ----------------------------------------------------------------------------------------- metrics
def test_accuracy():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert accuracy(torch.tensor([[1, 2, 3], [1, 2, 0]]), torch.tensor([[1, 2, 3], [1, 2, 3]])) == 0.5  # all slots
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def _brute_roc(labels, scores):
    """ROC points by direct counting at every distinct threshold, strictest first."""
    pos, neg = sum(labels), len(labels) - sum(labels)
    points = [(0.0, 0.0)]
    for thr in sorted(set(scores), reverse=True):
        hits = sum(1 for y, s in zip(labels, scores) if s >= thr and y == 1)
        fas = sum(1 for y, s in zip(labels, scores) if s >= thr and y == 0)
        points.append((fas / neg, hits / pos))
    return points, sorted(set(scores), reverse=True)


def _brute_eer(labels, scores):
    """Bisection on the ROC polyline for miss rate == false-alarm rate."""
    points, _ = _brute_roc(labels, scores)

    def at(s):
        k = min(int(s), len(points) - 2)
        (f0, t0), (f1, t1) = points[k], points[k + 1]
        u = s - k
        return f0 + u * (f1 - f0), t0 + u * (t1 - t0)

    lo, hi = 0.0, float(len(points) - 1)
    for _ in range(200):
        mid = (lo + hi) / 2
        fpr, tpr = at(mid)
        lo, hi = (mid, hi) if 1 - tpr - fpr > 0 else (lo, mid)
    return at(hi)[0]


def _brute_min_dcf(labels, scores, p):
    points, _ = _brute_roc(labels, scores)
    return min((1 - tpr) * p + fpr * (1 - p) for fpr, tpr in points) / min(p, 1 - p)


def test_eer_and_min_dcf_against_brute_force():
    rng = random.Random(0)
    for trial in range(30):
        n = rng.randint(4, 40)
        labels = [rng.randint(0, 1) for _ in range(n)]
        labels[0], labels[1] = 0, 1
        tie_levels = rng.choice([3, 6, 1000])  # few distinct scores: many ties
        scores = [rng.randint(0, tie_levels) / tie_levels + 0.3 * y for y in labels]
        eer, _ = compute_eer(labels, scores)
        assert abs(eer - _brute_eer(labels, scores)) < 1e-9, trial
        for p in (0.01, 0.05, 0.5):
            assert abs(compute_min_dcf(labels, scores, p)[0] - _brute_min_dcf(labels, scores, p)) < 1e-12


def test_eer_known_cases_and_original_values():
    assert compute_eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])[0] == 0.0
    assert compute_eer([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])[0] == 1.0
    assert compute_eer([0, 1, 0, 1], [0.5] * 4)[0] == 0.5  # all tied: the diagonal
    assert compute_min_dcf([0, 1], [0.5, 0.5], 0.01)[0] == pytest.approx(1.0)
    fpr, tpr, thr = roc_points([0, 1, 1], [0.3, 0.3, 0.9])
    assert fpr.tolist() == [0, 0, 1] and tpr.tolist() == [0, 0.5, 1] and thr[0] == np.inf
    # values printed by the original s3prl.metric.compute_eer / compute_minDCF (sklearn + brentq) on these trials
    labels = [1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0]
    scores = [1, 2, 5, 3, 2, 4, 4, 5, 1, 2, 5, 4, 3, 2, 3, 3, 1, 3, 1, 2, 2, 4, 4, 4, 4, 4, 0, 1, 0, 3]
    assert compute_eer(labels, scores) == pytest.approx((0.39999999999999997, 3.266666666666667), abs=1e-9)
    assert compute_min_dcf(labels, scores, 0.01) == pytest.approx((0.823529411764706, 5.0))
    assert compute_min_dcf(labels, scores, 0.5) == pytest.approx((0.7601809954751131, 4.0))
    with pytest.raises(ValueError, match="target"):
        compute_eer([1, 1], [0.1, 0.2])


def test_cosine_scores():
    emb = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([2.0, 0.0]), "c": torch.tensor([0.0, 3.0])}
    labels, scores = cosine_scores(emb, [("a", "b", 1), ("a", "c", 0)])
    assert labels == [1, 0] and scores == pytest.approx([1.0, 0.0])
    with pytest.raises(KeyError, match="zz"):
        cosine_scores(emb, [("a", "zz", 1)])
