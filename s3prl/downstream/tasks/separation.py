"""Speech enhancement (SE, ``enhancement_stft``) and separation (SS, ``separation_stft``), as the original's
``downstream/enhancement_stft`` and ``separation_stft``; and their v2 recipes ``enhancement_stft2`` /
``separation_stft2`` (the original's improved versions: not comparable with SUPERB results).

* Front: the STFT of the mixture (Hann window ``win_length``, ``n_fft`` 512, hop = the upstream's downsample
  rate, centred with zero padding as librosa >= 0.10), computed from the audio in the labels.
* Head :class:`SepRNN`: the upstream features, cut or zero-padded to the STFT's frames, through a 3-layer BLSTM
  (896 per direction, dropout 0.5 between layers and after the last), then per source Linear -> ReLU: a mask
  over the mixture's magnitude, one per source (one for SE, two for SS). Parameter names are the original's.
* Loss (the original's ``MSELoss``): per source ``sum over frames and bins (mask * |Y| - target)^2`` with the
  target ``|S|`` (AM), ``|S| cos(angle Y - angle S)`` (PSM) or that clipped at 0 (NPSM, the default); summed over
  sources, divided by the utterance's frames, minimised over source orders per utterance (PIT), summed over the
  batch and divided by sources x utterances. v2: the same with L1 or MSE on ``log1p`` magnitudes.
* Output: mask * mixture STFT (v2: mask on the log1p magnitude), inverse STFT to the mixture's length, the
  original's end-impulse suppression (v2: none; the plain inverse zero-padded, as the original v2).
* Scores (per utterance, then the mean): SI-SDRi (SI-SDR of the estimate minus that of the mixture), PESQ (wide
  band) and STOI of the estimate (:mod:`s3prl.metrics.separation` / ``enhancement``); SS puts the estimates in
  the best order first. SE picks its best checkpoint by PESQ on dev, SS by SI-SDRi, as the original.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import SAMPLE_RATE, read_segment
from .base import Downstream, Objective, Task, data_root, register

# ------------------------------------------------------------------------------------------------
# STFT front and waveform reconstruction
# ------------------------------------------------------------------------------------------------


def stft(wav: torch.Tensor, setup: dict) -> torch.Tensor:
    """Complex STFT (frames, n_fft // 2 + 1) of a 1-D waveform: librosa's ``stft`` (>= 0.10) with a Hann window."""
    window = torch.hann_window(setup["win_length"], dtype=wav.dtype, device=wav.device)
    spec = torch.stft(wav, setup["n_fft"], setup["hop_length"], setup["win_length"], window=window,
                      center=setup["center"], pad_mode="constant", return_complex=True)  # (F, T)
    return spec.transpose(0, 1)


def istft(spec: torch.Tensor, setup: dict, length: int) -> torch.Tensor:
    """Waveform of ``length`` samples from a complex STFT (frames, bins): the inverse of :func:`stft`."""
    window = torch.hann_window(setup["win_length"], dtype=spec.real.dtype, device=spec.device)
    return torch.istft(spec.transpose(0, 1), setup["n_fft"], setup["hop_length"], setup["win_length"],
                       window=window, center=setup["center"], length=length)


def suppress_end_impulse(x: np.ndarray, window: int = 512) -> np.ndarray:
    """The original's post-processing of an estimate: a click in the last ``window`` samples before the signal's
    end (a sample louder than everything before that window) is zeroed from its first sample to the end."""
    nonzero = np.flatnonzero(x)
    if not len(nonzero):
        return x
    end = int(nonzero[-1]) + 1
    start = end - window
    if end < len(x) - 2048 or start <= 0:  # long silent tail, or too short: left alone (as the original)
        return x
    loud = np.flatnonzero(np.abs(x[start:end]) > np.max(np.abs(x[:start])))
    if not len(loud):
        return x
    y = x.copy()
    y[start + int(loud[0]):] = 0
    return y


def fit_frames(feats: torch.Tensor, frames: int) -> torch.Tensor:
    """Features (T, D) cut or zero-padded to the STFT's ``frames`` (the original's ``match_length``)."""
    if abs(feats.size(0) - frames) >= 5:
        raise ValueError(f"the upstream gave {feats.size(0)} frames for audio with {frames} STFT frames: the STFT hop "
                         "must match the upstream's frames and the audio be uncropped (leave data.crop_seconds unset)")
    if feats.size(0) >= frames:
        return feats[:frames]
    return torch.cat([feats, feats.new_zeros(frames - feats.size(0), feats.size(1))])


# ------------------------------------------------------------------------------------------------
# the head
# ------------------------------------------------------------------------------------------------


class SepRNN(nn.Module):
    """RNN over the features, then per source Linear -> non-linearity: masks (B, T, bins). The original's names:
    ``rnn``, ``linear.<source>``."""

    def __init__(self, input_dim: int, num_bins: int, num_sources: int = 2, rnn: str = "LSTM", num_layers: int = 3,
                 hidden_size: int = 896, dropout: float = 0.0, non_linear: str = "relu", bidirectional: bool = True):
        super().__init__()
        kinds = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
        if rnn.upper() not in kinds:
            raise ValueError(f"rnn {rnn!r}: choose one of {sorted(kinds)}")
        if non_linear not in ("relu", "sigmoid", "tanh", "none"):
            raise ValueError(f"non_linear {non_linear!r}: choose relu, sigmoid, tanh or none")
        self.rnn = kinds[rnn.upper()](input_dim, hidden_size, num_layers, batch_first=True, dropout=dropout,
                                      bidirectional=bidirectional)
        self.drops = nn.Dropout(dropout)
        width = hidden_size * (2 if bidirectional else 1)
        self.linear = nn.ModuleList([nn.Linear(width, num_bins) for _ in range(num_sources)])
        self.non_linear = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                           "none": lambda y: y}[non_linear]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Each utterance sees only its own frames (the backward direction starts at its true end)."""
        x, total = x.float(), int(lengths.max())
        if x.is_cuda:  # cuDNN runs packed sequences well
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=total)
        else:  # on CPU the packed backward pass is ~20x slower than running the utterances one by one
            h = nn.utils.rnn.pad_sequence([self.rnn(x[b:b + 1, :n])[0][0] for b, n in enumerate(lengths.tolist())],
                                          batch_first=True)
            h = F.pad(h, (0, 0, 0, total - h.size(1)))  # (B, T, H)
        h = self.drops(h)
        return [self.non_linear(layer(h)) for layer in self.linear]  # each (B, T, bins)


def mask_pit_loss(masks: list[torch.Tensor], frames: torch.Tensor, mix: torch.Tensor, targets: list[torch.Tensor],
                  mask_type: str = "NPSM", loss: str = "MSE", log: str = "none") -> torch.Tensor:
    """The original's mask loss with utterance-level PIT. ``masks``: per source (B, T, bins); ``mix`` and
    ``targets``: complex STFTs (B, T, bins), zero beyond each utterance's ``frames``.

    Per source ``sum over frames and bins err(mask * |Y|, target)`` (``err``: squared or absolute error; with
    ``log="log1p"`` both sides are ``log1p``-compressed first, the v2 tasks), summed over sources, divided by the
    utterance's frames, minimised over source orders, averaged over utterances and sources."""
    mag, phase = mix.abs(), mix.angle()
    refs = []
    for t in targets:
        if mask_type == "AM":
            refs.append(t.abs())
        elif mask_type == "PSM":
            refs.append(t.abs() * torch.cos(phase - t.angle()))
        elif mask_type == "NPSM":
            refs.append(t.abs() * F.relu(torch.cos(phase - t.angle())))
        else:
            raise ValueError(f"mask_type {mask_type!r}: choose AM, PSM or NPSM")
    if log == "log1p":
        mag, refs = torch.log1p(mag), [torch.log1p(r) for r in refs]
    elif log != "none":
        raise ValueError(f"log {log!r}: choose none or log1p")
    if loss not in ("MSE", "L1"):
        raise ValueError(f"loss {loss!r}: choose MSE or L1")
    err = (lambda a, b: (a - b) ** 2) if loss == "MSE" else (lambda a, b: (a - b).abs())
    n = len(masks)
    per_perm = torch.stack([sum(err(masks[s] * mag, refs[t]).sum((-1, -2)) for s, t in enumerate(perm))
                            / frames.to(mag.device) for perm in itertools.permutations(range(n))])  # (P, B)
    return per_perm.min(dim=0).values.sum() / (n * mag.size(0))


