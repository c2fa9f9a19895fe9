"""APC and VQ-APC: stacked unidirectional GRUs on 80-d Kaldi fbank (Autoregressive Predictive Coding).

Hidden states, as the original hooks define them (3, whatever the depth): the output of GRU 1, the output of
GRU 2 (+ residual), and the model's feature, the last GRU's output (+ residual). VQ-APC quantises the last
layer for its pre-training predictor only; the exposed feature is the pre-VQ one, so the VQ layers and the
``postnet`` predictor are stored but not loaded (``DROP``).

Also the shared pieces of the APC series (used by ``npc`` and ``decoar``): the Kaldi fbank + utterance CMVN
front-end, packed RNN runs and the key-map loader.

Exactness: every utterance is featurised on its own samples and the GRUs run on packed sequences of each
utterance's true length, so a padded batch gives each utterance its batch-size-1 result.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from .. import checkpoint as ckpt_io
from ..audio import features, kaldi
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError

SAMPLE_RATE = 16000
WINDOW = "hamming"  # fixed by the original front-end, whatever the checkpoint's config says
FBANK_OPTIONS = set(inspect.signature(kaldi.fbank).parameters) - {"waveform", "num_mel_bins", "sample_frequency",
                                                                  "window_type"}

# ---------------------------------------------------------------------------------------------
# Front-end
# ---------------------------------------------------------------------------------------------


@dataclass
class FbankConfig:
    """Kaldi fbank (Hamming window, 16 kHz) + per-utterance CMVN ``(x - mean) / (1e-10 + std)``."""

    num_mel_bins: int = 80
    cmvn: bool = True
    keep_every: int = 1  # DeCoAR 2.0 keeps every 2nd frame (low frame rate)
    options: dict = field(default_factory=dict)  # other kaldi.fbank options (frame_length, frame_shift, ...)

    @property
    def dim(self) -> int:
        return self.num_mel_bins + int(bool(self.options.get("use_energy", False)))

    @property
    def stride(self) -> int:
        return round(float(self.options.get("frame_shift", 10.0)) * SAMPLE_RATE / 1000) * self.keep_every


def fbank_config(audio: dict, source: str) -> FbankConfig:
    """The checkpoint's ``config['data']['audio']`` -> FbankConfig (as the original ``create_transform``)."""
    if not isinstance(audio, dict):
        raise CheckpointFormatError(f"{source}: config['data']['audio'] is missing")
    audio = dict(audio)
    if audio.pop("feat_type", None) != "fbank":
        raise CheckpointFormatError(f"{source}: only feat_type 'fbank' is supported by the APC series front-end")
    if "feat_dim" not in audio:
        raise CheckpointFormatError(f"{source}: config['data']['audio'] has no feat_dim")
    dim = config_io.as_int(audio.pop("feat_dim"), "feat_dim", source, 1, 4096)
    audio.pop("decode_wav", None)  # how the original read files; no effect on waveforms
    cmvn = config_io.as_bool(audio.pop("cmvn", True), "cmvn", source)
    unknown = sorted(set(audio) - FBANK_OPTIONS)
    if unknown:
        raise CheckpointFormatError(f"{source}: unsupported fbank option(s) {unknown} in config['data']['audio'] "
                                    "(the front-end fixes window_type, sample_frequency and num_mel_bins = feat_dim)")
    return FbankConfig(num_mel_bins=dim, cmvn=cmvn, options=audio)


class KaldiFbank(nn.Module):
    """Waveforms -> fbank features, each utterance computed alone on its own samples."""

    def __init__(self, cfg: FbankConfig):
        super().__init__()
        self.cfg = cfg

    def extract(self, wav: torch.Tensor) -> torch.Tensor:
        """(N,) samples -> (T, D) features."""
        cfg = self.cfg
        y = kaldi.fbank(wav[None], num_mel_bins=cfg.num_mel_bins, sample_frequency=SAMPLE_RATE,
                        window_type=WINDOW, **cfg.options)  # (T, D)
        if cfg.cmvn and y.size(0) > 0:
            y = features.cmvn(y.T.contiguous(), dim=1).T  # statistics over a (D, T) layout, as the original
        return y[:: cfg.keep_every]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wavs (B, N) zero-padded, wavs_len (B,) -> features (B, T, D) zero-padded, frames (B,)."""
        work = wavs if wavs.dtype in (torch.float32, torch.float64) else wavs.float()
        feats = [self.extract(work[b, :n]) for b, n in enumerate(wavs_len.tolist())]
        lengths = torch.tensor([f.size(0) for f in feats], dtype=torch.long, device=wavs.device)
        return pad_sequence(feats, batch_first=True).to(wavs.dtype), lengths


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def run_rnn(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A unidirectional RNN over each utterance's own frames: (B, T, D) -> (B, T, H), zeros past the lengths."""
    T = x.size(1)
    keep = (lengths > 0).nonzero().squeeze(1)
    out = x.new_zeros(x.size(0), T, rnn.hidden_size)
    if keep.numel() == 0:
        return out
    packed = pack_padded_sequence(x[keep], lengths[keep].cpu(), batch_first=True, enforce_sorted=False)
    y, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=T)
    out[keep] = y
    return out


