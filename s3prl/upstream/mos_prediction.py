"""MOS prediction (``mos_wav2vec2``, ``mos_tera``, ``mos_apc``): an upstream + the MOS head -> one score per wav.

The checkpoint is an s3prl downstream checkpoint: ``Upstream`` (the weights of the front-end's legacy
expert: ``model.*`` for wav2vec 2.0 and APC, ``transformer.model.*`` for TERA), ``Downstream`` (the
``MosDownstream`` head) and ``Config.downstream_expert.modelrc`` (``projector_dim``, ``clipping``,
``attention_pooling``). As in the original:

* each wav is cut into 1 s segments with 0.5 s hop (zero-padded to a whole number of hops; a wav of at most
  1 s is one zero-padded segment);
* the front-end's hidden states of each segment are averaged with equal weights (the original builds a
  fresh weighted-sum Featurizer, whose zero-initialised weights it never loads), keeping
  ``round(16000 / downsample)`` frames;
* the head: ``connector`` Linear, then the mean net (self-attention pooling + Linear, or Linear + mean over
  time), ``tanh(x) * 2 + 3`` when ``clipping``; a wav's score is the mean of its segments' scores.

The front-end's architecture is that of the original's default entry (``wav2vec2`` = wav2vec 2.0 Base,
built here without downloading; ``tera`` / ``apc`` are built from their default checkpoints, as the
original does, or from ``upstream_ckpt=``), and its weights are then replaced by ``Upstream``.

These entries predict scores, they have no hidden states: ``s3prl.hub.mos_wav2vec2()(wavs)['scores']``
(the original ``S3PRLUpstream`` fails on them too, looking for ``hidden_states``); ``scores(wavs, wavs_len)``
is the batched form.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import checkpoint as ckpt_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointFormatError

SAMPLE_RATE = 16000
SEGMENT, HOP = 16000, 8000
FRONT_ENDS = ("wav2vec2", "tera", "apc")
NO_HIDDEN_STATES = (
    "the mos_* entries predict one MOS score per utterance and have no hidden states (the original "
    "S3PRLUpstream fails on them too); use the hub interface: s3prl.hub.mos_wav2vec2()(list_of_wavs)['scores'], "
    "or build_upstream(name).scores(wavs, wavs_len)"
)


def segments(wav: torch.Tensor) -> torch.Tensor:
    """(N,) -> (S, 16000): 1 s windows every 0.5 s over the zero-padded wav (the original's unfold_segments)."""
    n = wav.numel()
    target = SEGMENT if n <= SEGMENT else (n // HOP + 1) * HOP
    return F.pad(wav, (0, target - n)).unfold(0, SEGMENT, HOP)


class MosHead(nn.Module):
    """(S, T, D) segment features -> (S,) segment scores (the original MosDownstream, mean net only)."""

    def __init__(self, input_dim: int, projector_dim: int, clipping: bool, attention_pooling: bool):
        super().__init__()
        self.connector = nn.Linear(input_dim, projector_dim)
        self.mean_net_linear = nn.Linear(projector_dim, 1)
        self.pooling = nn.Linear(projector_dim, 1) if attention_pooling else None
        self.clipping = clipping

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.connector(feats)  # (S, T, P)
        if self.pooling is not None:
            weights = F.softmax(self.pooling(x).squeeze(-1), dim=1)[:, :, None]  # (S, T, 1)
            score = self.mean_net_linear((x * weights).sum(dim=1)).squeeze(-1)  # (S,)
        else:
            score = self.mean_net_linear(x).squeeze(-1).mean(dim=-1)  # (S,)
        return torch.tanh(score) * 2 + 3 if self.clipping else score


class MosPredictor(nn.Module):
    def __init__(self, frontend: nn.Module, head: MosHead):
        super().__init__()
        self.frontend, self.head = frontend, head
        self.frames = round(SEGMENT / int(frontend.downsample_rates[-1]))

    @property
    def num_layers(self):
        raise RuntimeError(NO_HIDDEN_STATES)

    hidden_sizes = downsample_rates = num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        raise RuntimeError(NO_HIDDEN_STATES)

    def scores(self, wavs: torch.Tensor, wavs_len: torch.Tensor) -> torch.Tensor:
        """wavs (B, N) zero-padded, wavs_len (B,) -> (B,) predicted MOS."""
        return self.segment_scores([wav[:n] for wav, n in zip(wavs, wavs_len.tolist())])

    def segment_scores(self, wavs: list[torch.Tensor]) -> torch.Tensor:
        segs = [segments(w) for w in wavs]
        batch = torch.cat(segs)  # (S, 16000)
        states, produced = self.frontend(batch, torch.full((batch.size(0),), SEGMENT, device=batch.device))
        weights = torch.softmax(torch.zeros(len(states), device=batch.device), dim=0)  # the untrained Featurizer
        T = min(self.frames, int(produced[-1].min()))
        stacked = torch.stack([h[:, :T] for h in states])  # (L, S, T, D)
        feats = (weights.view(-1, 1, 1, 1) * stacked).sum(dim=0)  # (S, T, D)
        per_segment = self.head(feats)
        return torch.stack([part.mean() for part in per_segment.split([len(s) for s in segs])])

    def legacy_forward(self, wavs: list[torch.Tensor]) -> dict:
        """The original hub output: ``{'scores': (B,)}`` for a list of unpadded 1-D wavs."""
        return {"scores": self.segment_scores(list(wavs))}


def load_frontend_weights(frontend: nn.Module, kind: str, state: dict, source: str) -> None:
    """Replace the front-end's weights by the MOS checkpoint's ``Upstream`` (legacy expert key names)."""
    def strip(prefix, drop=()):
        out = {}
        for key, value in state.items():
            if key.startswith(prefix):
                out[key[len(prefix):]] = value
            elif not key.startswith(drop):
                raise CheckpointFormatError(f"{source}: unexpected Upstream key {key!r} for a {kind} front-end")
        return out

    if kind == "wav2vec2":
        fairseq_convert.load_state(frontend, strip("model."), source)
    elif kind == "tera":
        from . import mockingjay

        weights = strip("transformer.model.", drop=("transformer.extracter.",))  # extractor buffers: recomputed
        mockingjay.load_state(frontend.encoder, mockingjay.map_state(weights, frontend.cfg, source), source)
    else:
        from . import apc

        apc.load_mapped(frontend, strip("model."), apc.APC_KEYS, apc.APC_DROP, source)


def build_frontend(kind: str, upstream_ckpt: str | None) -> nn.Module:
    if kind == "wav2vec2" and upstream_ckpt is None:
        from .wav2vec2 import Wav2Vec2, Wav2Vec2Config

        return Wav2Vec2(Wav2Vec2Config())  # wav2vec 2.0 Base (the default `wav2vec2` entry's architecture)
    from ..nn.upstream import build_upstream

    return build_upstream(kind, upstream_ckpt)


def build(ckpt: str | None, upstream: str | None = None, upstream_ckpt: str | None = None,
          model_config: str | None = None, **options) -> MosPredictor:
    """``upstream``: the front-end (set by each entry); ``upstream_ckpt``: a checkpoint giving the front-end's
    architecture (default: the original's, i.e. the front-end entry's default checkpoint). ``model_config`` is
    accepted and unused, as in the original expert."""
    if options:
        raise TypeError(f"unknown option(s) for MOS prediction: {', '.join(sorted(options))} (it takes upstream, "
                        "upstream_ckpt)")
    if upstream not in FRONT_ENDS:
        raise ValueError(f"MOS prediction front-end must be one of {FRONT_ENDS}, got {upstream!r}")
    if ckpt is None:
        raise ValueError("MOS prediction needs its checkpoint: pass path_or_url / ckpt")
    obj = ckpt_io.load_checkpoint(ckpt)
    if not (isinstance(obj, dict) and {"Upstream", "Downstream", "Config"} <= set(obj)):
        raise CheckpointFormatError(f"{ckpt} is {fairseq_convert.describe_format(obj)}, not an s3prl MOS prediction "
                                    "checkpoint (Upstream, Downstream, Config)")
    try:
        rc = obj["Config"]["downstream_expert"]["modelrc"]
        projector, clipping, pooling = int(rc["projector_dim"]), bool(rc["clipping"]), bool(rc["attention_pooling"])
    except (KeyError, TypeError) as e:
        raise CheckpointFormatError(f"{ckpt}: Config.downstream_expert.modelrc lacks {e}") from None
    frontend = build_frontend(upstream, upstream_ckpt)
    load_frontend_weights(frontend, upstream, obj["Upstream"], ckpt)
    head = MosHead(int(frontend.hidden_sizes[-1]), projector, clipping, pooling)
    renames = {"connector.": "connector.", "model.mean_net_linear.": "mean_net_linear.",
               "model.mean_net_pooling.W.": "pooling."}
    unused = ("model.bias_net_", "model.judge_embbeding.")  # the judge-bias net: training only
    state = {}
    for key, value in obj["Downstream"].items():
        prefix = next((p for p in renames if key.startswith(p)), None)
        if prefix is not None:
            state[renames[prefix] + key[len(prefix):]] = value
        elif not key.startswith(unused):
            raise CheckpointFormatError(f"{ckpt}: unexpected Downstream key {key!r}")
    fairseq_convert.load_state(head, state, ckpt, mapped=True)
    return MosPredictor(frontend.eval(), head).eval()