def upsample(x: torch.Tensor, lengths: torch.Tensor, setup: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Features repeated to the STFT's frame rate when the hop is a fraction of the upstream's rate (the v2 SE
    task: hop 160 with a 320-sample upstream repeats each frame twice)."""
    factor = setup["upstream_rate"] // setup["hop_length"]
    return (x.repeat_interleave(factor, dim=1), lengths * factor) if factor > 1 else (x, lengths)


# ------------------------------------------------------------------------------------------------
# objective
# ------------------------------------------------------------------------------------------------


def read_label(label) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The mixture and the sources of a label, as 16 kHz waveforms."""
    return read_segment(label.mixture, 0.0, None), [read_segment(s, 0.0, None) for s in label.sources]


def pad(items: list[torch.Tensor]) -> torch.Tensor:
    return nn.utils.rnn.pad_sequence(items, batch_first=True)


def sep_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: list) -> torch.Tensor:
    setup = labels[0].setup
    mixes, sources = [], []
    for label in labels:
        mix, srcs = read_label(label)
        mixes.append(stft(mix, setup))
        sources.append([stft(s, setup) for s in srcs])
    frames = torch.tensor([m.size(0) for m in mixes])
    x, lengths = upsample(x, lengths, setup)
    feats = pad([fit_frames(x[b, :int(n)], int(frames[b])) for b, n in enumerate(lengths.tolist())])  # (B, T, D)
    masks = ds.head(feats, frames)
    device = masks[0].device
    targets = [pad([srcs[k] for srcs in sources]).to(device) for k in range(len(sources[0]))]
    return mask_pit_loss(masks, frames, pad(mixes).to(device), targets, setup["mask_type"], setup["loss"], setup["log"])


