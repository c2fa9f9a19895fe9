"""Speech-translation data in fairseq's speech-to-text layout, as the original ``speech_translation`` task reads
it (CoVoST 2 prepared by its ``prepare_data/prepare_covo.sh``).

A data folder holds one ``<split>.tsv`` per split: a header line, then tab-separated rows (no quoting) with at
least the columns ``id``, ``audio`` (path relative to ``audio_root``), ``n_frames`` (samples) and ``tgt_text``;
``src_text`` (the transcript, for the ASR multitask), ``speaker`` and ``sr`` may follow. An optional
``config.yaml`` beside them gives ``audio_root``, ``vocab_filename`` and ``bpe_tokenizer.sentencepiece_model``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, missing_files_error, require_dir, require_file

LAYOUT = """\
  <root>/train.tsv, dev.tsv, test.tsv  header `id audio n_frames tgt_text [src_text] [speaker] [sr]`, one
                                       tab-separated row per utterance (split names: task.train/dev/test)
  <root>/config.yaml                   optional: audio_root, vocab_filename, bpe_tokenizer.sentencepiece_model
  <audio_root>/<audio>                 the recordings (audio_root: task.audio_root, config.yaml's, else <root>)"""
REQUIRED_COLUMNS = ("id", "audio", "n_frames", "tgt_text")


def read_config(root: Path, name: str | None) -> dict:
    """``<root>/<name>`` (fairseq's data config) as a dict; ``{}`` when ``name`` is empty or the file is absent."""
    path = root / name if name else None
    if path is None or not path.is_file():
        return {}
    import yaml

    with open(path, encoding="utf-8") as f:
        loaded = yaml.safe_load(f) or {}
    if not isinstance(loaded, dict):
        raise CorpusLayoutError(f"{path}: expected a mapping (audio_root, vocab_filename, bpe_tokenizer, ...)")
    return loaded


def read_split(tsv: Path, audio_root: Path) -> list[Example]:
    """The rows of one split as examples whose label is ``{"tgt_text", "src_text"}`` (``src_text`` None if
    the column is absent)."""
    require_file(tsv, "speech-translation split", LAYOUT)
    with open(tsv, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None)
        rows = list(reader)
        header = reader.fieldnames or []
    absent = [c for c in REQUIRED_COLUMNS if c not in header]
    if absent:
        raise CorpusLayoutError(f"{tsv}: no column(s) {', '.join(absent)} in the header {header}. Expected:\n{LAYOUT}")
    if not rows:
        raise CorpusLayoutError(f"{tsv}: no utterances (only a header line)")
    examples, missing = [], []
    for number, row in enumerate(rows, 2):
        if None in row or any(row[c] is None for c in REQUIRED_COLUMNS):
            raise CorpusLayoutError(f"{tsv}:{number}: expected {len(header)} tab-separated columns as the header")
        if ":" in row["audio"] and not (audio_root / row["audio"]).is_file():
            raise CorpusLayoutError(f"{tsv}:{number}: audio {row['audio']!r} looks like fairseq's packed-feature "
                                    "reference (zip:offset:length); this task reads waveform files (prepare the "
                                    "data as the original's prepare_data scripts do: one audio file per row)")
        audio = audio_root / row["audio"]
        if not audio.is_file():
            missing.append(str(audio))
            continue
        label = {"tgt_text": row["tgt_text"], "src_text": row.get("src_text")}
        examples.append(Example(row["id"], str(audio), label))
    if missing:
        raise missing_files_error(f"speech translation {tsv}", missing, len(rows), f"Expected layout:\n{LAYOUT}")
    return examples


def load(root: str, train: str = "train", dev: str = "dev", test: str = "test", config_yaml: str = "config.yaml",
         audio_root: str | None = None) -> dict[str, list[Example]]:
    folder = require_dir(root, "speech-translation data folder", LAYOUT)
    config = read_config(folder, config_yaml)
    base = Path(audio_root or config.get("audio_root") or folder)
    if not base.is_absolute():
        base = folder / base
    return {split: read_split(folder / f"{name}.tsv", base) for split, name in (("train", train), ("dev", dev),
                                                                                 ("test", test))}


def load_task(root: str, train: str = "train", dev: str = "dev", test: str = "test", config_yaml: str = "config.yaml",
              audio_root: str | None = None, **task_options) -> dict[str, list[Example]]:
    """:func:`load` called with a task's options (those that are not the corpus' configure the task itself)."""
    return load(root, train, dev, test, config_yaml, audio_root)
