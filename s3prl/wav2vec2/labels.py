"""Label files for CTC fine-tuning (``s3prl wav2vec2 labels``, replacing ``libri_labels.py``) and the letter
dictionary ``dict.ltr.txt`` (what ``fairseq-preprocess --only-source --trainpref train.ltr --thresholdsrc 0``
writes).

For each line of a manifest ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac\\t<samples>`` the transcript is looked up
in ``<root>/<spk>/<chapter>/<spk>-<chapter>.trans.txt`` (LibriSpeech: ``<utt-id> TEXT`` per line) by the file
name up to its first dot. ``NAME.wrd`` gets the words (whitespace collapsed to single spaces), ``NAME.ltr`` the
letters separated by spaces with ``|`` for every word boundary and a final ``|`` (``HI YOU`` -> ``H I | Y O U |``),
one line per manifest line, in manifest order.

The dictionary counts the space-separated symbols of ``.ltr`` files and lists them by count (descending, ties by
code point), ``SYMBOL COUNT`` per line, without fairseq's four special symbols, then ``madeupword0000 0`` ... so
that the four specials plus the symbols make a multiple of 8 (fairseq's ``padding_factor``).

Flat folders (``<spk>/<spk>-<chapter>-<utt>.flac`` with ``<spk>-<chapter>.trans.txt`` beside it), where
fairseq's script fails, are read too: the transcript file is then named by the utterance id. Errors name the
manifest line and the file: a missing ``*.trans.txt`` (with the places looked at), an utterance without a
transcript. :func:`check_labels` verifies that a label file has exactly one
line per manifest line (fine-tuning reads them side by side).
"""

from __future__ import annotations

import os
from collections import Counter

from . import RecipeError
from .manifest import read_manifest

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary's, not written to the file
PADDING_FACTOR = 8
LAYOUT = "<root>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac with <spk>-<chapter>.trans.txt beside the audio"


def letters(text: str) -> str:
    """``"HI YOU"`` -> ``"H I | Y O U |"`` (libri_labels.py's letter spelling)."""
    return " ".join(text.replace(" ", "|")) + " |"


def read_transcripts(path: str) -> dict[str, str]:
    """``<utt-id> WORDS...`` lines -> {utt-id: words joined by single spaces}; blank lines are skipped."""
    texts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            items = line.split()
            if items:
                texts[items[0]] = " ".join(items[1:])
    return texts


def transcript_file(root: str, rel: str) -> tuple[str, list[str]]:
    """The ``*.trans.txt`` holding the transcript of ``rel`` and the places looked at. libri_labels.py's place is
    ``<spk>-<chapter>.trans.txt`` named by the two parent folders; where that file is absent (flat folders such as
    ``<spk>/<spk>-<chapter>-<utt>.flac``, where fairseq's script fails), the name comes from the utterance id."""
    folder = os.path.dirname(rel)
    parts = folder.split(os.sep)
    tried = [os.path.join(root, folder, f"{parts[-2]}-{parts[-1]}.trans.txt")] if len(parts) >= 2 else []
    utt = os.path.basename(rel).split(".")[0]
    if "-" in utt:
        tried.append(os.path.join(root, folder, utt.rsplit("-", 1)[0] + ".trans.txt"))
    return next((p for p in tried if os.path.isfile(p)), ""), tried


def transcripts_for(tsv: str) -> list[str]:
    """The transcript of every line of a LibriSpeech manifest, in order (see module doc for the errors)."""
    manifest = read_manifest(tsv)
    cache: dict[str, dict[str, str]] = {}
    texts = []
    for number, (rel, _) in enumerate(manifest.entries, 2):
        path, tried = transcript_file(manifest.root, rel)
        if not path:
            where = " or ".join(tried) if tried else "nowhere (the file name has no <spk>-<chapter>- prefix)"
            raise RecipeError(f"{tsv}:{number}: no transcript file for {rel}: looked for {where}; expected "
                              f"layout: {LAYOUT}")
        if path not in cache:
            cache[path] = read_transcripts(path)
        utt = os.path.basename(rel).split(".")[0]
        if utt not in cache[path]:
            raise RecipeError(f"{tsv}:{number}: no transcript for {utt!r} in {path}")
        texts.append(cache[path][utt])
    return texts


def write_labels(tsv: str, output_dir: str, output_name: str) -> list[str]:
    """Write ``OUTPUT_DIR/NAME.wrd`` and ``NAME.ltr`` for the manifest ``tsv``; returns the transcripts.
    Nothing is written when a transcript is missing."""
    texts = transcripts_for(tsv)
    os.makedirs(output_dir, exist_ok=True)
    base = os.path.join(output_dir, output_name)
    with open(base + ".wrd", "w", encoding="utf-8") as wrd, open(base + ".ltr", "w", encoding="utf-8") as ltr:
        for text in texts:
            wrd.write(text + "\n")
            ltr.write(letters(text) + "\n")
    return texts


def count_symbols(paths: list[str]) -> Counter:
    counts: Counter = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(line.split())
    return counts


def dictionary_lines(counts: Counter) -> list[tuple[str, int]]:
    """fairseq ``Dictionary.finalize(threshold=0, padding_factor=8)`` order, specials left out."""
    rows = sorted(((s, n) for s, n in counts.items() if s not in SPECIALS), key=lambda item: (-item[1], item[0]))
    pad = -(len(SPECIALS) + len(rows)) % PADDING_FACTOR
    return rows + [(f"madeupword{i:04d}", 0) for i in range(pad)]


def write_dictionary(ltr_paths: list[str], out: str) -> list[tuple[str, int]]:
    """Write the letter dictionary of ``.ltr`` files to ``out`` (``SYMBOL COUNT`` lines); returns its rows."""
    rows = dictionary_lines(count_symbols(ltr_paths))
    if not rows:
        raise RecipeError(f"no symbols in {', '.join(ltr_paths)}: cannot build a letter dictionary")
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(f"{s} {n}\n" for s, n in rows)
    return rows


def check_labels(tsv: str, label_path: str) -> int:
    """Raise :class:`RecipeError` unless ``label_path`` has one non-empty line per line of the manifest ``tsv``
    (the message names the first line out of step); returns the number of lines."""
    entries = read_manifest(tsv).entries
    if not os.path.isfile(label_path):
        raise RecipeError(f"label file {label_path!r} not found (write it with `s3prl wav2vec2 labels {tsv} ...`)")
    with open(label_path, encoding="utf-8") as f:
        labels = f.read().split("\n")
    if labels and labels[-1] == "":
        labels.pop()
    for number, line in enumerate(labels, 1):
        if not line.strip() and number <= len(entries):
            raise RecipeError(f"{label_path}:{number}: empty label line for {entries[number - 1][0]} "
                              f"({tsv} line {number + 1})")
    if len(labels) != len(entries):
        first = min(len(labels), len(entries)) + 1
        what = (f"label line {first} has no manifest line" if len(labels) > len(entries)
                else f"manifest line {first + 1} ({entries[first - 1][0]}) has no label line")
        raise RecipeError(f"{label_path} has {len(labels)} lines but {tsv} lists {len(entries)} files: {what}. "
                          "Labels are read line by line beside the manifest: regenerate them from this manifest")
    return len(labels)