def sep_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Masks (sources, frames, bins) per utterance, on the CPU."""
    x, lengths = upsample(x, lengths, ds.setup)
    masks = torch.stack(ds.head(x, lengths), dim=1).float().cpu()  # (B, S, T, bins)
    return [masks[b, :, :int(n)] for b, n in enumerate(lengths.tolist())]


def estimates(masks: torch.Tensor, mixture: torch.Tensor, setup: dict) -> list[np.ndarray]:
    """Waveforms of the sources from their masks (S, T', bins) and the 16 kHz mixture: the masks are brought to
    the mixture's STFT frames (cut, or the last frame repeated), applied, inverted, post-processed."""
    spec = stft(mixture, setup)
    frames = spec.size(0)
    if masks.size(1) >= frames:
        masks = masks[:, :frames]
    else:
        masks = torch.cat([masks, masks[:, -1:].expand(-1, frames - masks.size(1), -1)], dim=1)
    if setup["log"] == "log1p":  # the mask applies to the compressed magnitude; the mixture's phase is kept
        unit = spec / (spec.abs() + 1e-10)
        specs = [torch.expm1(m * torch.log1p(spec.abs())) * unit for m in masks]
    else:
        specs = [m * spec for m in masks]
    if setup["istft_length"]:
        out = [istft(z, setup, len(mixture)).numpy() for z in specs]
    else:  # the v2 tasks: the plain inverse (hop * (frames - 1) samples), zero-padded to the mixture's length
        out = [np.pad(w, (0, max(0, len(mixture) - len(w))))[:len(mixture)]
               for w in (istft(z, setup, None).numpy() for z in specs)]
    return [suppress_end_impulse(w) if setup["postprocess"] else w for w in out]


def utterance_scores(refs: list[np.ndarray], ests: list[np.ndarray], mix: np.ndarray, setup: dict, name: str) -> dict:
    from ...metrics import enhancement, separation

    scores = separation.separation_scores(refs, ests, mix, permute=len(refs) > 1)
    order = scores.pop("permutation")
    for metric, fn in (("pesq", enhancement.pesq), ("stoi", enhancement.stoi)):
        if metric in setup["metrics"]:
            scores[metric] = float(np.mean([fn(r, ests[j], SAMPLE_RATE, name=name) for r, j in zip(refs, order)]))
            scores["input_" + metric] = float(np.mean([fn(r, mix, SAMPLE_RATE, name=name) for r in refs]))
    return scores


def sep_score(predictions: dict, examples, trials=None) -> dict:
    """Means over utterances of SI-SDRi, SI-SDR, input SI-SDR and (``metrics``) PESQ and STOI."""
    rows = []
    for ex in examples:
        mix, srcs = read_label(ex.label)
        ests = estimates(predictions[ex.uid], mix, ex.label.setup)
        try:
            rows.append(utterance_scores([s.numpy() for s in srcs], ests, mix.numpy(), ex.label.setup, ex.uid))
        except ValueError as err:  # e.g. a silent reference: name the recording and its files
            raise ValueError(f"recording {ex.uid} ({ex.label.mixture}; sources {', '.join(ex.label.sources)}): "
                             f"{err}") from err
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def sep_write(folder: Path, split: str, predictions: dict, examples) -> None:
    """``<split>_audio/<recording>.wav`` (SE) or ``<recording>_s<k>.wav`` (SS): the estimates, 16 kHz PCM16."""
    import soundfile

    out = folder / f"{split}_audio"
    out.mkdir(exist_ok=True)
    for ex in examples:
        mix, _ = read_label(ex.label)
        for name, wav in output_names(ex.uid, estimates(predictions[ex.uid], mix, ex.label.setup)):
            soundfile.write(str(out / name), np.clip(wav, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def output_names(stem: str, wavs: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    if len(wavs) == 1:
        return [(f"{stem}.wav", wavs[0])]
    return [(f"{stem}_s{k + 1}.wav", w) for k, w in enumerate(wavs)]


SEPARATION = Objective(sep_loss, sep_predict, sep_score, write=sep_write)

# ------------------------------------------------------------------------------------------------
# task declarations
# ------------------------------------------------------------------------------------------------

HEAD_KEYS = ("n_fft", "rnn", "rnn_layers", "hidden_size", "dropout", "non_linear", "bidirectional")
SETUP_KEYS = ("n_fft", "win_length", "hop_length", "upstream_rate", "center", "mask_type", "loss", "log", "metrics",
              "postprocess", "istft_length")


class SeparationTask(Task):
    """A task whose STFT hop is the upstream's downsample rate (or a fraction of it) and whose head shape comes
    from the options."""

    def bind(self, options: dict, downsample_rate: int) -> dict:
        hop = options.get("hop_length") or downsample_rate
        if downsample_rate % hop:
            raise ValueError(f"task {self.name}: hop_length {hop} does not divide the upstream's downsample rate "
                             f"{downsample_rate}: leave it unset (the upstream's rate) or use a divisor")
        given = options.get("upstream_rate")
        if given not in (None, downsample_rate):
            raise ValueError(f"task {self.name}: this run was made with an upstream of rate {given}, not "
                             f"{downsample_rate}")
        metrics = options.get("metrics", self.options["metrics"])
        if self.metric != "si_sdri" and self.metric not in metrics:
            raise ValueError(f"task {self.name} picks its checkpoint by {self.metric}: task option metrics must "
                             f"include it (got {metrics})")
        for m in metrics:
            if m in ("pesq", "stoi"):
                from ...metrics.enhancement import _require

                _require({"pesq": "pesq", "stoi": "pystoi"}[m])
        return {**options, "hop_length": int(hop), "upstream_rate": int(downsample_rate)}

    def configure(self, downstream: Downstream, options: dict) -> None:
        """The STFT settings the prediction needs (not weights)."""
        downstream.setup = {k: options[k] for k in SETUP_KEYS}

    def count_classes(self, train):
        """The head's shape (kept in checkpoints as ``Classes``): sources, then the options of ``HEAD_KEYS``."""
        if not train:
            raise ValueError(f"task {self.name}: the training split is empty")
        label = train[0].label
        return (len(label.sources), *(label.setup[k] for k in HEAD_KEYS))


def build_head(input_size: int, shape) -> Downstream:
    num_sources, n_fft, rnn, layers, hidden, dropout, non_linear, bidirectional = shape
    return Downstream(SepRNN(input_size, n_fft // 2 + 1, num_sources, rnn, layers, hidden, dropout, non_linear,
                             bidirectional))


CHOICES = {"metrics": ("si_sdr", "pesq", "stoi"), "mask_type": ("AM", "PSM", "NPSM"), "loss": ("MSE", "L1"),
           "log": ("none", "log1p"), "non_linear": ("relu", "sigmoid", "tanh", "none")}


def with_setup(splits: dict, options: dict) -> dict:
    for key, allowed in CHOICES.items():
        given = options[key] if key == "metrics" else [options[key]]
        bad = [v for v in given if v not in allowed]
        if bad:
            raise ValueError(f"task option {key}: {bad[0]!r} is not one of {list(allowed)}")
    if options.get("upstream_rate") is None:
        raise ValueError("task options hop_length / upstream_rate are unset (the runner binds them to the upstream)")
    setup = {k: options[k] for k in (*SETUP_KEYS, *HEAD_KEYS)}
    return {split: [replace(ex, label=replace(ex.label, setup=setup)) for ex in exs] for split, exs in splits.items()}


def _layout() -> str:
    from ..corpora import librimix, voicebank

    return ("  SE: VoiceBank-DEMAND (lists, release folders or noisy/ + clean/); "
            "SS: <root>/<split>/<condition>/wav.scp\n"
            f"  enhancement_stft, enhancement_stft2 (VoiceBank-DEMAND, one of):\n{voicebank.LAYOUT}\n"
            f"  separation_stft, separation_stft2 (Libri2Mix lists):\n{librimix.LAYOUT}")


def se_corpus(**options) -> dict:
    from ..corpora import voicebank

    return with_setup(voicebank.load(options["root"], options["held_out"]), options)


def ss_corpus(**options) -> dict:
    from ..corpora import librimix

    return with_setup(librimix.load(options["root"], options["src"], options["tgt"], options["split_dirs"]), options)


# the original's configs (enhancement_stft/configs/cfg_voicebank.yaml, separation_stft/configs/cfg.yaml)
_V1 = {"n_fft": 512, "win_length": 512, "hop_length": None, "upstream_rate": None, "center": True,
       "mask_type": "NPSM", "loss": "MSE", "log": "none", "rnn": "LSTM", "rnn_layers": 3, "hidden_size": 896,
       "dropout": 0.5, "non_linear": "relu", "bidirectional": True, "metrics": ["si_sdr", "stoi", "pesq"],
       "postprocess": True, "istft_length": True}
# the v2 tasks (enhancement_stft2 / separation_stft2): improved recipes, NOT comparable with SUPERB results
_V2 = {**_V1, "hidden_size": 256, "dropout": 0.1, "non_linear": "sigmoid", "log": "log1p", "postprocess": False,
       "istft_length": False}
_TRAIN = dict(total_steps=150000, optimizer="AdamW", lr=1e-4, gradient_clipping=1.0, gradient_accumulate_steps=1,
              log_step=1250, eval_step=1250, save_step=6250, max_keep=1)
_SE = {"root": data_root("voicebank_demand_mini"), "held_out": 1}
_SS = {"root": None, "src": ["mix_clean"], "tgt": ["s1", "s2"], "split_dirs": None}
_SE_DATA = {"batch_seconds": 24.0, "eval_batch_seconds": 60.0}  # ~8 VoiceBank utterances of 3 s
_SS_DATA = {"batch_seconds": 64.0, "eval_batch_seconds": 60.0}  # ~8 Libri2Mix "min" mixtures

register(SeparationTask(
    name="enhancement_stft", description="SE: VoiceBank-DEMAND, BLSTM mask on the STFT (NPSM, MSE), PESQ/STOI",
    corpus=se_corpus, options={**_SE, **_V1}, build=build_head, objective=SEPARATION, metric="pesq",
    train=dict(_TRAIN), data=dict(_SE_DATA)))
register(SeparationTask(
    name="separation_stft", description="SS: Libri2Mix Kaldi-style lists, BLSTM masks, PIT MSE, SI-SDRi",
    corpus=ss_corpus, options={**_SS, **_V1}, build=build_head, objective=SEPARATION, metric="si_sdri",
    train=dict(_TRAIN, log_step=2000, eval_step=2000, save_step=10000), data=dict(_SS_DATA)))
register(SeparationTask(
    name="enhancement_stft2", description="SE v2 (log1p L1 AM mask, sigmoid, 256): NOT SUPERB-comparable",
    corpus=se_corpus, options={**_SE, **_V2, "win_length": 400, "hop_length": 160, "mask_type": "AM", "loss": "L1"},
    build=build_head, objective=SEPARATION, metric="pesq",
    train=dict(_TRAIN, lr=1e-3, total_steps=100000, save_step=10000), data=dict(_SE_DATA)))
register(SeparationTask(
    name="separation_stft2", description="SS v2 (n_fft 1024, log1p, sigmoid, 256): NOT SUPERB-comparable",
    corpus=ss_corpus, options={**_SS, **_V2, "n_fft": 1024, "win_length": 1024, "metrics": ["si_sdr"]},
    build=build_head, objective=SEPARATION, metric="si_sdri",
    train=dict(_TRAIN, lr=1e-3, log_step=2000, eval_step=2000, save_step=10000), data=dict(_SS_DATA)))


@torch.no_grad()
def process_files(model, files: list[str], outdir: Path) -> list[tuple[str, list[str]]]:
    """Enhance / separate each audio file with a trained run's ``model`` (``DownstreamModel`` whose head the task
    configured) and write ``<outdir>/<stem>.wav`` (one source) or ``<stem>_s<k>.wav``, 16 kHz PCM16."""
    import soundfile

    from ...audio import load_audio
    from ..data import Batch

    outdir.mkdir(parents=True, exist_ok=True)
    setup = model.downstream.setup
    done = []
    for file in files:
        wav = load_audio(file, SAMPLE_RATE)
        hs, hs_len = model.features(Batch(wav[None], torch.tensor([len(wav)]), None, [Path(file).stem]))
        masks = sep_predict(model.downstream, hs, hs_len)[0]
        written = []
        for name, out in output_names(Path(file).stem, estimates(masks, wav, setup)):
            soundfile.write(str(outdir / name), np.clip(out, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
            written.append(str(outdir / name))
        done.append((file, written))
    return done


LAYOUT = _layout()  # what `s3prl downstream tasks NAME` shows
