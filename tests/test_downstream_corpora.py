"""Corpus readers: mini corpora in the original layouts built in tmp_path, and the real mini corpora of
``$S3PRL_TEST_DATA`` (skipped when unset)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("s3prl.downstream.data")

from s3prl.downstream.corpora import (  # noqa: E402
    CorpusLayoutError, fluent_commands, fsdd, iemocap, librispeech_speakers, speech_commands, voxceleb1)


def _wav(path: Path, seconds: float = 0.05, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * rate), dtype=np.float32), rate)
    return path


def _data_dir(name: str) -> Path:
    root = os.environ.get("S3PRL_TEST_DATA")
    if not root or not (Path(root) / name).is_dir():
        pytest.skip(f"S3PRL_TEST_DATA is not set or lacks {name}")
    return Path(root) / name


# ----------------------------------------------------------------------------------------- speech commands
# speaker hashes whose partition the corpus' own lists give: train (in neither list), dev, test
SC_SPEAKERS = {"train": ["0a7c2a8d", "51055bda"], "dev": ["439c84f4", "026290a7"], "test": ["022cd682", "0ea0e2f4"]}


def _speech_commands(root: Path) -> Path:
    lists = {"dev": [], "test": []}
    for word in ("yes", "stop", "bed", "marvin"):
        for part, speakers in SC_SPEAKERS.items():
            for spk in speakers:
                _wav(root / word / f"{spk}_nohash_0.wav")
                if part != "train":
                    lists[part].append(f"{word}/{spk}_nohash_0.wav")
    lists["dev"].append("yes/ffffffff_nohash_0.wav")  # listed but absent, as in the real mini copy
    (root / "validation_list.txt").write_text("\n".join(lists["dev"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    _wav(root / "_background_noise_" / "white_noise.wav", 2.5)
    _wav(root / "_background_noise_" / "running_tap.wav", 3.2)
    return root


def test_speech_commands_hash_split_labels_and_silence(tmp_path):
    root = _speech_commands(tmp_path / "train")
    splits = speech_commands.load(str(root))
    words = {part: sorted(e.uid for e in splits[part] if not e.uid.startswith("_silence_")) for part in splits}
    for part, speakers in SC_SPEAKERS.items():
        assert sorted({u.split("-")[1].split("_")[0] for u in words[part]}) == sorted(speakers)
        assert len(words[part]) == 4 * len(speakers)
    assert "yes-0a7c2a8d_nohash_0.wav" in words["train"]  # the original's file id
    labels = {e.uid: speech_commands.CLASSES[e.label] for e in splits["train"]}
    assert labels["yes-0a7c2a8d_nohash_0.wav"] == "yes" and labels["stop-0a7c2a8d_nohash_0.wav"] == "stop"
    assert labels["bed-0a7c2a8d_nohash_0.wav"] == "_unknown_" and labels["marvin-51055bda_nohash_0.wav"] == "_unknown_"
    silence = [e for e in splits["train"] if speech_commands.CLASSES[e.label] == "_silence_"]
    assert [(Path(e.path).name, e.start, e.end) for e in silence] == [
        ("running_tap.wav", 0.0, 1.0), ("running_tap.wav", 1.0, 2.0), ("running_tap.wav", 2.0, 3.0),
        ("white_noise.wav", 0.0, 1.0), ("white_noise.wav", 1.0, 2.0)]
    assert [e for e in splits["dev"] if e.label == 11] == silence  # the original adds the noise to dev too
    assert all(e.label != 11 for e in splits["test"])
    # the corpus' list files give the same split (the absent listed file is simply never seen)
    assert speech_commands.load(str(root), split_rule="lists") == splits
    half = speech_commands.load(str(root), silence_hop=0.5)
    assert sum(e.label == 11 for e in half["train"]) == 4 + 5


def test_speech_commands_weights_test_set_and_errors(tmp_path):
    root = _speech_commands(tmp_path / "train")
    train = speech_commands.load(str(root))["train"]
    weights = speech_commands.class_weights(train)
    per_class = Counter()
    for ex, w in zip(train, weights):
        per_class[ex.label] += w
    assert len(set(round(v, 9) for v in per_class.values())) == 1  # every class drawn equally often
    test_root = tmp_path / "test"
    for cls in ("yes", "_unknown_", "_silence_"):
        _wav(test_root / cls / "a_nohash_0.wav")
    test = speech_commands.load(str(root), test_root=str(test_root))["test"]
    assert [(e.uid, speech_commands.CLASSES[e.label]) for e in test] == [
        ("_silence_-a_nohash_0.wav", "_silence_"), ("_unknown_-a_nohash_0.wav", "_unknown_"),
        ("yes-a_nohash_0.wav", "yes")]
    _wav(test_root / "bed" / "b_nohash_0.wav")
    with pytest.raises(CorpusLayoutError, match="bed"):
        speech_commands.load(str(root), test_root=str(test_root))
    with pytest.raises(CorpusLayoutError, match="nowhere"):
        speech_commands.load(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="split_rule"):
        speech_commands.load(str(root), split_rule="random")


def test_speech_commands_real_mini():
    root = _data_dir("speech_commands_v0.01_mini")
    splits = speech_commands.load(str(root))
    assert {k: len(v) for k, v in splits.items()} == {"train": 205, "dev": 44, "test": 51}
    assert speech_commands.load(str(root), split_rule="lists") == splits
    counts = Counter(speech_commands.CLASSES[e.label] for e in splits["train"])
    assert counts["_unknown_"] == 147 and counts["_silence_"] == 0  # the mini copy has no noise folder
    assert sum(counts.values()) == 205


# ----------------------------------------------------------------------------------------- fluent commands
FSC_HEADER = ",path,speakerId,transcription,action,object,location\n"


def _fsc(root: Path, test_rows=None) -> Path:
    rows = {
        "train": [("activate", "lights", "kitchen"), ("increase", "heat", "none"), ("activate", "music", "none"),
                  ("deactivate", "lights", "washroom")],
        "dev": [("increase", "lights", "kitchen")],
        "test": test_rows or [("deactivate", "music", "washroom"), ("activate", "heat", "none")],
    }
    (root / "data").mkdir(parents=True)
    for split, file_name in fluent_commands.SPLIT_FILES.items():
        lines = [FSC_HEADER]
        for i, (a, o, loc) in enumerate(rows[split]):
            rel = f"wavs/speakers/spk{i % 2}/{split}{i}.wav"
            _wav(root / rel)
            lines.append(f'{i},{rel},spk{i % 2},"some words, quoted",{a},{o},{loc}\n')
        (root / "data" / file_name).write_text("".join(lines))
    return root


def test_fluent_commands_vocab_and_labels(tmp_path):
    root = _fsc(tmp_path / "fsc")
    vocab = fluent_commands.slot_vocabularies(str(root))
    assert vocab == {"action": ["activate", "increase", "deactivate"], "object": ["lights", "heat", "music"],
                     "location": ["kitchen", "none", "washroom"]}  # first appearance in train
    assert fluent_commands.slot_sizes(str(root)) == (3, 3, 3)
    splits = fluent_commands.load(str(root))
    assert [e.label for e in splits["test"]] == [(2, 2, 2), (0, 1, 1)]
    assert splits["dev"][0].uid == "dev0" and splits["dev"][0].path == str(root / "wavs/speakers/spk0/dev0.wav")
    bad = _fsc(tmp_path / "bad", test_rows=[("dance", "lights", "none")])
    with pytest.raises(ValueError, match="dance"):
        fluent_commands.load(str(bad))
    with pytest.raises(CorpusLayoutError, match="train_data.csv"):
        fluent_commands.load(str(tmp_path))


# ----------------------------------------------------------------------------------------- voxceleb1
def _voxceleb(root: Path) -> Path:
    files = {"dev": ["id10001/aaa/00001.wav", "id10001/bbb/00001.wav", "id10003/ccc/00002.wav"],
             "test": ["id10270/ddd/00001.wav", "id10270/eee/00002.wav", "id10300/fff/00001.wav"]}
    for part, rels in files.items():
        for i, rel in enumerate(rels):
            _wav(root / part / "wav" / rel, seconds=3.0 if i != 1 else 1.0)
    (root / "iden_split.txt").write_text(
        "1 id10001/aaa/00001.wav\n2 id10001/bbb/00001.wav\n3 id10003/ccc/00002.wav\n1 id10270/ddd/00001.wav\n")
    (root / "voxceleb1_test_v2.txt").write_text(
        "1 id10270/ddd/00001.wav id10270/eee/00002.wav\n0 id10270/ddd/00001.wav id10300/fff/00001.wav\n")
    return root


def test_voxceleb1_sid_and_asv(tmp_path):
    root = _voxceleb(tmp_path / "vox")
    sid = voxceleb1.load_sid(str(root))
    assert [(e.uid, e.label) for e in sid["train"]] == [("id10001-aaa-00001", 0), ("id10270-ddd-00001", 269)]
    assert sid["train"][1].path == str(root / "test/wav/id10270/ddd/00001.wav")  # found under */wav
    assert [e.label for e in sid["dev"]] == [0] and [e.label for e in sid["test"]] == [2]
    asv = voxceleb1.load_asv(str(root))
    assert [(e.uid, e.label) for e in asv["train"]] == [("id10001-aaa-00001", 0), ("id10003-ccc-00002", 1)]
    assert len(voxceleb1.load_asv(str(root), min_seconds=None)["train"]) == 3
    assert [e.uid for e in asv["test"]] == ["id10270-ddd-00001", "id10270-eee-00002", "id10300-fff-00001"]
    assert voxceleb1.read_trials(str(root / "voxceleb1_test_v2.txt")) == [
        ("id10270-ddd-00001", "id10270-eee-00002", 1), ("id10270-ddd-00001", "id10300-fff-00001", 0)]
    with open(root / "iden_split.txt", "a") as f:
        f.write("3 id10999/zzz/00001.wav\n")
    with pytest.raises(CorpusLayoutError, match="id10999/zzz/00001.wav"):
        voxceleb1.load_sid(str(root))
    (root / "iden_split.txt").unlink()
    with pytest.raises(CorpusLayoutError, match="veri_test_class.txt"):
        voxceleb1.load_sid(str(root))


# ----------------------------------------------------------------------------------------- IEMOCAP
def _iemocap(root: Path) -> dict[str, int]:
    """Five sessions; returns the number of kept utterances per session."""
    kept = {}
    for k in range(1, 6):
        session = f"Session{k}"
        lines, n = ["% header", ""], 0
        for j, emo in enumerate(["neu", "exc", "fru", "ang", "sad", "hap", "xxx"] + ["neu"] * k):
            utt = f"Ses0{k}F_impro01_F{j:03d}"
            if j != 3 or k != 2:  # one utterance of Session2 has a label but no wav: dropped
                _wav(root / session / "sentences/wav" / f"Ses0{k}F_impro01" / f"{utt}.wav")
                n += emo in ("neu", "exc", "ang", "sad", "hap")
            lines.append(f"[{j}.0 - {j + 1}.0]\t{utt}\t{emo}\t[2.5, 2.5, 2.5]")
        label_dir = root / session / "dialog" / "EmoEvaluation"
        label_dir.mkdir(parents=True)
        (label_dir / f"Ses0{k}F_impro01.txt").write_text("\n".join(lines) + "\n")
        (label_dir / "Categorical").mkdir()  # sub-folders are ignored
        kept[session] = n
    return kept


def test_iemocap_folds_labels_and_dev_split(tmp_path):
    root = tmp_path / "IEMOCAP"
    kept = _iemocap(root)
    utts = iemocap.session_utterances(str(root), "Session1")
    assert [(Path(r).stem[-4:], lab, spk) for r, lab, spk in utts] == [
        ("F000", "neu", "Ses01F"), ("F001", "hap", "Ses01F"), ("F003", "ang", "Ses01F"), ("F004", "sad", "Ses01F"),
        ("F005", "hap", "Ses01F"), ("F007", "neu", "Ses01F")]
    for fold in (1, 2):
        splits = iemocap.load(str(root), fold=fold)
        n_train = sum(v for s, v in kept.items() if s != f"Session{fold}")
        assert len(splits["test"]) == kept[f"Session{fold}"]
        assert len(splits["train"]) == int(0.8 * n_train) and len(splits["dev"]) == n_train - int(0.8 * n_train)
        assert not {e.uid for e in splits["train"]} & {e.uid for e in splits["dev"]}
        assert all(e.uid.startswith(f"Ses0{fold}") for e in splits["test"])
    assert iemocap.load(str(root), fold=3) == iemocap.load(str(root), fold=3)
    # the original's meta-data JSON route reads the same lists
    meta = tmp_path / "meta_data" / "Session1"
    meta.mkdir(parents=True)
    for part, sessions in (("train", [f"Session{k}" for k in range(2, 6)]), ("test", ["Session1"])):
        items = [u for s in sessions for u in iemocap.session_utterances(str(root), s)]
        data = {"labels": {"neu": 0, "hap": 1, "ang": 2, "sad": 3},
                "meta_data": [{"path": p, "label": lab, "speaker": spk} for p, lab, spk in items]}
        (meta / f"{part}_meta_data.json").write_text(json.dumps(data))
    assert iemocap.load(str(root), fold=1, meta_data=str(tmp_path / "meta_data")) == iemocap.load(str(root), fold=1)
    with pytest.raises(ValueError, match="fold"):
        iemocap.load(str(root), fold=6)
    with pytest.raises(CorpusLayoutError, match="Session"):
        iemocap.load(str(tmp_path / "meta_data"), fold=1)


# ----------------------------------------------------------------------------------------- FSDD
def test_fsdd_takes_split_and_tasks(tmp_path):
    for digit in (0, 7):
        for speaker in ("jackson", "theo"):
            for take in (0, 4, 5, 9, 10, 49):
                _wav(tmp_path / "recordings" / f"{digit}_{speaker}_{take}.wav", rate=8000)
    (tmp_path / "recordings" / "README.md").write_text("not a recording")
    splits = fsdd.load(str(tmp_path))
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "dev": 8, "test": 8}
    assert sorted({e.uid.split("_")[2] for e in splits["dev"]}) == ["5", "9"]
    assert {e.label for e in splits["train"]} == {0, 7}
    speaker = fsdd.load(str(tmp_path / "recordings"), task="speaker")
    assert fsdd.speakers(str(tmp_path)) == ["jackson", "theo"]
    assert [e.label for e in speaker["test"] if e.uid.startswith("7_")] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="task"):
        fsdd.load(str(tmp_path), task="gender")
    with pytest.raises(CorpusLayoutError, match="recordings"):
        fsdd.load(str(tmp_path / "recordings" / "nothing"))


def test_fsdd_real():
    root = _data_dir("fsdd")
    splits = fsdd.load(str(root))
    assert {k: len(v) for k, v in splits.items()} == {"train": 2400, "dev": 300, "test": 300}
    assert Counter(e.label for e in splits["test"]) == {d: 30 for d in range(10)}
    assert len(fsdd.speakers(str(root))) == 6
    speaker = fsdd.load(str(root), task="speaker")
    assert Counter(e.label for e in speaker["dev"]) == {s: 50 for s in range(6)}


# ----------------------------------------------------------------------------------------- LibriSpeech speakers
def test_librispeech_speakers_real():
    root = _data_dir("librispeech_test_other_mini")
    assert len(librispeech_speakers.speakers(str(root))) == 10
    splits = librispeech_speakers.load(str(root))
    assert {k: len(v) for k, v in splits.items()} == {"train": 70, "dev": 10, "test": 20}
    assert Counter(e.label for e in splits["test"]) == {s: 2 for s in range(10)}
    uids = [e.uid for part in splits.values() for e in part]
    assert len(set(uids)) == 100
    asv = librispeech_speakers.load_asv(str(root))
    assert {k: len(v) for k, v in asv.items()} == {"train": 80, "test": 20}
    assert {e.label for e in asv["train"]} == set(range(8))
    trials = librispeech_speakers.make_trials(asv["test"])
    assert len(trials) == 180 and sum(t[2] for t in trials) == 90
    assert librispeech_speakers.make_trials(asv["test"]) == trials  # deterministic
    speaker = {e.uid: e.label for e in asv["test"]}
    assert all((speaker[a] == speaker[b]) == bool(t) for a, b, t in trials)
    assert len(librispeech_speakers.make_trials(asv["test"], max_per_class=10)) == 20


def test_librispeech_speakers_layout(tmp_path):
    for spk in ("19", "26", "32"):
        for utt in range(4):
            _wav(tmp_path / spk / "198" / f"{spk}-198-{utt:04d}.flac")
    splits = librispeech_speakers.load(str(tmp_path), dev_ratio=0.25, test_ratio=0.25)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "dev": 3, "test": 3}
    with pytest.raises(CorpusLayoutError, match="librispeech root"):
        librispeech_speakers.load(str(tmp_path / "19" / "nothing-here"))
