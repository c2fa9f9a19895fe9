"""QUESST 2014 (``quesst14Database``): query-by-example search, English subset as the original recipe.

The scoring folder's lists name the files and their language; the original keeps the ``nnenglish`` lines only
(option ``language``; ``all`` keeps every language). The ground truth is the scoring folder's NIST STD files:
``<name>.ecf.xml`` (the searched documents), ``<name>.tlist.xml`` (the terms = queries) and ``<name>.rttm``
(``LEXEME <document> <channel> <tbeg> <dur> <term> ...``: which documents hold which term).

Splits: ``dev`` = the dev queries + every document, ``test`` = the eval queries + every document. An example's
label is ``"query"`` or ``"doc"``. Audio is read as the rest of the toolkit reads it (8 kHz -> 16 kHz, mono);
the original's extra ``gain -3`` dB (sox) is not applied (a constant factor; features are z-normalised).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..data import Example
from ._common import CorpusLayoutError, missing_files_error, require_dir, require_file

LAYOUT = """\
  <root>/Audio/quesst14_00001.wav ...              the documents
  <root>/dev_queries/quesst14_dev_0001.wav ...     dev queries
  <root>/eval_queries/quesst14_eval_0001.wav ...   eval queries
  <root>/scoring/language_key_utterances.lst       '<top>/Audio/quesst14_00001.wav nnenglish' per line
  <root>/scoring/language_key_dev.lst, language_key_eval.lst   the same for the queries
  <root>/scoring/groundtruth_quesst14_dev/quesst14.ecf.xml, quesst14_dev.tlist.xml, quesst14_dev.rttm
  <root>/scoring/groundtruth_quesst14_eval/quesst14.ecf.xml, quesst14_eval.tlist.xml, quesst14_eval.rttm"""

SPLITS = {"dev": "dev", "test": "eval"}  # our split name -> QUESST's


def _listed(root: Path, lst: str, language: str) -> list[Path]:
    """Audio files named in ``scoring/<lst>`` for ``language`` (``all``: every line), in list order."""
    path = require_file(root / "scoring" / lst, "quesst14", LAYOUT)
    files = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise CorpusLayoutError(f"{path}:{number}: expected '<path> <language>', got {line!r}")
        if language != "all" and fields[1] != language:
            continue
        path = root / re.sub(r"^[^/]*/", "", fields[0])  # the first folder is the database's own name
        files.append(path if path.is_file() or not (root / fields[0]).is_file() else root / fields[0])
    return files


def load(root: str, language: str = "nnenglish", **_) -> dict[str, list[Example]]:
    """``{"dev": queries + documents, "test": queries + documents}``; uid = file stem (the QUESST name)."""
    root_dir = require_dir(root, "quesst14 root", LAYOUT)
    docs = _listed(root_dir, "language_key_utterances.lst", language)
    out = {}
    for split, name in SPLITS.items():
        queries = _listed(root_dir, f"language_key_{name}.lst", language)
        if not queries or not docs:
            raise CorpusLayoutError(f"quesst14: no {language!r} lines in the scoring lists of {root!r} "
                                    f"({len(queries)} {name} queries, {len(docs)} documents)")
        files = queries + docs
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise missing_files_error("quesst14", missing, len(files), f"Expected layout:\n{LAYOUT}")
        out[split] = [Example(p.stem, str(p), "query") for p in queries] + [Example(p.stem, str(p), "doc") for p in docs]
    return out


def truth_folder(root: str | Path, split: str) -> Path:
    return Path(root) / "scoring" / f"groundtruth_quesst14_{SPLITS.get(split, split)}"


def ground_truth(root: str | Path, split: str) -> tuple[list[str], list[str], dict[str, set[str]]]:
    """``(terms, documents, truth)`` of a split from its ground-truth folder (:func:`read_ground_truth`)."""
    return read_ground_truth(truth_folder(root, split))


def read_ground_truth(folder: str | Path) -> tuple[list[str], list[str], dict[str, set[str]]]:
    """``(terms, documents, truth)`` from a NIST STD ground-truth folder (one ``.ecf.xml``, ``.tlist.xml`` and
    ``.rttm``): the tlist's term ids, the ecf's documents, and term -> the documents the rttm says hold it."""
    folder = require_dir(folder, "quesst14 ground truth", LAYOUT)
    ecf, tlist, rttm = (_one(folder, pattern) for pattern in ("*.ecf.xml", "*.tlist.xml", "*.rttm"))
    try:
        documents = [e.get("audio_filename") for e in ET.parse(ecf).getroot().iter("excerpt")]
        terms = [t.get("termid") for t in ET.parse(tlist).getroot().iter("term")]
    except ET.ParseError as err:
        raise CorpusLayoutError(f"quesst14: cannot parse the ground truth in {folder}: {err}") from None
    documents = [Path(d).stem for d in documents if d]  # some ecf files name the file with its folder / .wav
    truth: dict[str, set[str]] = {t: set() for t in terms}
    for number, line in enumerate(rttm.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "LEXEME":
            continue
        if len(fields) < 6:
            raise CorpusLayoutError(f"{rttm}:{number}: a LEXEME line needs at least 6 fields, got {line!r}")
        if fields[5] in truth:
            truth[fields[5]].add(Path(fields[1]).stem)
    return terms, documents, truth


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise CorpusLayoutError(f"quesst14: expected one {pattern} in {folder}, found {len(found)}. "
                                f"Expected layout:\n{LAYOUT}")
    return found[0]


def write_stdlist(path: str | Path, scores: dict[str, dict[str, float]], threshold: float) -> Path:
    """``benchmark.stdlist.xml`` in the NIST STD 2006 format the QUESST scorer reads, as the original writes it:
    one ``detected_termlist`` per query with a ``term`` per document (score to 4 decimals, YES above
    ``threshold``)."""
    root = ET.Element("stdlist", termlist_filename="benchmark.stdlist.xml", indexing_time="1.00",
                      language="english", index_size="1", system_id="benchmark")
    for query, doc_scores in scores.items():
        terms = ET.SubElement(root, "detected_termlist", termid=query, term_search_time="1.0", oov_term_count="1")
        for doc, score in doc_scores.items():
            ET.SubElement(terms, "term", file=doc, channel="1", tbeg="0.000", dur="0.00", score=f"{score:.4f}",
                          decision="YES" if score > threshold else "NO")
    tree = ET.ElementTree(root)
    ET.indent(tree, space="  ")
    path = Path(path)
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def read_stdlist(path: str | Path) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], bool]]:
    """``(scores, decisions)`` keyed by ``(term, document)`` from a ``.stdlist.xml`` file."""
    scores, decisions = {}, {}
    for terms in ET.parse(path).getroot().iter("detected_termlist"):
        term = terms.get("termid")
        for det in terms.iter("term"):
            key = (term, det.get("file"))
            scores[key] = float(det.get("score"))
            decisions[key] = det.get("decision", "NO").upper() == "YES"
    return scores, decisions


def write_layout(root: str | Path, queries: dict[str, dict[str, tuple]], docs: dict[str, tuple],
                 truth: dict[str, dict[str, set]], language: str = "nnenglish") -> Path:
    """Write a QUESST14-style database (your own recordings, or test data) that :func:`load` reads.

    ``queries``: split (``dev`` / ``eval``) -> {name: (samples, rate)}; ``docs``: {name: (samples, rate)};
    ``truth``: split -> {query name: the document names that hold it}. Audio is written as 16-bit WAV.
    """
    import numpy as np
    import soundfile

    root = Path(root)
    folders = {"dev": "dev_queries", "eval": "eval_queries"}
    scoring = root / "scoring"
    scoring.mkdir(parents=True, exist_ok=True)

    def write(folder: str, items: dict[str, tuple]) -> list[str]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, (samples, rate) in items.items():
            soundfile.write(root / folder / f"{name}.wav", np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")
        return [f"quesst14Database/{folder}/{name}.wav {language}\n" for name in items]

    (scoring / "language_key_utterances.lst").write_text("".join(write("Audio", docs)))
    for split, items in queries.items():
        (scoring / f"language_key_{split}.lst").write_text("".join(write(folders[split], items)))
        folder = scoring / f"groundtruth_quesst14_{split}"
        folder.mkdir(exist_ok=True)
        ecf = ET.Element("ecf", source_signal_duration="0", language="multiple", version="synthetic")
        for name, (samples, rate) in docs.items():
            ET.SubElement(ecf, "excerpt", audio_filename=name, channel="1", tbeg="0.000",
                          dur=f"{len(samples) / rate:.3f}", source_type="splitcts")
        ET.ElementTree(ecf).write(folder / "quesst14.ecf.xml", encoding="UTF-8", xml_declaration=True)
        tlist = ET.Element("termlist", ecf_filename="quesst14.ecf.xml", version="synthetic", language="multiple",
                           encoding="UTF-8")
        for name in items:
            ET.SubElement(ET.SubElement(tlist, "term", termid=name), "termtext").text = name
        ET.ElementTree(tlist).write(folder / f"quesst14_{split}.tlist.xml", encoding="UTF-8", xml_declaration=True)
        lines = [f"LEXEME {doc} 1 0.000 0.000 {query} lex <NA> <NA>\n"
                 for query in items for doc in sorted(truth.get(split, {}).get(query, ()))]
        (folder / f"quesst14_{split}.rttm").write_text("".join(lines))
    return root
