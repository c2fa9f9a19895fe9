"""Heads and losses of the SUPERB utterance-level tasks.

- :class:`UtteranceHead` (KS, IC, SID, ER): ``Linear(D -> 256)`` on every frame, the mean over the valid
  frames, ``Linear(256 -> classes)``. No non-linearity, as the original ``UtteranceLevel`` with
  ``MeanPooling`` and a ``FrameLevel`` post-net without hidden layers. IC has one output block per slot.
- :class:`XVectorHead` (ASV): ``Linear(D -> 512)``, five TDNN layers (context 5/3/3/1/1, dilation
  1/2/3/1/1, ReLU, the last to 1500), statistics pooling (mean ‖ unbiased std over the valid frames), then
  ``Linear(3000 -> 512) + ReLU`` (the embedding scored at test time) and ``Linear(512 -> 512) + ReLU``
  (used for training only), as the original ``sv_voxceleb1`` model (no batch norm, no dropout).
- :class:`AMSoftmaxLoss` (scale 30, margin 0.4) and :class:`SoftmaxLoss`, as the original ``sv_voxceleb1``.

Padding never changes an utterance's output: pooling only reads valid frames, and the x-vector zeroes
padded frames before its convolutions so that an utterance too short for the TDNN context (< 15 frames)
sees the same zeros it would see alone.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# (context size, dilation) of the five x-vector TDNN layers; they shorten a sequence by 14 frames in all
XVECTOR_TDNNS = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))
XVECTOR_FRAME_REDUCTION = sum((ctx - 1) * dil for ctx, dil in XVECTOR_TDNNS)


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) bool, True on the first ``lengths[b]`` frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def mean_pool(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (B, T, D) over each utterance's valid frames -> (B, D); zero for an empty utterance."""
    mask = valid_mask(lengths, x.size(1)).unsqueeze(-1)  # (B, T, 1)
    total = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=1)  # (B, D)
    return total / lengths.clamp(min=1).unsqueeze(-1).to(x.dtype)


