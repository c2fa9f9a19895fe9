"""Query-by-example spoken term detection (QbE, ``quesst14_dtw``): training-free, DTW on frozen features.

As the original ``downstream/quesst14_dtw``: for one hidden state of the upstream (``-l N``; ``-l all`` sweeps
every hidden state in one run, the features cached once), each query's and document's frames, optionally
without the frames whose argmax is ``silence_frame``, are z-normalised with the mean / std of all frames of the
split (``feature_normalization``); every query is matched against every document by subsequence DTW
(:mod:`s3prl.downstream.dtw`: distance ``dist_method``, row-wise min-max normalisation, ``asymmetric`` steps,
open begin and end); a query's scores (minus the normalised distance; 0 for queries shorter than
``min_query_frames`` frames) are z-normalised over the documents; YES where the z-score > ``score_threshold``
(2.0, "top 2.5 %"). The detections go to ``benchmark.stdlist.xml`` in the official format, and our own
scorer (:mod:`s3prl.metrics.twv`, no Java) gives MTWV and ATWV against the split's ground truth.

``s3prl downstream evaluate -u fbank -d quesst14_dtw -n NAME -t dev -l all -o task.root=/data/quesst14Database``
writes ``results_dev.json`` / ``.md``, ``mtwv_per_layer.png`` and ``layer_<k>/benchmark.stdlist.xml``; the
best dev layer is then run on the test split (the QUESST eval queries) with ``-t test -l <best>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...metrics import twv as twv_metric
from ..corpora import quesst14
from ..dtw import DISTANCES, score_matrix, znorm_scores
from .base import Objective, Task, register


def _no_training(*_args, **_kwargs):
    raise ValueError("quesst14_dtw is training-free (DTW on frozen features): there is no head to train; run "
                     "`s3prl downstream evaluate -u UPSTREAM -d quesst14_dtw -n NAME -t dev -l all "
                     "-o task.root=/path/to/quesst14Database`")


def check_options(options: dict) -> None:
    """Clear errors for option values the DTW cannot use."""
    if options["dist_method"] not in DISTANCES:
        raise ValueError(f"task.dist_method={options['dist_method']!r}: choose one of {', '.join(DISTANCES)}")
    if options["dist_method"] == "cosine_neg_log" and options["feature_normalization"]:
        raise ValueError("task.dist_method=cosine_neg_log needs non-negative features (posteriorgrams): set "
                         "-o task.feature_normalization=false, as the original requires")
    for key in ("p_target", "c_miss", "c_fa"):
        if not isinstance(options[key], (int, float)) or isinstance(options[key], bool):
            raise ValueError(f"task.{key} must be a number, got {options[key]!r}")
    twv_metric.beta_of(options["p_target"], options["c_miss"], options["c_fa"])


def silent_files(paths: list[str], floor: float = 1e-4) -> list[str]:
    """The files whose RMS (all channels) is below ``floor`` (digital silence)."""
    import soundfile

    silent = []
    for path in paths:
        samples, _ = soundfile.read(path, dtype="float32", always_2d=True)
        if not samples.size or float(np.sqrt(np.mean(np.square(samples)))) < floor:
            silent.append(path)
    return silent


def prepare_features(features: dict[str, np.ndarray], silence_frame: int | None,
                     normalize: bool) -> dict[str, np.ndarray]:
    """Silence frames dropped (argmax == ``silence_frame``), then z-normalisation over all frames of the split
    (torch float32 statistics with the unbiased std floored at 1e-9, as the original)."""
    out = {}
    for uid, feat in features.items():
        feat = torch.as_tensor(feat, dtype=torch.float32)
        if silence_frame is not None and len(feat):
            feat = feat[feat.argmax(1) != silence_frame]
        out[uid] = feat
    if normalize:
        frames = torch.cat(list(out.values()))
        if len(frames) < 2:
            raise ValueError("QbE: fewer than 2 feature frames in the whole split: nothing to normalise")
        mean, std = frames.mean(0), torch.clamp(frames.std(0), 1e-9)
        out = {uid: (f - mean) / std for uid, f in out.items()}
    return {uid: f.numpy() for uid, f in out.items()}


def qbe_scores(features: dict[str, np.ndarray], queries: list[str], docs: list[str],
               options: dict) -> dict[str, dict[str, float]]:
    """``{query: {doc: z-normalised score}}`` for one layer's per-utterance features (T, D)."""
    feats = prepare_features(features, options["silence_frame"], options["feature_normalization"])
    empty = [d for d in docs if len(feats[d]) == 0]
    if empty:
        raise ValueError(f"QbE: document(s) {empty[:5]} have no frames left (empty audio, or only "
                         f"silence_frame={options['silence_frame']}): remove them from the scoring lists")
    raw = score_matrix([feats[q] for q in queries], [feats[d] for d in docs], options["dist_method"],
                       options["minmax_norm"], options["min_query_frames"])
    return {q: dict(zip(docs, znorm_scores(raw[i]).tolist())) for i, q in enumerate(queries)}


