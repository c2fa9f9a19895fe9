"""wav2vec features and vq-wav2vec tokens of a data set (``s3prl wav2vec2 featurize`` / ``tokenize``, replacing
fairseq's ``wav2vec_featurize.py`` / ``vq-wav2vec_featurize.py``), over our own wav2vec model: any wav2vec or
vq-wav2vec checkpoint this package loads (fairseq's own files, s3prl-converted ones).

``featurize``: for each split, every ``INPUT/<split>/*.EXT`` (sorted) becomes ``OUTPUT/<split>/<name>.h5context``,
an HDF5 file in the wav2letter layout: ``features`` = the (T, C) float32 matrix flattened row by row (context
vectors ``c``; ``z`` of the feature encoder with ``use_feat``) and ``info`` = float64 ``[100, T, C]`` (frame rate,
frames, channels). The other files of the split folder (label files, lists) are copied beside them unless
``copy_labels=False``. Audio must be 16 kHz (fairseq asserts it; here the error names the file).

``tokenize``: for each split, the files of ``DATA/<split>.tsv`` (``extension="tsv"``) or ``DATA/<split>/**/*.EXT``
become one line each of ``OUTPUT/<split>.src``: the vq-wav2vec code of every frame, groups joined by ``-``, frames
by spaces (``12-301 5-17 ...``; the input of vq-wav2vec BERT training). Files longer than ``max_size`` samples are
cut into equal chunks (``torch.chunk``) quantized separately. ``labels``: a file with one label per input file, or
an extension (``wrd``: the first line of ``<audio path without extension>.wrd``), written to ``<split>.lbl``.
``shard`` / ``num_shards`` keep every ``num_shards``-th file from ``shard`` (``.src.<shard>``).

Differences from fairseq's scripts (none on inputs where those work as intended): a labels file is indexed by the
position of the file in the whole split (fairseq indexes it within the shard, so sharded labels were misaligned);
an extension label is written without its newline (fairseq wrote an extra empty line after each); files are
found in sorted order (fairseq: glob order, filesystem-dependent; manifests keep their order); labels are copied
when their NAME does not end with ``.EXT`` (fairseq tested the whole path for the substring EXT);
``<name>.EXT`` -> ``<name>.h5context`` replaces the final extension only; a CPU runs everything (``device``).
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import Callable, Iterator

import torch

from ..extras import MissingExtraError
from . import RecipeError
from .manifest import find_audio, read_manifest

FRAME_RATE = 16000 // 160  # wav2letter's ``info[0]``: frames per second of the 10 ms hop
FAMILIES = ("wav2vec", "vq_wav2vec")  # registry families built by s3prl/upstream/wav2vec.py


def checkpoint_file(model: str) -> str:
    """A local checkpoint path for a file, an http(s):// / hf:// address or a registry name of the wav2vec family
    (``wav2vec``, ``vq_wav2vec_gumbel``, ``vq_wav2vec_kmeans``...: downloaded, verified and cached)."""
    from .. import download, registry

    if os.path.isfile(model) or model.startswith(("http://", "https://", "hf://", "file://")):
        return download.resolve_checkpoint(model)
    if model in registry.REGISTRY:
        name, entry = registry.resolve(model)
        if entry.family in FAMILIES and entry.urls:
            return download.resolve_checkpoint(entry.urls[0], sha256=entry.sha256[0] if entry.sha256 else None)
        raise RecipeError(f"{model!r} ({name}) is not a released wav2vec / vq-wav2vec model; give a checkpoint file "
                          "or one of: " + ", ".join(n for n, e in registry.REGISTRY.items()
                                                    if e.family in FAMILIES and e.urls))
    raise RecipeError(f"checkpoint {model!r} not found (a file, a URL, or a wav2vec registry name such as "
                      "wav2vec or vq_wav2vec_kmeans)")


def load_wav2vec(path: str, device: str | torch.device = "cpu"):
    """A wav2vec / vq-wav2vec model (ours) in eval mode from a fairseq or s3prl-converted checkpoint (see
    :func:`checkpoint_file` for what ``path`` may be)."""
    from ..upstream import wav2vec

    path = checkpoint_file(path)
    try:
        model = wav2vec.load_model(path)
    except ValueError as err:
        raise RecipeError(f"{err}. featurize / tokenize take wav2vec and vq-wav2vec checkpoints; for wav2vec 2.0 "
                          "and HuBERT features use `s3prl extract -u wav2vec2_custom -k CKPT ...`") from err
    return model.to(device).eval()


def read_audio(path: str) -> torch.Tensor:
    """A 16 kHz file as a float32 (samples,) tensor; other rates and multi-channel files are errors."""
    import soundfile

    try:
        data, rate = soundfile.read(path, dtype="float32")
    except Exception as err:  # libsndfile raises its own error types
        raise RecipeError(f"cannot read audio file {path}: {err}") from err
    if rate != 16000:
        raise RecipeError(f"{path} is sampled at {rate} Hz; wav2vec models take 16 kHz audio (resample it first, "
                          "e.g. `sox IN -r 16000 OUT`)")
    if data.ndim != 1:
        raise RecipeError(f"{path} has {data.shape[1]} channels; wav2vec models take mono audio")
    return torch.from_numpy(data)


def _run(path: str, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    try:
        with torch.no_grad():
            return fn()
    except RuntimeError as err:  # a clip shorter than the conv receptive field, mostly
        raise RecipeError(f"{path}: the model cannot encode this file ({err}); is it shorter than the model's "
                          "receptive field (about 30 ms)?") from err


def write_h5context(path: str, feats: torch.Tensor) -> None:
    """(C, T) features -> wav2letter's HDF5 layout (module doc)."""
    try:
        import h5py
    except ImportError as err:
        raise MissingExtraError("writing .h5context files needs h5py: pip install s3prl[hdf5]") from err
    import numpy as np

    channels, frames = feats.shape
    with h5py.File(path, "w") as out:
        out["features"] = feats.t().contiguous().float().cpu().numpy().reshape(-1)
        out["info"] = np.array([FRAME_RATE, frames, channels], dtype=np.float64)


