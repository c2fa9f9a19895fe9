"""The ``baseline`` family: hand-crafted features exposed as a one-layer upstream.

Six built-in front-ends (the original's yaml files, kept here as dicts in the same format):

=================  ====  ==========================================================================
name               dim   what
=================  ====  ==========================================================================
``fbank``          240   Kaldi fbank, 80 log-mel bins + deltas + delta-deltas, utterance CMVN
``fbank_no_cmvn``  240   the same without CMVN
``mfcc``           39    Kaldi MFCC, 13 cepstra + deltas + delta-deltas, utterance CMVN
``spectrogram``    257   Kaldi log power spectrogram, utterance CMVN
``mel``            80    centred-STFT log mel (80 HTK filters), utterance CMVN
``linear``         201   centred-STFT log power spectrum, utterance CMVN
=================  ====  ==========================================================================

``baseline_local`` reads a yaml in the original format: a ``kaldi`` section (``feat_type`` and that
function's keyword arguments) with ``delta`` / ``cmvn`` sections, or the preprocessor format
(``win_ms``, ``hop_ms``, ``n_freq``, ``n_mels``, ``n_mfcc``, ``input: {feat_type, log, delta, cmvn}``).

Every utterance is computed alone on its own samples, so batch composition never changes it; Kaldi
front-ends give ``(N - 400) // 160 + 1`` frames, the centred STFT ``N // 160 + 1``, except in one case
kept from the original: with CMVN, the STFT front-ends re-derive the length from the last non-zero
sample ``L`` and keep (and normalise over) only the first ``round(L / (N / frames))`` frames, so a clip
ending in exact zeros (e.g. padded to the 800-sample minimum) has fewer frames.
"""

from __future__ import annotations

import copy
import inspect
import os

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_sequence

from ..audio import features, kaldi
from ..convert import config as config_io

SAMPLE_RATE = 16000
KALDI_FUNCTIONS = {"fbank": kaldi.fbank, "mfcc": kaldi.mfcc, "spectrogram": kaldi.spectrogram}

