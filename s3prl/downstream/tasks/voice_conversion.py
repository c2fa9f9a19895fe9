"""Any-to-one voice conversion (VC, ``a2o-vc-vcc2020``), as the original's ``downstream/a2o-vc-vcc2020`` with
``config_taco2_ar.yaml``.

* Data (VCC2020 task 1 layout): ``<root>/<SPEAKER>/<number>.wav``; the target speaker's (``trgspk``, e.g.
  TEF1) utterances listed in ``<lists>/<L>_train_list.txt`` / ``<L>_dev_list.txt`` (``L`` = the speaker's
  second letter, E for task 1) train and validate; the test set is every number of ``<lists>/eval_list.txt``
  spoken by each source speaker (``srcspks``: SEF1, SEF2, SEM1, SEM2). Training is reconstruction: the
  upstream features of a target-speaker utterance -> its own mel spectrogram.
* Targets: the 24 kHz log10 mel spectrogram (80 bins, n_fft 1024, hop 256, Hann, 80-7600 Hz:
  :func:`s3prl.audio.mel.log_mel`); files at another rate are resampled to 24 kHz first (the original would
  compute the filters at the file's rate, out of step with its 24 kHz vocoder). Loss: L1 of the mel frames
  normalised with the training targets' mean and standard deviation (kept in the head).
* Head: :class:`s3prl.downstream.taco2_ar.Taco2AR` (the original's sizes).
* Output: a vocoder turns the predicted mel into 24 kHz audio, written per utterance
  (``<split>_wav/<uid>.wav``, the mel as ``<split>_mel/<uid>.npy``): the original's Parallel WaveGAN format
  (``-o task.vocoder=PATH``: a ``checkpoint-*.pkl`` or its folder with ``config.yml`` and ``stats.h5``), or
  Griffin-Lim (64 iterations) without one.
* Metric: MCD (dB, lower is better; :mod:`s3prl.metrics.mcd`) of the vocoded output against the target
  speaker's recording of the same number (dev: the input itself; test: ``<root>/<trgspk>/<number>.wav`` where
  it exists), averaged over utterances; Harvest's F0 range is the speaker's in the original's table or
  ``f0min`` / ``f0max``. Needs ``pip install 's3prl[vc]'``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..corpora._common import stable_key
from ..corpora.vcc2020 import SOURCE_SPEAKERS, load_vcc2020
from ..taco2_ar import Taco2AR, Taco2ARConfig, masked_l1
from .base import Downstream, Objective, Task, data_root, register

FBANK = {"fs": 24000, "n_mels": 80, "n_fft": 1024, "n_shift": 256, "win_length": None, "fmin": 80, "fmax": 7600,
         "gl_iters": 64}
MODEL = {"hidden_dim": 1024, "prenet_layers": 2, "prenet_dim": 256, "prenet_dropout_rate": 0.5, "lstmp_layers": 2,
         "lstmp_dropout_rate": 0.2}
# ------------------------------------------------------------------------------------------------
# targets, vocoder, score
# ------------------------------------------------------------------------------------------------


def read_audio(path: str, rate: int) -> torch.Tensor:
    """A mono float32 waveform at ``rate`` Hz."""
    from ..data import read_segment

    return read_segment(path, 0.0, None, sample_rate=rate)


@functools.lru_cache(maxsize=4096)
def target_mel(path: str, fbank: tuple) -> torch.Tensor:
    """The log-mel target (frames, n_mels) of a recording (computed once per process)."""
    from ...audio.mel import log_mel

    f = dict(fbank)
    return log_mel(read_audio(path, f["fs"]), f["fs"], f["n_fft"], f["n_shift"], f["n_mels"], f["fmin"], f["fmax"],
                   f["win_length"])


def fbank_key(setup: dict) -> tuple:
    return tuple(sorted((k, setup[k]) for k in FBANK))


@functools.lru_cache(maxsize=2)
def vocoder(path: str):
    from ...audio.parallel_wavegan import load_vocoder

    return load_vocoder(path)


def vocode(mel: torch.Tensor, setup: dict, uid: str) -> np.ndarray:
    """16-bit waveform at ``setup["fs"]`` of a predicted mel: the Parallel WaveGAN of ``setup["vocoder"]``
    or Griffin-Lim; random draws seeded by the utterance, so the written file is the one scored."""
    seed = int(stable_key(uid)[:8], 16)
    if setup["vocoder"]:
        wav = vocoder(setup["vocoder"])(mel, seed=seed).cpu().numpy()
    else:
        from ...audio.parallel_wavegan import griffin_lim_vocoder

        wav = griffin_lim_vocoder(mel.float(), setup["fs"], setup["n_fft"], setup["n_shift"], setup["fmin"],
                                  setup["fmax"], setup["gl_iters"], seed, setup["win_length"]).numpy()
    return to_pcm16(wav)


def to_pcm16(wav: np.ndarray) -> np.ndarray:
    """16-bit samples as the original writes its outputs (``(y * 32767).astype(int16)``, clipped first here
    instead of wrapping around). The score reads them back as ``/ 32768``, as a file reader does: the MCD
    of the written file, which matters when the output has empty bands (Griffin-Lim leaves nothing above
    fmax), where the quantisation noise is most of what WORLD sees."""
    return (np.clip(wav, -1.0, 1.0) * np.iinfo(np.int16).max).astype(np.int16)


def vc_loss(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor, labels: list) -> torch.Tensor:
    setup = labels[0].setup
    if any(label.target is None for label in labels):
        raise ValueError("voice conversion trains on target-speaker utterances: a training label has no target")
    mels = [target_mel(label.target, fbank_key(setup)) for label in labels]
    target_lengths = torch.tensor([m.size(0) for m in mels])
    targets = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True).to(x.device)  # (B, T', bins)
    pred, pred_lengths = ds.head(x, lengths, targets)
    for label, n, m in zip(labels, pred_lengths.tolist(), target_lengths.tolist()):
        if abs(n - m) > 0.05 * m + 5:  # e.g. a cropped input: its frames no longer match the whole file's mel
            raise ValueError(f"{label.target}: the features give {n} mel frames but the target has {m}: the audio "
                             "must be uncropped (leave data.crop_seconds unset)")
    return masked_l1(pred, pred_lengths, targets, target_lengths.to(x.device), ds.head)


def vc_predict(ds: Downstream, x: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Predicted log-mel (frames, bins) per utterance, on the CPU."""
    pred, pred_lengths = ds.head(x, lengths)
    pred = pred.float().cpu()
    return [pred[b, :n] for b, n in enumerate(pred_lengths.tolist())]