def featurize(input_root: str, output_root: str, model_path: str, splits: list[str], ext: str = "wav",
              use_feat: bool = False, copy_labels: bool = True, device: str = "cpu",
              progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """``wav2vec_featurize.py``: write every split's ``.h5context`` files; returns the number of files per split."""
    model = load_wav2vec(model_path, device)
    done = {}
    for split in splits:
        folder = os.path.join(input_root, split)
        if not os.path.isdir(folder):
            raise RecipeError(f"input split folder {folder!r} not found (expected INPUT/<split>/*.{ext})")
        files = sorted(glob.glob(os.path.join(glob.escape(folder), f"*.{ext}")))
        if not files:
            raise RecipeError(f"no *.{ext} file in {folder} (choose the audio extension with --ext)")
        out_dir = os.path.join(output_root, split)
        os.makedirs(out_dir, exist_ok=True)
        for path in files:
            wav = read_audio(path)[None].to(device)  # (1, samples)
            z = _run(path, lambda: model.feature_extractor(wav))  # (1, C, T)
            feats = z if use_feat else _run(path, lambda: model.feature_aggregator(z))
            name = os.path.basename(path)[: -len(ext) - 1] + ".h5context"
            write_h5context(os.path.join(out_dir, name), feats[0])
            if progress:
                progress(path)
        if copy_labels:
            for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*"))):
                if os.path.isfile(path) and not path.endswith("." + ext):
                    shutil.copy(path, out_dir)
        done[split] = len(files)
    return done


def token_string(ids: torch.Tensor) -> str:
    """(T, G) code ids -> ``"a-b c-d ..."``."""
    return " ".join("-".join(str(i) for i in frame) for frame in ids.tolist())


def tokens(model, wav: torch.Tensor, max_size: int = 1300000) -> torch.Tensor:
    """(samples,) -> (T, G) vq-wav2vec code ids, the input cut in ``torch.chunk`` pieces of at most ``max_size``."""
    x = wav[None]  # (1, samples)
    div = 1
    while x.size(-1) // div > max_size:
        div += 1
    ids = []
    for piece in x.chunk(div, dim=-1):
        z = model.feature_extractor(piece)  # (1, C, T)
        ids.append(model.vector_quantizer.forward_idx(z)[1][0])  # (T, G)
    return torch.cat(ids)


def split_files(data_dir: str, split: str, extension: str) -> list[str]:
    if extension == "tsv":
        return read_manifest(os.path.join(data_dir, f"{split}.tsv")).paths()
    folder = os.path.join(data_dir, split)
    if not os.path.isdir(folder):
        raise RecipeError(f"split folder {folder!r} not found (with --extension {extension}, the files are "
                          f"DATA_DIR/<split>/**/*.{extension}; --extension tsv reads DATA_DIR/<split>.tsv)")
    return find_audio(folder, extension)


def _labels(labels: str | None, files: list[str], indices: range, where: str) -> Iterator[str | None]:
    if not labels:
        return iter([None] * len(indices))
    if os.path.isfile(labels):
        with open(labels, encoding="utf-8") as f:
            lines = [line.rstrip() for line in f]
        if len(lines) < len(files):
            raise RecipeError(f"labels file {labels} has {len(lines)} lines but {where} lists {len(files)} files: "
                              f"file {len(lines) + 1} ({files[len(lines)]}) has no label")
        return (lines[i] for i in indices)

    def from_files() -> Iterator[str]:
        for i in indices:
            path = os.path.splitext(files[i])[0] + "." + labels
            if not os.path.isfile(path):
                raise RecipeError(f"label file {path} not found (--labels {labels} reads <audio path without its "
                                  "extension>.<labels>; give a file path for one label per line)")
            with open(path, encoding="utf-8") as f:
                yield f.readline().rstrip("\n")

    return from_files()


def tokenize(data_dir: str, output_dir: str, checkpoint: str, splits: list[str], extension: str,
             labels: str | None = None, shard: int | None = None, num_shards: int | None = None,
             max_size: int = 1300000, device: str = "cpu",
             progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """``vq-wav2vec_featurize.py``: write ``<split>.src`` (and ``.lbl``); returns the number of lines per split."""
    if (shard is None) != (num_shards is None):
        raise RecipeError("--shard and --num-shards go together (e.g. --shard 0 --num-shards 4)")
    if num_shards is not None and not 0 <= shard < num_shards:
        raise RecipeError(f"--shard must be in [0, --num-shards) (got {shard} of {num_shards})")
    if max_size < 1:
        raise RecipeError(f"--max-size must be a positive number of samples (got {max_size})")
    model = load_wav2vec(checkpoint, device)
    if model.vector_quantizer is None:
        raise RecipeError(f"{checkpoint} is a wav2vec model without a quantizer: tokenize needs a vq-wav2vec "
                          "checkpoint (use `s3prl wav2vec2 featurize` for wav2vec features)")
    os.makedirs(output_dir, exist_ok=True)
    suffix = "" if shard is None else f".{shard}"
    done = {}
    for split in splits:
        files = split_files(data_dir, split, extension)
        if not files:
            raise RecipeError(f"split {split!r} of {data_dir} has no audio file")
        indices = range(len(files)) if shard is None else range(shard, len(files), num_shards)
        lines, lbls = [], []
        for i, lbl in zip(indices, _labels(labels, files, indices, f"split {split!r}")):
            wav = read_audio(files[i]).to(device)
            lines.append(token_string(_run(files[i], lambda: tokens(model, wav, max_size))))
            lbls.append(lbl)
            if progress:
                progress(files[i])
        with open(os.path.join(output_dir, f"{split}.src{suffix}"), "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        if labels:
            with open(os.path.join(output_dir, f"{split}.lbl{suffix}"), "w", encoding="utf-8") as f:
                f.writelines(lbl + "\n" for lbl in lbls)
        done[split] = len(lines)
    return done