_KALDI_80 = {"num_mel_bins": 80, "frame_length": 25.0, "frame_shift": 10.0, "use_log_fbank": True}
_STFT = {"win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80, "n_mfcc": 13}
BUILTIN_CONFIGS = {
    "fbank": {"kaldi": {"feat_type": "fbank", "fbank": _KALDI_80},
              "delta": {"order": 2, "win_length": 5}, "cmvn": {"use_cmvn": True}},
    "fbank_no_cmvn": {"kaldi": {"feat_type": "fbank", "fbank": _KALDI_80},
                      "delta": {"order": 2, "win_length": 5}, "cmvn": {"use_cmvn": False}},
    "mfcc": {"kaldi": {"feat_type": "mfcc", "mfcc": {"num_ceps": 13, "frame_length": 25.0, "frame_shift": 10.0}},
             "delta": {"order": 2, "win_length": 5}, "cmvn": {"use_cmvn": True}},
    "spectrogram": {"kaldi": {"feat_type": "spectrogram",
                              "spectrogram": {"frame_length": 25.0, "frame_shift": 10.0}},
                    "delta": {"order": 0, "win_length": 5}, "cmvn": {"use_cmvn": True}},
    "mel": {**_STFT, "input": {"feat_type": "mel", "channel": 0, "log": True, "delta": 0, "cmvn": True}},
    "linear": {**_STFT, "input": {"feat_type": "linear", "channel": 0, "log": True, "delta": 0, "cmvn": True}},
}
FEATURES = tuple(BUILTIN_CONFIGS)

_STFT_DEFAULTS = {"sample_rate": 16000, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 40, "n_mfcc": 13,
                  "eps": 1e-10}
_STFT_INPUT_DEFAULTS = {"feat_type": None, "channel": 0, "log": False, "delta": 0, "cmvn": False}


def _check_keys(section: dict, allowed, where: str, source: str) -> None:
    if not isinstance(section, dict):
        raise ValueError(f"{source}: {where} must be a mapping, got {type(section).__name__}")
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


# Bounds of the options that size the features (a file may ask for anything): (kind, low, high).
_SIZES = {"num_mel_bins": ("int", 1, 4096), "num_ceps": ("int", 1, 4096), "n_freq": ("int", 1, 65536),
          "n_mels": ("int", 1, 4096), "n_mfcc": ("int", 1, 4096), "order": ("int", 0, 8),
          "win_length": ("int", 1, 1001), "frame_length": ("float", 1.0, 1000.0),
          "frame_shift": ("float", 1.0, 1000.0), "win_ms": ("float", 1.0, 1000.0), "hop_ms": ("float", 1.0, 1000.0),
          "sample_rate": ("int", 1000, 192000)}


def _check_sizes(section: dict, prefix: str, source: str) -> None:
    """Type and range of the size options in ``section`` (``CheckpointConfigError`` names the key)."""
    for key, (kind, lo, hi) in _SIZES.items():
        if key in section:
            check = config_io.as_int if kind == "int" else config_io.as_float
            check(section[key], prefix + key, source, lo, hi)


def _kaldi_plan(cfg: dict, source: str) -> dict:
    """Validate a ``kaldi`` config; return the extraction plan with its output size and stride."""
    _check_keys(cfg, {"kaldi", "delta", "cmvn"}, "the top level", source)
    section = cfg["kaldi"]
    _check_keys(section, {"feat_type", *KALDI_FUNCTIONS}, "'kaldi'", source)
    feat_type = section.get("feat_type", "fbank")
    if feat_type not in KALDI_FUNCTIONS:
        raise ValueError(f"{source}: kaldi.feat_type {feat_type!r} is not one of {sorted(KALDI_FUNCTIONS)}")
    kwargs = dict(section.get(feat_type) or {})
    allowed = set(inspect.signature(KALDI_FUNCTIONS[feat_type]).parameters) - {"waveform", "sample_frequency"}
    _check_keys(kwargs, allowed, f"'kaldi.{feat_type}' (sample_frequency is fixed at 16000)", source)
    delta = dict(cfg.get("delta") or {})
    _check_keys(delta, {"order", "win_length", "mode"}, "'delta'", source)
    cmvn = dict(cfg.get("cmvn") or {})
    _check_keys(cmvn, {"use_cmvn", "eps"}, "'cmvn'", source)
    if "use_cmvn" not in cmvn:
        raise ValueError(f"{source}: the 'cmvn' section needs 'use_cmvn: True' or 'use_cmvn: False'")
    # dimension from the configuration, not from a trial run
    defaults = {k: p.default for k, p in inspect.signature(KALDI_FUNCTIONS[feat_type]).parameters.items()}
    _check_sizes(kwargs, f"kaldi.{feat_type}.", source)
    _check_sizes(delta, "delta.", source)
    opt = {**defaults, **kwargs}
    if feat_type == "fbank":
        dim = opt["num_mel_bins"] + int(opt["use_energy"])
    elif feat_type == "mfcc":
        dim = opt["num_ceps"]
    else:
        size = int(SAMPLE_RATE * opt["frame_length"] * 0.001)
        dim = (2 ** (size - 1).bit_length() if opt["round_to_power_of_two"] else size) // 2 + 1
    order = int(delta.get("order", 2))  # the original's Delta() defaults to order 2
    return {"kind": "kaldi", "fn": KALDI_FUNCTIONS[feat_type], "kwargs": kwargs, "order": order,
            "win_length": int(delta.get("win_length", 5)), "mode": delta.get("mode", "replicate"),
            "use_cmvn": bool(cmvn["use_cmvn"]), "eps": float(cmvn.get("eps", 1e-10)),
            "dim": dim * (order + 1), "stride": round(opt["frame_shift"] * SAMPLE_RATE / 1000)}


def _stft_plan(cfg: dict, source: str) -> dict:
    """Validate a preprocessor config; return the extraction plan with its output size and stride."""
    _check_keys(cfg, {*_STFT_DEFAULTS, "input", "target"}, "the top level", source)
    if "input" not in cfg:
        raise ValueError(f"{source}: needs a 'kaldi' section or an 'input' section (preprocessor format)")
    inp = {**_STFT_INPUT_DEFAULTS, **(cfg["input"] or {})}
    _check_keys(inp, _STFT_INPUT_DEFAULTS, "'input'", source)
    if inp["feat_type"] not in features.STFT_FEATURES:
        raise ValueError(f"{source}: input.feat_type {inp['feat_type']!r} is not supported as a baseline "
                         f"feature; choose one of {list(features.STFT_FEATURES)}")
    opt = {**_STFT_DEFAULTS, **{k: v for k, v in cfg.items() if k in _STFT_DEFAULTS}}
    _check_sizes(opt, "", source)
    _check_sizes({"order": inp["delta"]}, "input.delta/", source)
    dim = {"linear": opt["n_freq"], "mel": opt["n_mels"], "mfcc": opt["n_mfcc"]}[inp["feat_type"]]
    # ``target`` only matters for pre-training; ``channel`` is always 0 for a mono waveform
    return {"kind": "stft", "feat_type": inp["feat_type"], "log": bool(inp["log"]), "delta": int(inp["delta"]),
            "use_cmvn": bool(inp["cmvn"]), "options": opt, "dim": dim * (int(inp["delta"]) + 1),
            "stride": round(opt["hop_ms"] * SAMPLE_RATE / 1000)}


def parse_config(cfg: dict, source: str = "baseline config") -> dict:
    """Check a config in the original yaml format and turn it into an extraction plan."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{source}: expected a mapping at the top level, got {type(cfg).__name__}")
    return _kaldi_plan(cfg, source) if "kaldi" in cfg else _stft_plan(cfg, source)


def _cmvn_frames(wav: torch.Tensor, num_frames: int) -> int:
    """How many STFT frames the original normalises and keeps: those up to the last non-zero sample.

    The original derives each length from the last non-zero sample and converts it to frames with the
    ratio samples / frames; the same float expression is used so that the rounding agrees.
    """
    nonzero = wav.nonzero()
    valid = wav.numel() if len(nonzero) == 0 else int(nonzero[-1]) + 1
    return round(valid / (wav.numel() / num_frames))


class BaselineFeatures(nn.Module):
    """A hand-crafted front-end with the upstream interface (one hidden state)."""

    def __init__(self, plan: dict):
        super().__init__()
        self.plan = plan

    @property
    def num_layers(self) -> int:
        return 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.plan["dim"]]

    @property
    def downsample_rates(self) -> list[int]:
        return [self.plan["stride"]]

    def extract(self, wav: torch.Tensor) -> torch.Tensor:
        """Features of one utterance: (N,) valid samples -> (T, D)."""
        p = self.plan
        if p["kind"] == "kaldi":
            feats = p["fn"](wav, sample_frequency=SAMPLE_RATE, **p["kwargs"])  # (T, D0)
            feats = features.add_deltas(feats, p["order"], p["win_length"], p["mode"])
            return features.cmvn(feats, p["eps"]) if p["use_cmvn"] else feats
        o = p["options"]
        feats = features.stft_feature(
            wav, p["feat_type"], sample_rate=o["sample_rate"], win_ms=o["win_ms"], hop_ms=o["hop_ms"],
            n_freq=o["n_freq"], n_mels=o["n_mels"], n_mfcc=o["n_mfcc"], log=p["log"], delta=p["delta"],
            eps=o["eps"])  # (T, D)
        if not p["use_cmvn"] or feats.size(0) == 0:
            return feats
        # statistics over a (D, T) layout, as the original: the summation order shows at 1e-6
        kept = feats[: _cmvn_frames(wav, feats.size(0))].T.contiguous()  # (D, T)
        return features.cmvn(kept, o["eps"], dim=1).T

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, T) zero-padded, wavs_len (B,) -> ([(B, T', D)], [(B,) frames per utterance])."""
        if wavs.dim() == 3 and wavs.size(-1) == 1:
            wavs = wavs.squeeze(-1)
        if wavs.dim() != 2:
            raise ValueError(f"Expected wavs of shape (B, T), got {tuple(wavs.shape)}")
        lens = [int(n) for n in wavs_len]
        if len(lens) != wavs.size(0) or any(n < 0 or n > wavs.size(1) for n in lens):
            raise ValueError(f"wavs_len {lens} does not fit wavs of shape {tuple(wavs.shape)}")
        # float32 math like the original (half precision has no CPU FFT); results go back to the input dtype
        work = wavs if wavs.dtype in (torch.float32, torch.float64) else wavs.float()
        feats = [self.extract(work[b, :n]) for b, n in enumerate(lens)]  # each (T_b, D)
        lengths = torch.tensor([f.size(0) for f in feats], dtype=torch.long, device=wavs.device)
        hidden = pad_sequence(feats, batch_first=True).to(wavs.dtype)  # (B, T', D)
        return [hidden], [lengths]


def _load_yaml(path: str) -> dict:
    import yaml

    if not os.path.isfile(path):
        raise FileNotFoundError(f"baseline model_config file not found: {path}")
    with open(path) as f:
        return yaml.safe_load(f)


def build(ckpt: str | None = None, feature: str | None = None, model_config: str | dict | None = None,
          **options) -> BaselineFeatures:
    """Build a baseline front-end.

    ``feature``: one of ``FEATURES`` (default ``fbank``). ``model_config`` (or ``ckpt``, for
    ``baseline_local``): a yaml path or a dict in the original format; when given it defines the
    front-end and ``feature`` is ignored.
    """
    if options:
        raise ValueError(f"Unknown option(s) for a baseline upstream: {sorted(options)}; accepted: "
                         f"feature (one of {', '.join(FEATURES)}) and model_config (a yaml file)")
    config = model_config if model_config is not None else ckpt
    if config is not None:
        if isinstance(config, dict):
            return BaselineFeatures(parse_config(copy.deepcopy(config)))
        path = os.fspath(config)
        return BaselineFeatures(parse_config(_load_yaml(path), source=path))
    feature = "fbank" if feature is None else feature
    if feature not in BUILTIN_CONFIGS:
        raise ValueError(f"Unknown baseline feature {feature!r}; choose one of {', '.join(FEATURES)}")
    return BaselineFeatures(parse_config(copy.deepcopy(BUILTIN_CONFIGS[feature]), source=feature))
