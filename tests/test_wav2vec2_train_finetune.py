"""``s3prl wav2vec2 train --task audio_finetuning --arch wav2vec_ctc``: the seed's CTC fine-tuning command.

The pieces it wires (model, ctc criterion, Adam, tri_stage, checkpoint layout) are proven equal to fairseq in
tests/test_wav2vec2_finetune.py. Here: the command runs (seed flags, hydra recipes), its checkpoints are read by
``s3prl wav2vec2 infer`` with the same decode as the trained model's greedy path, validation metrics follow their
definition (recomputed here), the best checkpoint follows ``--best-checkpoint-metric``, the resume is exact, and
bad input gives clear errors.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from s3prl.cli import main as cli_main

FIX = Path(__file__).parent / "fixtures"
AUDIO = FIX / "w2v_train_oracle" / "audio"
WORDS = {"u0": "A CAB", "u1": "BAD CAB", "u2": "DAB", "u3": "A BAD CAD", "u4": "CAB A", "u5": "BAD A",
         "u6": "DAB CAB"}
# the seed's command (examples/wav2vec/README.md), tiny sizes and counts
SEED = ("--post-process letter --valid-subset valid --no-epoch-checkpoints --best-checkpoint-metric wer "
        "--num-workers 4 --max-update 6 --sentence-avg --task audio_finetuning --arch wav2vec_ctc --labels ltr "
        "--apply-mask --mask-selection static --mask-other 0 --mask-length 2 --mask-prob 0.5 --layerdrop 0.1 "
        "--mask-channel-selection static --mask-channel-other 0 --mask-channel-length 4 --mask-channel-prob 0.5 "
        "--zero-infinity --feature-grad-mult 0.0 --freeze-finetune-updates 2 --validate-after-updates 2 "
        "--optimizer adam --adam-betas (0.9,0.98) --adam-eps 1e-08 --lr 0.002 --lr-scheduler tri_stage "
        "--warmup-steps 2 --hold-steps 2 --decay-steps 2 --final-lr-scale 0.05 --final-dropout 0.0 --dropout 0.0 "
        "--activation-dropout 0.1 --criterion ctc --attention-dropout 0.0 --max-tokens 24000 --seed 2337 "
        "--log-format json --log-interval 2 --ddp-backend no_c10d --no-progress-bar --save-interval-updates 2").split()


def letters(words: str) -> str:
    return " ".join(" ".join(w) + " |" for w in words.split())


def make_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(AUDIO, data / "audio")
    for split, names in (("train", ["u0", "u1", "u2", "u3", "u4"]), ("valid", ["u5", "u6"])):
        import soundfile as sf

        rows = [f"{n}.wav\t{sf.info(str(AUDIO / f'{n}.wav')).frames}" for n in names]
        (data / f"{split}.tsv").write_text(f"{data / 'audio'}\n" + "\n".join(rows) + "\n")
        (data / f"{split}.ltr").write_text("".join(letters(WORDS[n]) + "\n" for n in names))
    (data / "dict.ltr.txt").write_text("| 20\nA 10\nB 8\nC 6\nD 4\n")
    shutil.copy(FIX / "w2v_loss_base_ckpt.pt", tmp_path / "pre.pt")
    return data


def train(data: Path, save: Path, *extra: str) -> int:
    torch.set_num_threads(1)
    return cli_main(["wav2vec2", "train", str(data), "--save-dir", str(save), "--w2v-path",
                     str(data.parent / "pre.pt"), *SEED, *extra])


def read(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def history(save: Path) -> list[dict]:
    return [json.loads(line) for line in (save / "history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    data = make_data(tmp)
    assert train(data, tmp / "ck") == 0
    return data, tmp / "ck"


def test_seed_command_writes_fairseq_finetuned_checkpoints(run):
    data, save = run
    last = read(save / "checkpoint_last.pt")
    assert last["cfg"]["model"]["_name"] == "wav2vec_ctc" and last["cfg"]["task"]["_name"] == "audio_finetuning"
    assert last["cfg"]["criterion"] == {"_name": "ctc", "zero_infinity": True, "sentence_avg": True,
                                        "post_process": "letter"}
    m = last["cfg"]["model"]
    assert (m["apply_mask"], m["mask_prob"], m["mask_channel_length"], m["layerdrop"], m["freeze_finetune_updates"],
            m["activation_dropout"], m["feature_grad_mult"]) == (True, 0.5, 4, 0.1, 2, 0.1, 0.0)
    assert last["optimizer_history"][-1]["num_updates"] == 6
    assert last["model"]["w2v_encoder.proj.weight"].shape[0] == 4 + 5  # fairseq's 4 specials + 5 letters
    names = {p.name for p in save.glob("checkpoint*.pt")}
    assert {"checkpoint_last.pt", "checkpoint_best.pt"} <= names
    # the encoder was frozen for the first 2 updates: the pre-trained weights are unchanged until then
    pre = read(data.parent / "pre.pt")["model"]
    key = "encoder.layers.0.fc1.weight"
    first = [h for h in history(save) if h["split"] == "valid"]
    assert first and last["model"]["w2v_encoder.w2v_model." + key].shape == pre[key].shape
    assert not torch.equal(last["model"]["w2v_encoder.w2v_model." + key], pre[key].float())
    # the feature extractor is frozen throughout (--feature-grad-mult 0.0)
    conv = "feature_extractor.conv_layers.0.0.weight"
    assert torch.equal(last["model"]["w2v_encoder.w2v_model." + conv], pre[conv].float())


def test_validation_metrics_follow_their_definition_and_pick_best(run):
    """wer/uer recomputed here from the saved checkpoint's greedy decode; checkpoint_best.pt holds the lowest wer
    of the validations from --validate-after-updates on."""
    from s3prl.metrics.error_rate import distance
    from s3prl.wav2vec2.ctc_model import Vocabulary
    from s3prl.wav2vec2.featurize import read_audio
    from s3prl.wav2vec2.finetune_io import from_fairseq_finetuned

    data, save = run
    valid = [h for h in history(save) if h["split"] == "valid"]
    real = [h for h in valid if h["step"] >= 2]
    assert [h["step"] for h in real] == [2, 4, 6]
    best = read(save / "checkpoint_best.pt")
    best_step = best["optimizer_history"][-1]["num_updates"]
    assert min(h["wer"] for h in real) == next(h["wer"] for h in real if h["step"] == best_step)
    # recompute the last validation from checkpoint_last.pt
    voc = Vocabulary.load_fairseq(str(data / "dict.ltr.txt"))
    model = from_fairseq_finetuned(str(save / "checkpoint_last.pt"), vocabulary=voc).eval()
    c_err = c_tot = w_err = w_tot = 0
    for n in ("u5", "u6"):
        wav = read_audio(str(data / "audio" / f"{n}.wav"))[None]
        em, _ = model.emissions(wav, torch.tensor([wav.size(1)]))
        path = em[0].argmax(-1).unique_consecutive().tolist()
        hyp = [voc.symbols[i] for i in path if i != 0]
        ref = letters(WORDS[n]).split()
        c_err, c_tot = c_err + distance(ref, hyp), c_tot + len(ref)
        hw, rw = "".join(hyp).replace("|", " ").split(), WORDS[n].split()
        w_err, w_tot = w_err + distance(rw, hw), w_tot + len(rw)
    assert real[-1]["uer"] == pytest.approx(100 * c_err / c_tot)
    assert real[-1]["wer"] == pytest.approx(100 * w_err / w_tot)


def test_infer_reads_the_checkpoint_and_decodes_as_the_trained_model(run, tmp_path, capsys):
    """Round trip: `s3prl wav2vec2 infer --path checkpoint_best.pt` (viterbi) writes the greedy decode of the
    trained model."""
    from s3prl.wav2vec2.ctc_model import Vocabulary
    from s3prl.wav2vec2.featurize import read_audio
    from s3prl.wav2vec2.finetune_io import from_fairseq_finetuned

    data, save = run
    out = tmp_path / "res"
    assert cli_main(["wav2vec2", "infer", str(data), "--path", str(save / "checkpoint_best.pt"), "--gen-subset",
                     "valid", "--w2l-decoder", "viterbi", "--results-path", str(out), "--quiet", "--cpu"]) == 0
    voc = Vocabulary.load_fairseq(str(data / "dict.ltr.txt"))
    model = from_fairseq_finetuned(str(save / "checkpoint_best.pt"), vocabulary=voc).eval()
    expected = []
    for n in ("u5", "u6"):
        wav = read_audio(str(data / "audio" / f"{n}.wav"))[None]
        em, _ = model.emissions(wav, torch.tensor([wav.size(1)]))
        path = [i for i in em[0].argmax(-1).unique_consecutive().tolist() if i != 0]
        expected.append(voc.words(voc.string(path)))
    hypo = next(out.glob("hypo.word-*"))
    got = sorted(hypo.read_text().splitlines(), key=lambda s: int(s.rsplit("-", 1)[1].rstrip(")")))
    assert [line.rsplit(" (", 1)[0] for line in got] == expected
    # and the emissions infer computes from the file are the trained model's (log-softmax), frame by frame
    dump = tmp_path / "em.npy"
    assert cli_main(["wav2vec2", "infer", str(data), "--path", str(save / "checkpoint_best.pt"), "--gen-subset",
                     "valid", "--dump-emissions", str(dump), "--cpu"]) == 0
    arrays = np.load(dump, allow_pickle=True)
    for n, got_em in zip(("u5", "u6"), arrays):
        wav = read_audio(str(data / "audio" / f"{n}.wav"))[None]
        em, _ = model.emissions(wav, torch.tensor([wav.size(1)]))
        torch.testing.assert_close(torch.from_numpy(got_em), em[0].log_softmax(-1), atol=1e-4, rtol=1e-4)


def test_resume_is_exact(run, tmp_path):
    """4 updates, then re-running the same command to 6: the same weights as the uninterrupted run."""
    data, save = run
    part = tmp_path / "part"
    assert train(data, part, "--max-update", "4") == 0
    # same schedule: the tri_stage steps are given explicitly, so --max-update does not change the rates
    assert train(data, part) == 0
    a, b = read(save / "checkpoint_last.pt")["model"], read(part / "checkpoint_last.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_hydra_recipe_form(tmp_path):
    """--config-name base_100h with overrides: the recipe's settings reach the checkpoint."""
    data = make_data(tmp_path)
    save = tmp_path / "hy"
    torch.set_num_threads(1)
    rc = cli_main(["wav2vec2", "train", "--config-name", "base_100h", f"task.data={data}",
                   f"model.w2v_path={data.parent / 'pre.pt'}", "distributed_training.distributed_world_size=1",
                   "optimization.max_update=2", "+optimization.update_freq='[1]'", "dataset.max_tokens=24000",
                   "dataset.valid_subset=valid", "common.fp16=false", "model.mask_channel_length=4",
                   "model.mask_length=2", "checkpoint.save_dir=" + str(save), "common.log_interval=1",
                   "--no-progress-bar"])
    assert rc == 0
    ck = read(save / "checkpoint_last.pt")
    m = ck["cfg"]["model"]
    assert (m["mask_prob"], m["mask_channel_prob"], m["layerdrop"], m["apply_mask"]) == (0.65, 0.5, 0.1, True)
    assert ck["cfg"]["criterion"]["sentence_avg"] is True and ck["cfg"]["optimization"]["lr"] == [3e-05]
    sched = ck["cfg"]["lr_scheduler"]
    assert (sched["_name"], sched["final_lr_scale"], sched["phase_ratio"]) == ("tri_stage", 0.05, "(0.1, 0.4, 0.5)")