def twv_of(scores: dict[str, dict[str, float]], truth: dict[str, set], documents: list[str], options: dict) -> dict:
    """MTWV (and its threshold) and ATWV at the YES decisions (z > ``score_threshold``)."""
    costs = {k: options[k] for k in ("p_target", "c_miss", "c_fa")}
    flat = {(q, d): s for q, row in scores.items() for d, s in row.items()}
    best, threshold = twv_metric.mtwv(flat, truth, documents, **costs)
    actual = twv_metric.twv({k: s > options["score_threshold"] for k, s in flat.items()}, truth, documents, **costs)
    return {"MTWV": best, "ATWV": actual, "MTWV_threshold": threshold}


def score_stdlist(stdlist: str | Path, truth_folder: str | Path, p_target: float = twv_metric.P_TARGET,
                  c_miss: float = twv_metric.C_MISS, c_fa: float = twv_metric.C_FA) -> dict:
    """MTWV / ATWV of any ``.stdlist.xml`` (ours, or the original s3prl's) against a ground-truth folder such as
    ``quesst14Database/scoring/groundtruth_quesst14_dev``: the official script's main numbers, without Java.
    The trials are the ecf's documents; terms are the tlist's terms with a true occurrence."""
    scores, decisions = quesst14.read_stdlist(stdlist)
    terms, documents, truth = quesst14.read_ground_truth(truth_folder)
    truth = {t: truth[t] for t in terms}
    costs = {"p_target": p_target, "c_miss": c_miss, "c_fa": c_fa}
    best, threshold = twv_metric.mtwv(scores, truth, documents, **costs)
    return {"MTWV": best, "ATWV": twv_metric.twv(decisions, truth, documents, **costs), "MTWV_threshold": threshold}