def describe_checkpoint(obj) -> str:
    """What a loaded checkpoint looks like, for error messages (APC series, DeCoAR and the others)."""
    if isinstance(obj, dict):
        if {"task_cfg", "model_cfg", "model_weight"} <= set(obj):
            return "an s3prl-converted wav2vec 2.0 / HuBERT / data2vec checkpoint (use the wav2vec2/hubert entries)"
        conf, model = obj.get("config"), obj.get("model")
        if isinstance(conf, dict) and isinstance(model, dict):
            paras = (conf.get("model") or {}).get("paras") or {}
            if "n_blocks" in paras or any(str(k).startswith("blocks.") for k in model):
                return "an s3prl NPC checkpoint (use npc_local)"
            return "an s3prl APC / VQ-APC checkpoint (use apc_local)"
        if isinstance(model, dict) and "post_extract_proj.weight" in model and not any(
                str(k).startswith("feature_extractor.") for k in model):
            if any(str(k).startswith("encoder.layers.") for k in model):
                return "a DeCoAR 2.0 checkpoint (use decoar2_local)"
            if any(str(k).startswith(("forward_lstm", "backward_lstm")) for k in model):
                return "a DeCoAR checkpoint (use decoar_local or decoar_layers_local)"
    return fairseq_convert.describe_format(obj)


def load_mapped(model: nn.Module, state: dict, table, drop, source: str) -> None:
    """Rename checkpoint keys with ``table`` ((pattern, replacement) pairs), skip those matching ``drop``, raise
    on any other key, then load strictly (shapes checked)."""
    mapped, unknown = {}, []
    for key, value in state.items():
        for pattern, repl in table:
            if isinstance(value, torch.Tensor) and re.fullmatch(pattern, key):
                mapped[re.sub(pattern, repl, key)] = value
                break
        else:
            if not any(re.fullmatch(pattern, key) for pattern in drop):
                unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected checkpoint keys (not mapped, not known to be unused): "
                                    f"{unknown[:10]}")
    fairseq_convert.load_state(model, mapped, source, mapped=True)


def read_apc_series(ckpt: str, family: str) -> tuple[dict, dict, dict]:
    """An APC-series file ``{config: {data: {audio}, model: {paras}}, model: state_dict, ...}`` ->
    (model paras, audio config, state dict)."""
    obj = ckpt_io.load_checkpoint(ckpt)
    conf = obj.get("config") if isinstance(obj, dict) else None
    if not isinstance(conf, dict) or not isinstance(obj.get("model"), dict):
        raise CheckpointFormatError(f"{ckpt} is {describe_checkpoint(obj)}, not an s3prl {family} checkpoint")
    paras = (conf.get("model") or {}).get("paras")
    if not isinstance(paras, dict):
        raise CheckpointFormatError(f"{ckpt}: config['model']['paras'] is missing")
    return dict(paras), (conf.get("data") or {}).get("audio"), obj["model"]


def check_paras(paras: dict, required, optional, source: str, family: str) -> None:
    """The original passed ``paras`` as keyword arguments: unknown or missing ones made it fail."""
    unknown = sorted(set(paras) - set(required) - set(optional))
    if unknown:
        raise CheckpointFormatError(f"{source}: unknown {family} option(s) {unknown} in config['model']['paras']")
    missing = sorted(set(required) - set(paras))
    if missing:
        raise CheckpointFormatError(f"{source}: config['model']['paras'] lacks {missing}")


# ---------------------------------------------------------------------------------------------
# APC / VQ-APC
# ---------------------------------------------------------------------------------------------