def statistics_pool(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean ‖ unbiased standard deviation over valid frames: (B, T, D) -> (B, 2D).

    One valid frame gives a zero deviation (the original's ``torch.std`` would give NaN).
    """
    mask = valid_mask(lengths, x.size(1)).unsqueeze(-1)  # (B, T, 1)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    n = lengths.clamp(min=1).unsqueeze(-1).to(x.dtype)  # (B, 1)
    mean = torch.where(mask, x, zero).sum(dim=1) / n  # (B, D)
    sq_dev = torch.where(mask, (x - mean.unsqueeze(1)) ** 2, zero).sum(dim=1)  # (B, D)
    var = sq_dev / (n - 1).clamp(min=1)
    # sqrt has an infinite gradient at 0 (one valid frame, or a constant feature): take it where var > 0 only
    positive = var > 0
    std = torch.where(positive, torch.sqrt(torch.where(positive, var, torch.ones_like(var))), zero)
    return torch.cat([mean, std], dim=-1)


class UtteranceHead(nn.Module):
    """SUPERB utterance classifier: projector, masked mean pooling, linear classifier.

    Args:
        input_size: feature size of the upstream (the featurizer's output).
        output_size: number of classes, or a sequence of them for several outputs (IC's slots): the
            logits are then the concatenation of one block per output (see :meth:`split`).
        projector_dim: the original's ``projector_dim`` (256).
    """

    def __init__(self, input_size: int, output_size: int | Sequence[int], projector_dim: int = 256):
        super().__init__()
        sizes = (output_size,) if isinstance(output_size, int) else tuple(int(s) for s in output_size)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"output_size must be a positive int or a sequence of them, got {output_size!r}")
        self.output_sizes = sizes
        self.projector = nn.Linear(input_size, projector_dim)
        self.classifier = nn.Linear(projector_dim, sum(sizes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B, sum(output_sizes)) of features ``x`` (B, T, D) with valid frame counts ``lengths`` (B,)."""
        x = self.projector(x)  # (B, T, P)
        return self.classifier(mean_pool(x, lengths))  # (B, C)

    def split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One (B, C_k) block of logits per output."""
        return torch.split(logits, list(self.output_sizes), dim=-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, summed over outputs for several (``labels`` (B, K)) as the original IC."""
        if len(self.output_sizes) == 1:
            return F.cross_entropy(logits, labels.reshape(-1))
        labels = labels.reshape(labels.size(0), -1)  # (B, K)
        return sum(F.cross_entropy(block, labels[:, k]) for k, block in enumerate(self.split(logits)))

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Class ids: (B,) for one output, (B, K) for several."""
        if len(self.output_sizes) == 1:
            return logits.argmax(dim=-1)
        return torch.stack([block.argmax(dim=-1) for block in self.split(logits)], dim=-1)


class TDNN(nn.Module):
    """Time-delay layer: ReLU(Linear) over ``context`` frames ``dilation`` apart; valid frames only
    (the output is ``(context - 1) * dilation`` frames shorter). The weight sees the frames concatenated
    oldest first, the layout of the original's unfold-based layer, so its weights load unchanged."""

    def __init__(self, input_size: int, output_size: int, context: int, dilation: int):
        super().__init__()
        self.context, self.dilation = context, dilation
        self.kernel = nn.Linear(input_size * context, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        span = (self.context - 1) * self.dilation
        out_len = x.size(1) - span
        frames = [x[:, i * self.dilation: i * self.dilation + out_len] for i in range(self.context)]
        return F.relu(self.kernel(torch.cat(frames, dim=-1)))  # (B, T - span, O)


class XVectorHead(nn.Module):
    """SUPERB ASV x-vector: projector, 5 TDNNs, statistics pooling, two affine layers.

    ``forward`` gives the training output (after both affine layers, fed to the loss); :meth:`embed` gives
    the speaker embedding scored at test time (after the first one), as the original.
    """

    def __init__(self, input_size: int, hidden_size: int = 512, aggregation_size: int = 1500,
                 output_size: int = 512):
        super().__init__()
        self.output_size = output_size
        self.projector = nn.Linear(input_size, hidden_size)
        sizes = [hidden_size] * len(XVECTOR_TDNNS) + [aggregation_size]
        self.tdnns = nn.ModuleList(
            TDNN(sizes[i], sizes[i + 1], ctx, dil) for i, (ctx, dil) in enumerate(XVECTOR_TDNNS))
        self.linear1 = nn.Linear(2 * aggregation_size, output_size)
        self.linear2 = nn.Linear(output_size, output_size)

    def pooled(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Statistics (B, 2 * aggregation_size) of features ``x`` (B, T, D) with ``lengths`` (B,) valid frames."""
        x = self.projector(x)  # (B, T, H)
        # zero the padding so that a short utterance's context reads zeros whatever its batch holds
        mask = valid_mask(lengths, x.size(1)).unsqueeze(-1)  # (B, T, 1)
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        if x.size(1) <= XVECTOR_FRAME_REDUCTION:  # too short for the context: pad with zeros to one output frame
            x = F.pad(x, (0, 0, 0, XVECTOR_FRAME_REDUCTION + 1 - x.size(1)))
        for tdnn in self.tdnns:
            x = tdnn(x)  # (B, T', H)
        frames = (lengths - XVECTOR_FRAME_REDUCTION).clamp(min=1)
        return statistics_pool(x, frames)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Speaker embedding (B, output_size): the first affine layer + ReLU, as scored by the original."""
        return F.relu(self.linear1(self.pooled(x, lengths)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Training output (B, output_size) for the speaker loss."""
        return F.relu(self.linear2(self.embed(x, lengths)))


class AMSoftmaxLoss(nn.Module):
    """Additive-margin softmax: cross-entropy of ``scale * (cos(x, w_c) - margin * [c == y])``.

    ``W`` (input_size, num_classes) is initialised Xavier-normal, as the original's.
    """

    def __init__(self, input_size: int, num_classes: int, margin: float = 0.4, scale: float = 30.0):
        super().__init__()
        self.margin, self.scale = margin, scale
        self.W = nn.Parameter(torch.empty(input_size, num_classes))
        nn.init.xavier_normal_(self.W, gain=1.0)

    def logits(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Scaled cosines with the margin taken off each target class: (B, C)."""
        cosine = F.normalize(x, dim=1) @ F.normalize(self.W, dim=0)  # (B, C)
        margin = F.one_hot(labels, cosine.size(1)).to(cosine.dtype) * self.margin
        return self.scale * (cosine - margin)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(x, labels), labels)


class SoftmaxLoss(nn.Module):
    """Plain softmax loss: ``Linear(input_size -> num_classes)`` and cross-entropy (the original legacy one)."""

    def __init__(self, input_size: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(input_size, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.fc(x), labels)


# the original run_downstream.py checkpoints' "Downstream" state: its key prefixes -> ours
_ORIGINAL_PREFIXES = {
    "utterance": {"projector.": "head.projector.", "model.post_net.linear.": "head.classifier."},
    "xvector": {
        "connector.": "head.projector.",
        **{f"model.framelevel_feature_extractor.module.{i}.kernel.": f"head.tdnns.{i}.kernel."
           for i in range(len(XVECTOR_TDNNS))},
        "model.utterancelevel_feature_extractor.linear1.": "head.linear1.",
        "model.utterancelevel_feature_extractor.linear2.": "head.linear2.",
        "objective.": "loss.",
    },
}
_ORIGINAL_DROP = {"best_score"}  # a bookkeeping buffer of the original expert


def from_original_state_dict(state_dict: dict[str, torch.Tensor], kind: str) -> dict[str, dict[str, torch.Tensor]]:
    """Split an original downstream state (``ckpt["Downstream"]``) into ``{"head": ..., "loss": ...}`` for
    :class:`UtteranceHead` (``kind="utterance"``) or :class:`XVectorHead` + its loss (``kind="xvector"``).
    Unknown keys raise with the key name."""
    if kind not in _ORIGINAL_PREFIXES:
        raise ValueError(f"kind must be one of {sorted(_ORIGINAL_PREFIXES)}, got {kind!r}")
    out: dict[str, dict[str, torch.Tensor]] = {"head": {}, "loss": {}}
    for key, value in state_dict.items():
        if key in _ORIGINAL_DROP:
            continue
        prefix = next((p for p in _ORIGINAL_PREFIXES[kind] if key.startswith(p)), None)
        if prefix is None:
            raise KeyError(f"unexpected key {key!r} in an original {kind} downstream state")
        part, _, rest = (_ORIGINAL_PREFIXES[kind][prefix] + key[len(prefix):]).partition(".")
        out[part][rest] = value
    return out
