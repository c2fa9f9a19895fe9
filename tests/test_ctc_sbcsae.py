"""OOD-ASR on SBCSAE (``ctc_sbcsae``): the SBCSAE-preprocess layout (clips folder + train/dev/test tsv lists) built
here, the reader's errors, the recipe's transcript rule, and a run through `s3prl downstream train`."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from s3prl.cli import main
from s3prl.downstream import tasks
from s3prl.downstream.corpora import CorpusLayoutError, sbcsae
from s3prl.downstream.tasks import ctc

SR = 16000
WORDS = ("YES", "NO", "I'M", "GO")
SMALL_HEAD = "task.model={project_dim: 16, dim: [16, 16], dropout: [0.0, 0.0]}"


def clip(words, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.3 * SR)) / SR
    parts = [0.3 * np.sin(2 * np.pi * 150.0 * 1.3 ** WORDS.index(w) * t) for w in words]
    return (np.concatenate(parts) + 0.01 * rng.standard_normal(len(parts) * len(t))).astype(np.float32)


def corpus(root: Path, per_split=4) -> Path:
    """``root/wav/SBC<NNN>_<start>-<end>.wav`` and ``root/tsv/{train,dev,test}.tsv`` from recordings of each split."""
    (root / "wav").mkdir(parents=True)
    (root / "tsv").mkdir()
    for split, rec in (("train", 3), ("dev", 47), ("test", 60)):
        rows = ["path\tsentence"]
        for u in range(per_split):
            words = [WORDS[(u + k) % len(WORDS)] for k in range(2)]
            name = f"SBC{rec:03d}_{100 * u:06d}-{100 * u + 60:06d}.wav"
            sf.write(str(root / "wav" / name), clip(words, rec + u), SR)
            rows.append(f"{name}\t{' '.join(words)}")
        (root / "tsv" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root / "wav"


def test_sbcsae_trains_with_the_english_characters(tmp_path):
    wav = corpus(tmp_path / "sbc")
    exp = tmp_path / "exp"
    assert main(["downstream", "train", "-u", "fbank", "-d", "ctc_sbcsae", "-p", str(exp), "-o",
                 f"task.root={wav},,data.cache_dir={tmp_path}/c,,data.num_workers=0,,train.total_steps=2,,"
                 f"train.eval_step=2,,train.save_step=2,,{SMALL_HEAD}"]) == 0
    result = json.loads((exp / "results.json").read_text())
    assert result["metric"] == "wer" and set(result["metrics"]) == {"wer", "cer"}
    assert (exp / "test-ref.ark").read_text().splitlines()[0] == "SBC060_000000-000060 YES NO"
    ckpt = torch.load(exp / "dev-best.ckpt", weights_only=True)
    classes = ckpt["Classes"]
    # the original's cv_vocab/en_char.txt: a space, an apostrophe, then A-Z, after <pad> <eos> <unk>
    assert classes["symbols"] == [" ", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    assert ckpt["Downstream"]["head.model.linear.weight"].shape[0] == 3 + 28
    assert classes["head"]["total_rate"] == 320 and classes["head"]["sample_style"] == "drop"


def test_the_original_sbcsae_yaml_defaults():
    """The values of the original downstream/ctc/sbcsae.yaml (runner, optimizer, specaug, model, metric)."""
    task = tasks.get("ctc_sbcsae")
    assert task.train["total_steps"] == 500000 and task.train["log_step"] == 200 and task.train["save_step"] == 200
    assert task.train["eval_step"] == 2000 and task.train["gradient_clipping"] == 1 and task.train["max_keep"] == 1
    assert task.train["optimizer"] == "Adam" and task.train["lr"] == 1e-4
    assert task.head == {"project_dim": 1024, "select": "RNNs", "module": "LSTM", "bidirection": True,
                         "dim": [1024, 1024], "dropout": [0.2, 0.2], "layer_norm": [False, False],
                         "proj": [True, True], "sample_rate": [1, 1], "sample_style": "drop", "total_rate": 320}
    assert task.specaug == ctc.SPECAUG and task.metric == "wer" and not task.higher_better


def test_lists_are_found_next_to_the_clips_or_named(tmp_path):
    wav = corpus(tmp_path / "a")
    splits = sbcsae.load(str(wav))
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [4, 4, 4]
    assert splits["dev"][1].uid == "SBC047_000100-000160" and splits["dev"][1].label == "NO I'M"
    named = sbcsae.load(str(wav), train=str(tmp_path / "a/tsv/dev.tsv"), lists=str(tmp_path / "a/tsv"))
    assert [ex.uid for ex in named["train"]] == [ex.uid for ex in splits["dev"]]


def test_layout_errors_show_the_layout(tmp_path, caplog):
    with pytest.raises(CorpusLayoutError, match=r"(?s)clips folder.*SBC<NNN>_<start>-<end>\.wav"):
        sbcsae.load(str(tmp_path / "nowhere"))
    wav = corpus(tmp_path / "b")
    (tmp_path / "b/tsv/test.tsv").unlink()
    with pytest.raises(CorpusLayoutError, match=r"(?s)test list: none of these files.*tsv/test\.tsv"):
        sbcsae.load(str(wav))
    lists = tmp_path / "b/tsv"
    (lists / "test.tsv").write_text("SBC060_0-1.wav\tHI\n")
    with pytest.raises(CorpusLayoutError, match="header `path<TAB>sentence`"):
        sbcsae.load(str(wav))
    (lists / "test.tsv").write_text("path\tsentence\nSBC060_000000-000060.wav\tHello, world.\n")
    with pytest.raises(ValueError, match=r"test\.tsv:2: transcript 'Hello, world\.' is not normalised.*normalize"):
        sbcsae.load(str(wav))
    (lists / "test.tsv").write_text("path\tsentence\nSBC060_000000-000060.wav\tHI\nSBC059_1-2.wav\tHO\n")
    with pytest.raises(CorpusLayoutError, match=r"(?s)1 of 2 listed files are missing.*SBC059_1-2\.wav"):
        sbcsae.load(str(wav))
    (lists / "test.tsv").write_text("path\tsentence\nSBC060_000000-000060.wav\tHI\n")
    (lists / "dev.tsv").write_text("path\tsentence\nSBC003_000000-000060.wav\tHI\n")  # a train recording
    with caplog.at_level(logging.WARNING):
        sbcsae.load(str(wav))
    assert "not from the dev recordings (SBC047-SBC053)" in caplog.text


def test_the_recipe_transcript_rule():
    # each case applies the rule stated in the module docstring by hand
    assert sbcsae.normalize("well, (H) I don't= know.") == "WELL I DON'T KNOW"
    assert sbcsae.normalize("it’s  a-ok!") == "IT'S A OK"
    assert sbcsae.normalize("[overlap] yes") == ""  # overlapping speech
    assert sbcsae.normalize("<X maybe X>") == ""  # uncertain hearing
    assert sbcsae.normalize("so (laugh") == ""  # unbalanced parenthesis
    assert sbcsae.normalize("she said xx") == "" and sbcsae.normalize("a x b") == ""  # unknown words
    assert sbcsae.normalize("caf\u00e9") == ""  # outside A-Z ' space
    assert sbcsae.normalize("WELL I DON'T KNOW") == "WELL I DON'T KNOW"  # normalised text is kept


def test_normalize_option_applies_the_rule_and_leaves_rejected_lines_out(tmp_path, caplog):
    wav = corpus(tmp_path / "c")
    (tmp_path / "c/tsv/dev.tsv").write_text("path\tsentence\nSBC047_000000-000060.wav\tyes, no.\n"
                                            "SBC047_000100-000160.wav\t[no] go\n")
    with caplog.at_level(logging.WARNING):
        splits = tasks.get("ctc_sbcsae").load({"root": str(wav), "normalize": True})
    assert [ex.label.text for ex in splits["dev"]] == ["YES NO"]
    assert "1 of 2 lines left out by the normalisation rule" in caplog.text


def original_sbcsae_config(wav: Path, lists: Path) -> dict:
    """A config in the layout of the original downstream/ctc/sbcsae.yaml (its sections and keys)."""
    return {
        "runner": {"total_steps": 2, "gradient_clipping": 1, "gradient_accumulate_steps": 1, "log_step": 2,
                   "eval_step": 2, "save_step": 2, "max_keep": 1, "eval_dataloaders": ["dev"]},
        "optimizer": {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-3},
        "specaug": {"apply_time_warp": True, "time_warp_window": 5},
        "downstream_expert": {
            "corpus": {"name": "sbcsae", "path": str(wav), "train": [str(lists / "train.tsv")],
                       "dev": [str(lists / "dev.tsv")], "test": [str(lists / "test.tsv")], "bucketing": True,
                       "batch_size": 16, "num_workers": 16},
            "text": {"mode": "character", "vocab_file": "downstream/ctc/cv_vocab/en_char.txt"},
            "model": {"project_dim": 16, "zero_infinity": True, "select": "RNNs", "Wav2Letter": {"total_rate": 320},
                      "RNNs": {"total_rate": 320, "module": "LSTM", "bidirection": True, "dim": [16, 16],
                               "dropout": [0.0, 0.0], "layer_norm": [False, False], "proj": [True, True],
                               "sample_rate": [1, 1], "sample_style": "drop"}},
            "save_best_on": ["dev"], "metric_higher_better": False, "metric": ["wer"]}}


def test_an_original_sbcsae_yaml_translates_into_a_run_config(tmp_path):
    from s3prl.downstream import config as run_config

    wav = corpus(tmp_path / "d")
    name, update = ctc.from_original_config(original_sbcsae_config(wav, tmp_path / "d/tsv"), "sbcsae.yaml")
    assert name == "ctc_sbcsae"
    assert update["train"] == {"total_steps": 2, "gradient_clipping": 1, "gradient_accumulate_steps": 1,
                               "log_step": 2, "eval_step": 2, "save_step": 2, "max_keep": 1, "lr": 1e-3,
                               "optimizer": "Adam"}
    assert "vocab_file" not in update["task"]  # the original's relative en_char.txt: the built-in table
    task = tasks.get(name)
    merged = run_config.merge(run_config.default_config(task), update, "sbcsae.yaml")  # every key is known
    splits = task.load(merged["task"])
    head = splits["train"][0].label.vocabulary["head"]
    assert head["dim"] == [16, 16] and head["proj"] == [True, True] and "zero_infinity" not in head
    with pytest.raises(ValueError, match="corpus 'librispeech' has no original-config reading"):
        ctc.from_original_config({"downstream_expert": {"corpus": {"name": "librispeech"}}})
    with pytest.raises(ValueError, match="no downstream_expert.corpus.name"):
        ctc.from_original_config({"runner": {}})


def test_the_original_command_line_runs_with_its_yaml(tmp_path):
    """`-d ctc -c sbcsae.yaml` (the original's command line) picks ctc_sbcsae and its file's values."""
    import yaml

    wav = corpus(tmp_path / "d")
    original = original_sbcsae_config(wav, tmp_path / "d/tsv")
    (tmp_path / "sbcsae.yaml").write_text(yaml.safe_dump(original))
    exp = tmp_path / "exp"
    assert main(["downstream", "train", "-u", "fbank", "-d", "ctc", "-c", str(tmp_path / "sbcsae.yaml"), "-p",
                 str(exp), "-o", f"data.cache_dir={tmp_path}/c,,data.num_workers=0"]) == 0
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["task_name"] == "ctc_sbcsae" and config["train"]["total_steps"] == 2
    assert config["train"]["lr"] == 1e-3
    assert torch.load(exp / "dev-best.ckpt", weights_only=True)["Classes"]["head"]["dim"] == [16, 16]
    assert main(["downstream", "train", "-u", "fbank", "-d", "ctc", "-p", str(tmp_path / "x")]) == 1  # no -c
    assert main(["downstream", "train", "-u", "fbank", "-d", "ctc_snips", "-c", str(tmp_path / "sbcsae.yaml"),
                 "-p", str(tmp_path / "y")]) == 1  # the file names another task


def test_the_original_libriphone_yaml_translates(tmp_path):
    """libriphone.yaml's keys (corpus path/lexicon/splits, text, FrameLevel model) become ctc_libriphone's sections;
    its repository-relative g2p lexicons stand for the built-in default, a lexicon file that exists is kept."""
    from s3prl.downstream import config as run_config

    mine = tmp_path / "lexicon.txt"
    mine.write_text("HELLO HH AH0 L OW1\n")
    original = {"runner": {"total_steps": 100000, "gradient_accumulate_steps": 2, "eval_step": 1000},
                "optimizer": {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": 1.0e-2},
                "downstream_expert": {
                    "corpus": {"name": "libriphone", "path": "/data/LibriSpeech",
                               "lexicon": ["downstream/ctc/lexicon/librispeech-lexicon-200k-g2p.txt", str(mine)],
                               "train": ["train-clean-100"], "dev": ["dev-clean"], "test": ["test-clean"]},
                    "text": {"mode": "word", "vocab_file": "downstream/ctc/vocab/phoneme.txt"},
                    "model": {"project_dim": 256, "zero_infinity": True, "select": "FrameLevel"}}}
    name, update = ctc.from_original_config(original, "libriphone.yaml")
    assert name == "ctc_libriphone"
    assert update["task"]["lexicon"] == [str(mine)] and "vocab_file" not in update["task"]
    merged = run_config.merge(run_config.default_config(tasks.get(name)), update, "libriphone.yaml")
    assert merged["train"]["lr"] == 1e-2 and merged["task"]["root"] == "/data/LibriSpeech"


def test_task_specaug_changes_turns_off_or_is_refused(tmp_path):
    """-o task.specaug={...} changes the task's SpecAugment (stored in the checkpoint's Classes), false turns it
    off, an unknown key is named; an original yaml's specaug block replaces it, no block means none."""
    wav = corpus(tmp_path / "d")
    task = tasks.get("ctc_sbcsae")
    narrow = task.load({"root": str(wav), "specaug": {"num_freq_mask": 1, "freq_mask_width_range": [0, 10]}})
    record = narrow["train"][0].label.vocabulary
    assert record["specaug"] == {**ctc.SPECAUG, "num_freq_mask": 1, "freq_mask_width_range": [0, 10]}
    head = task.build_head(80, record)
    assert head.specaug.cfg.num_freq_mask == 1 and head.specaug.cfg.num_time_mask == ctc.SPECAUG["num_time_mask"]
    off = task.load({"root": str(wav), "specaug": False})["train"][0].label.vocabulary
    assert off["specaug"] is None and task.build_head(80, off).specaug is None
    assert task.load({"root": str(wav)})["train"][0].label.vocabulary["specaug"] == ctc.SPECAUG
    with pytest.raises(ValueError, match="task.specaug: .*num_freq_masks"):
        task.load({"root": str(wav), "specaug": {"num_freq_masks": 1}})
    original = original_sbcsae_config(wav, tmp_path / "d/tsv")
    _, update = ctc.from_original_config(original)
    assert update["task"]["specaug"]["time_warp_window"] == 5 and update["task"]["specaug"]["num_freq_mask"] == 4
    del original["specaug"]
    assert ctc.from_original_config(original)[1]["task"]["specaug"] is False