def vc_score(predictions: dict, examples, trials=None) -> dict:
    """Mean MCD over the utterances that have a reference (``mcd_utterances`` of them); ``mel_l1``: mean
    absolute log10-mel error of the predictions against their targets (dev: the input's own mel) over the frames
    both have, a vocoder-free measure (the original logs the same L1 after normalising by the target statistics)."""
    from ...metrics import mcd

    scores, errors = [], []
    for ex in examples:
        label = ex.label
        if label.target is not None:
            target, pred = target_mel(label.target, fbank_key(label.setup)), predictions[ex.uid]
            n = min(len(target), len(pred))
            errors.append(float((pred[:n] - target[:n]).abs().mean()) if n else float("nan"))
        if label.reference is None:
            continue
        setup = label.setup
        wav = vocode(predictions[ex.uid], setup, ex.uid) / 32768.0
        ref = read_audio(label.reference, setup["fs"]).numpy()
        low, high = mcd.f0_range(setup["trgspk"], setup["f0min"], setup["f0max"])
        scores.append(mcd.mcd(wav, ref, setup["fs"], low, high, name=ex.uid))
    out = {"mcd": float(np.mean(scores)) if scores else float("nan"), "mcd_utterances": float(len(scores))}
    return {**out, "mel_l1": float(np.mean(errors))} if errors else out


def vc_write(folder: Path, split: str, predictions: dict, examples) -> None:
    """``<split>_wav/<uid>.wav`` (the vocoded output, PCM16 at the vocoder's rate) and ``<split>_mel/<uid>.npy``."""
    import soundfile

    wav_dir, mel_dir = folder / f"{split}_wav", folder / f"{split}_mel"
    wav_dir.mkdir(exist_ok=True)
    mel_dir.mkdir(exist_ok=True)
    for ex in examples:
        mel = predictions[ex.uid]
        np.save(mel_dir / f"{ex.uid}.npy", mel.numpy())
        wav = vocode(mel, ex.label.setup, ex.uid)
        soundfile.write(str(wav_dir / f"{ex.uid}.wav"), wav, ex.label.setup["fs"], subtype="PCM_16")  # int16