def evaluate_layers(layers: list, features_of, examples: list, options: dict, split: str, folder: Path) -> dict:
    """Score every layer of ``layers``; ``features_of(layer) -> {uid: (T, D) array}`` (one layer in memory at
    a time). Writes each layer's
    ``benchmark.stdlist.xml`` (in ``layer_<k>/`` when several) and, for several, ``mtwv_per_layer.png``.
    Returns ``(metrics of the best layer, details)``: details hold ``best_layer``, ``per_layer``, the number of
    terms scored (queries with a true occurrence) and of documents."""
    check_options(options)
    queries = [ex.uid for ex in examples if ex.label == "query"]
    docs = [ex.uid for ex in examples if ex.label == "doc"]
    terms, documents, truth = quesst14.ground_truth(options["root"], split)
    unknown = sorted(set(documents) - set(docs))
    if unknown and not options["skip_silent"]:  # skipped silent documents are no trials
        raise ValueError(f"QbE: {len(unknown)} documents of the {split} ground truth (e.g. {unknown[0]!r}) are not in "
                         "the scoring lists' documents for this language: check task.language")
    truth = {q: truth.get(q, set()) for q in queries}
    if not any(truth.values()):
        raise ValueError(f"QbE: none of the {len(queries)} {split} queries occurs in the documents according to the "
                         f"ground truth in {quesst14.truth_folder(options['root'], split)}: nothing to score")
    per_layer = {}
    for layer in layers:
        scores = qbe_scores(features_of(layer), queries, docs, options)
        out = folder / f"layer_{layer}" if len(layers) > 1 else folder
        out.mkdir(parents=True, exist_ok=True)
        quesst14.write_stdlist(out / "benchmark.stdlist.xml", scores, options["score_threshold"])
        per_layer[layer] = twv_of(scores, truth, docs, options)
    best = max(per_layer, key=lambda k: per_layer[k]["MTWV"])
    if len(per_layer) > 1:
        plot_mtwv(per_layer, folder / "mtwv_per_layer.png", f"QbE ({split}): MTWV per hidden state")
    details = {"best_layer": best, "per_layer": per_layer, "terms_scored": sum(1 for q in queries if truth[q]),
               "documents": len(docs)}
    return per_layer[best], details


def plot_mtwv(per_layer: dict, path: Path, title: str) -> Path:
    from ..report import pyplot, save_figure

    plt = pyplot()
    layers = list(per_layer)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(layers) + 2), 3.0))
    ax.bar([str(k) for k in layers], [per_layer[k]["MTWV"] for k in layers], color="#4477aa")
    ax.set_xlabel("hidden state")
    ax.set_ylabel("MTWV")
    return save_figure(fig, path, title)


class QbETask(Task):
    """A training-free task: the runner extracts features and calls :func:`evaluate_layers`."""

    training_free = True

    def count_classes(self, train):
        return 0

    def load(self, options: dict) -> dict:
        """The splits; digitally silent files (RMS below -80 dBFS) are an error naming them, or with
        ``task.skip_silent=true`` are left out (a silent query is not searched, a silent document is no trial):
        their extreme features would otherwise dominate the split's feature normalisation."""
        splits = super().load(options)
        silent = silent_files(sorted({ex.path for examples in splits.values() for ex in examples}))
        if silent and not {**self.options, **options}["skip_silent"]:
            shown = "\n".join(f"  {p}" for p in silent[:5]) + (f"\n  ... and {len(silent) - 5} more" if len(silent) > 5 else "")
            raise ValueError(f"QbE: {len(silent)} file(s) are digitally silent (RMS < 1e-4):\n{shown}\nremove them from "
                             "the scoring lists, or pass -o task.skip_silent=true to leave them out of the search")
        return {k: [ex for ex in v if ex.path not in set(silent)] for k, v in splits.items()}

    def evaluate(self, layers: list, features_of, examples: list, options: dict, split: str,
                 folder: Path) -> tuple[dict, dict]:
        return evaluate_layers(layers, features_of, examples, options, split, folder)


QBE_OPTIONS = {"root": None, "language": "nnenglish", "dist_method": "cosine_exp", "minmax_norm": True,
               "feature_normalization": True, "silence_frame": None, "min_query_frames": 5, "score_threshold": 2.0,
               "skip_silent": False,
               "p_target": twv_metric.P_TARGET, "c_miss": twv_metric.C_MISS, "c_fa": twv_metric.C_FA}

QBE = register(QbETask(
    name="quesst14_dtw", description="QbE: QUESST14 (English), per-layer subsequence DTW, no training",
    corpus=quesst14.load, options=dict(QBE_OPTIONS), build=lambda *_: _no_training(),
    objective=Objective(_no_training, _no_training, _no_training), metric="MTWV",
    eval_splits=("dev",), data={"eval_batch_seconds": 64.0},
))
