"""``timit_posteriorgram``: a TIMIT phone classifier used as an upstream (its 39-phone posteriorgram).

The checkpoint is an s3prl downstream checkpoint (``convbank.ckpt``): ``Args.upstream`` names the
front-end upstream (built here from the registry with its own default checkpoint, as the original does),
``Config.downstream_expert.modelrc`` configures the ``ConvBank`` head and ``Downstream`` holds its weights
(``model.``-prefixed). Per utterance, the front-end's last hidden state is cut to
``round(len / downsample)`` frames (the original's legacy Featurizer rule), then:
``in_linear -> ReLU -> parallel convs (kernels k, padding k // 2) -> concat -> ReLU -> out_linear``,
softmax over the 39 phones. One hidden state (B, T, 39) at the front-end's downsample rate.

Deliberate difference: the original calls ``F.dropout(x, p)`` without ``training=``, so dropout (0.5 in the
released config) stays active at inference and its posteriorgrams are random from call to call; here the
head is deterministic (dropout only in training mode). Frames past each utterance are zeroed before the
convolutions, so a padded batch gives every utterance its batch-size-1 result.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError
from .wav2vec2 import lengths_to_mask

TIMIT_PHONE_CLASSES = 39


class ConvBank(nn.Module):
    """(B, T, D) features with (B,) lengths -> (B, T, classes) logits."""

    def __init__(self, input_dim: int, classes: int, kernels: list[int], cnn_size: int, hidden_size: int,
                 dropout: float):
        super().__init__()
        self.in_linear = nn.Linear(input_dim, hidden_size)
        self.cnns = nn.ModuleList(nn.Conv1d(hidden_size, cnn_size, k, padding=k // 2) for k in kernels)
        self.out_linear = nn.Linear(cnn_size * len(kernels), classes)
        self.dropout = dropout

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = feats.size(1)
        h = F.dropout(F.relu(self.in_linear(feats)), self.dropout, self.training)
        h = (h * lengths_to_mask(lengths, T)[:, :, None].to(h.dtype)).transpose(1, 2)  # (B, H, T), 0 past ends
        h = torch.cat([cnn(h)[:, :, :T] for cnn in self.cnns], dim=1).transpose(1, 2)  # (B, T, C * K)
        return self.out_linear(F.dropout(F.relu(h), self.dropout, self.training))


class TimitPosteriorgram(nn.Module):
    def __init__(self, frontend: nn.Module, head: ConvBank):
        super().__init__()
        self.frontend, self.head = frontend, head
        self.stride = int(frontend.downsample_rates[-1])

    num_layers = 1
    hidden_sizes = [TIMIT_PHONE_CLASSES]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.stride]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        states, produced = self.frontend(wavs, wavs_len)
        feats = states[-1]  # the front-end's last hidden state, (B, T, D)
        # the legacy Featurizer keeps round(len / stride) frames of each utterance (Python rounding)
        wanted = torch.tensor([round(n / self.stride) for n in wavs_len.tolist()], device=feats.device)
        lengths = torch.minimum(produced[-1].to(feats.device), wanted)
        T = int(lengths.max()) if lengths.numel() else 0
        posteriors = F.softmax(self.head(feats[:, :T], lengths), dim=-1)  # (B, T, 39)
        posteriors = posteriors * lengths_to_mask(lengths, T)[:, :, None].to(posteriors.dtype)
        return [posteriors], [lengths]


def head_from_checkpoint(obj: dict, input_dim: int, source: str) -> ConvBank:
    modelrc = ((obj.get("Config") or {}).get("downstream_expert") or {}).get("modelrc") or {}
    if modelrc.get("select") != "ConvBank" or not isinstance(modelrc.get("ConvBank"), dict):
        raise CheckpointFormatError(f"{source}: Config.downstream_expert.modelrc must select 'ConvBank' (the only "
                                    f"head of the original timit_phone model), got {modelrc.get('select')!r}")
    conf = config_io.Settings(modelrc["ConvBank"], {"dropout": 0.0}, source)
    try:
        kernels, cnn, hidden = conf.int_list("kernels", 64), conf.int("cnn_size"), conf.int("hidden_size")
    except KeyError as e:
        raise CheckpointFormatError(f"{source}: Config.downstream_expert.modelrc.ConvBank lacks "
                                    f"{e.args[0]!r}") from None
    if not isinstance(obj["Downstream"], dict):
        raise CheckpointFormatError(f"{source}: 'Downstream' is a {type(obj['Downstream']).__name__}, expected a "
                                    "dict of tensors")
    config_io.require_tensors(obj["Downstream"], source)
    config_io.check_model_size(input_dim * hidden + sum(kernels) * hidden * cnn, obj["Downstream"], source)
    head = ConvBank(input_dim, TIMIT_PHONE_CLASSES, kernels, cnn, hidden, conf.float("dropout"))
    # the original drops the first component of every key ("model.in_linear.weight" -> "in_linear.weight")
    state = {k.split(".", 1)[1] if "." in k else k: v for k, v in obj["Downstream"].items()}
    fairseq_convert.load_state(head, state, source, mapped=True)
    return head


def build(ckpt: str | None, **options) -> TimitPosteriorgram:
    """Build the posteriorgram model from a timit_phone downstream checkpoint."""
    if ckpt is None:
        raise ValueError("timit_posteriorgram needs its downstream checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for timit_posteriorgram: {', '.join(sorted(options))} (it takes none)")
    obj = ckpt_io.load_checkpoint(ckpt)
    if not (isinstance(obj, dict) and {"Args", "Config", "Downstream"} <= set(obj)
            and isinstance(obj["Args"], dict) and obj["Args"].get("upstream")):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not an s3prl timit_phone "
                                    "downstream checkpoint (Args.upstream, Config, Downstream)")
    from ..nn.upstream import build_upstream  # the front-end is any registry name

    frontend = build_upstream(obj["Args"]["upstream"])
    head = head_from_checkpoint(obj, int(frontend.hidden_sizes[-1]), ckpt)
    return TimitPosteriorgram(frontend, head).eval()