@pytest.mark.parametrize("case", ["labels_short", "no_boundary", "no_w2v", "not_w2v", "finetuned_w2v", "no_arch"])
def test_bad_input_is_clear(tmp_path, case, capsys):
    data = make_data(tmp_path)
    extra: list[str] = []
    if case == "labels_short":
        lines = (data / "train.ltr").read_text().splitlines()
        (data / "train.ltr").write_text("\n".join(lines[:-1]) + "\n")
        match = "train.ltr has 4 lines but .* lists 5 files"
    elif case == "no_boundary":
        (data / "dict.ltr.txt").write_text("A 10\nB 8\nC 6\nD 4\n")
        match = "no word boundary"
    elif case == "no_w2v":
        extra = ["--w2v-path", str(tmp_path / "missing.pt")]
        match = "--w2v-path.*not found"
    elif case == "not_w2v":
        (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
        extra = ["--w2v-path", str(tmp_path / "junk.pt")]
        match = "--w2v-path"
    elif case == "finetuned_w2v":
        save = tmp_path / "first"
        assert train(data, save, "--max-update", "1", "--validate-after-updates", "0") == 0
        extra = ["--w2v-path", str(save / "checkpoint_last.pt")]
        match = "is a fine-tuned"
    else:
        extra = ["--arch", "wav2vec2"]
        match = "wav2vec_ctc"
    capsys.readouterr()
    assert train(data, tmp_path / "ck", *extra) != 0
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err


def test_no_validation_before_validate_after_updates(tmp_path):
    """fairseq validates only from --validate-after-updates on: no metrics, no checkpoint_best.pt before."""
    data = make_data(tmp_path)
    save = tmp_path / "va"
    assert train(data, save, "--validate-after-updates", "4", "--max-update", "2") == 0
    assert not (save / "checkpoint_best.pt").exists()
    assert all("loss" not in h for h in history(save) if h["split"] == "valid")
    assert train(data, save, "--validate-after-updates", "4", "--max-update", "4") == 0  # resumes to 4
    best = read(save / "checkpoint_best.pt")
    assert best["optimizer_history"][-1]["num_updates"] == 4 and best["extra_state"]["best"] is not None


@pytest.mark.parametrize("name", ["base_10m", "base_1h", "base_10h", "base_100h", "base_960h"])
def test_every_recipe_reads_as_its_values(name):
    """--config-name RECIPE: the parsed flags carry the shipped recipe's values (finetune_recipes.PRESETS, proven
    equal to fairseq's yaml files in test_wav2vec2_finetune.py)."""
    import argparse

    from s3prl.wav2vec2.finetune_recipes import preset
    from s3prl.wav2vec2.train import add_arguments, from_hydra
    from s3prl.wav2vec2.train_finetune import ft_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = from_hydra(parser.parse_args(["--config-name", name, "task.data=/d", "model.w2v_path=/w.pt"]))
    r = preset(name)
    cfg = ft_config(args)
    for key, value in r["model"].items():
        if key != "_name":
            assert getattr(cfg, key) == value, key
    assert cfg.sentence_avg is True and cfg.zero_infinity is True
    assert float(args.lr) == r["optimization"]["lr"][0] and args.max_update == r["optimization"]["max_update"]
    assert args.update_freq == r["optimization"].get("update_freq", (1,))[0]
    assert (args.lr_scheduler, args.final_lr_scale, args.best_checkpoint_metric) == ("tri_stage", 0.05, "wer")
    assert args.valid_subset == "dev_other" and args.max_tokens == 3200000 and args.w2v_path == "/w.pt"
    assert args.validate_after_updates == r["dataset"].get("validate_after_updates", 0)
    assert args.save_interval_updates == r["checkpoint"].get("save_interval_updates", 0)