VOICE_CONVERSION = Objective(vc_loss, vc_predict, vc_score, write=vc_write)

# ------------------------------------------------------------------------------------------------
# the task
# ------------------------------------------------------------------------------------------------


class VCTask(Task):
    """The resample ratio comes from the upstream's rate; the target statistics from the training targets."""

    def bind(self, options: dict, downsample_rate: int) -> dict:
        from ...metrics.mcd import _require

        _require()  # refuse to start a run that could not score (MissingExtraError names the extra)
        given = options.get("upstream_rate")
        if given not in (None, downsample_rate):
            raise ValueError(f"task {self.name}: this run was made with an upstream of rate {given}, not "
                             f"{downsample_rate}")
        merged = {**self.options, **options}
        if merged["vocoder"]:
            voc = vocoder(str(merged["vocoder"]))
            want = (merged["fs"], merged["n_shift"], merged["n_mels"])
            if (voc.sample_rate, voc.hop, voc.num_mels) != want:
                raise ValueError(f"task {self.name}: the vocoder {merged['vocoder']} makes {voc.sample_rate} Hz "
                                 f"audio from {voc.num_mels} mel bins with hop {voc.hop}; the task's features are "
                                 f"{want[0]} Hz, hop {want[1]}, {want[2]} bins")
        return {**options, "upstream_rate": int(downsample_rate)}

    def count_classes(self, train):
        """The head's shape and statistics (kept in checkpoints as ``Classes``): config fields, then the
        training targets' per-bin mean and standard deviation (population; 1 where it is 0, as sklearn)."""
        if not train:
            raise ValueError(f"task {self.name}: the training split is empty")
        setup = train[0].label.setup
        mels = torch.cat([target_mel(ex.label.target, fbank_key(setup)) for ex in train]).double()  # (N, bins)
        mean, std = mels.mean(0), mels.std(0, unbiased=False)
        std = torch.where(std == 0, torch.ones_like(std), std)
        ratio = setup["fs"] / setup["n_shift"] * setup["upstream_rate"] / 16000
        model = tuple((k, setup[k]) for k in MODEL)
        return (setup["n_mels"], ratio, model, tuple(mean.tolist()), tuple(std.tolist()))


def build_head(input_size: int, shape) -> Downstream:
    n_mels, ratio, model, mean, std = shape
    cfg = Taco2ARConfig(input_dim=input_size, output_dim=n_mels, resample_ratio=ratio, **dict(model))
    return Downstream(Taco2AR(cfg, torch.tensor(mean), torch.tensor(std)))


def vc_corpus(**options) -> dict:
    if options.get("upstream_rate") is None:
        raise ValueError("task option upstream_rate is unset (the runner binds it to the upstream)")
    if options["win_length"] not in (None, options["n_fft"]):
        raise ValueError("task option win_length: only None (= n_fft) is supported")
    setup = {k: options[k] for k in (*FBANK, *MODEL, "vocoder", "trgspk", "f0min", "f0max", "upstream_rate")}
    srcspks = options["srcspks"]
    if isinstance(srcspks, str):
        srcspks = [s for s in srcspks.replace(",", " ").split() if s]
    return load_vcc2020(options["root"], options["lists"], options["trgspk"], list(srcspks), setup)


register(VCTask(
    name="a2o-vc-vcc2020", description="VC: any-to-one, VCC2020 task 1 target, Taco2-AR -> 24 kHz mel, MCD",
    corpus=vc_corpus,
    options={"root": data_root("vcc2020"), "lists": None, "trgspk": "TEF1", "srcspks": list(SOURCE_SPEAKERS),
             "vocoder": None, "f0min": None, "f0max": None, "upstream_rate": None, **FBANK, **MODEL},
    build=build_head, objective=VOICE_CONVERSION, metric="mcd", higher_better=False,
    train=dict(total_steps=10000, optimizer="AdamW", lr=1e-4, scheduler="linear", warmup_steps=4000,
               gradient_clipping=1.0, gradient_accumulate_steps=1, log_step=100, eval_step=1000, save_step=1000,
               max_keep=10),
    data={"batch_seconds": 24.0, "eval_batch_seconds": 25.0}))  # ~6 VCC2020 utterances (train), 5 (eval)