APC_KEYS = [(r"rnn_layers\.\d+\.(weight|bias)_(ih|hh)_l0", r"\g<0>")]
APC_DROP = [  # only feed the pre-training predictor
    r"postnet\.(weight|bias)",
    r"vq_layers\.\d+\.vq_logits\.(weight|bias)",
    r"vq_layers\.\d+\.codebook_CxE\.weight",
]


@dataclass
class APCConfig:
    """Architecture of APC / VQ-APC."""

    hidden_size: int = 512
    num_layers: int = 3
    residual: bool = True
    dropout: float = 0.1
    vq: dict | None = None  # VQ-APC quantiser (codebook_size, code_dim, gumbel_temperature): predictor only
    fbank: FbankConfig = field(default_factory=FbankConfig)


class APC(nn.Module):
    def __init__(self, cfg: APCConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = KaldiFbank(cfg.fbank)
        sizes = [cfg.fbank.num_mel_bins] + [cfg.hidden_size] * cfg.num_layers
        self.rnn_layers = nn.ModuleList(nn.GRU(i, o, batch_first=True) for i, o in zip(sizes[:-1], sizes[1:]))

    @property
    def num_layers(self) -> int:
        return 3

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.hidden_size] * 3

    @property
    def downsample_rates(self) -> list[int]:
        return [self.cfg.fbank.stride] * 3

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, N) zero-padded, wavs_len (B,) -> 3 states (B, T, H), frames (B,) each."""
        x, lengths = self.frontend(wavs, wavs_len.to(wavs.device))  # (B, T, 80)
        layers = []
        for i, rnn in enumerate(self.rnn_layers):
            h = F.dropout(run_rnn(rnn, x, lengths), self.cfg.dropout, self.training)  # (B, T, H)
            if self.cfg.residual and i > 0:
                h = h + x
            layers.append(h)
            x = h
        states = [layers[0], layers[1], layers[-1]]  # inputs of GRU 2 and 3 (the original's hooks), then output
        return states, [lengths] * 3


def apc_config(paras: dict, audio: dict, source: str) -> APCConfig:
    if "n_blocks" in paras or "kernel_size" in paras:
        raise CheckpointFormatError(f"{source} is an s3prl NPC checkpoint: use npc_local")
    check_paras(paras, ("num_layers", "hidden_size", "dropout", "residual"), ("vq",), source, "APC")
    fbank = fbank_config(audio, source)
    if fbank.dim != fbank.num_mel_bins:
        raise CheckpointFormatError(f"{source}: fbank use_energy changes the input size; the original fails too")
    vq = paras.get("vq")
    if vq is not None and not isinstance(vq, dict):
        raise CheckpointConfigError(source, "vq", vq, "a mapping with codebook_size and code_dim lists")
    if vq is not None:
        vq = dict(vq, code_dim=config_io.parse_int_list(vq.get("code_dim") or [], source, "vq.code_dim", 64))
    cfg = APCConfig(hidden_size=config_io.as_int(paras["hidden_size"], "hidden_size", source),
                    num_layers=config_io.as_int(paras["num_layers"], "num_layers", source, 1, config_io.MAX_LAYERS),
                    residual=config_io.as_bool(paras["residual"], "residual", source),
                    dropout=config_io.as_float(paras["dropout"], "dropout", source), vq=vq, fbank=fbank)
    if cfg.num_layers < 3:
        raise CheckpointFormatError(f"{source}: APC with {cfg.num_layers} layers; the original upstream exposes the "
                                    "inputs of GRU 2 and 3 and cannot load it either")
    if cfg.vq is not None and sum(cfg.vq.get("code_dim") or []) != cfg.hidden_size:
        raise CheckpointFormatError(f"{source}: VQ code_dim {cfg.vq.get('code_dim')} must sum to {cfg.hidden_size}")
    return cfg


def build(ckpt: str | None, **options) -> APC:
    """Build APC / VQ-APC from an s3prl APC-series checkpoint (``apc_*``, ``vq_apc_*``)."""
    if ckpt is None:
        raise ValueError("APC needs a checkpoint: pass path_or_url / ckpt")
    if options:
        raise TypeError(f"unknown option(s) for APC / VQ-APC: {', '.join(sorted(options))} (it takes none)")
    paras, audio, state = read_apc_series(ckpt, "APC / VQ-APC")
    cfg = apc_config(paras, audio, ckpt)
    config_io.check_model_size(cfg.num_layers * 3 * cfg.hidden_size * cfg.hidden_size, state, ckpt)  # GRU h-h weights
    model = APC(cfg)
    load_mapped(model, state, APC_KEYS, APC_DROP, ckpt)
    return model.eval()
