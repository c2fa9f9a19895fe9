"""Real-data run of ``s3prl wav2vec2 train --task audio_finetuning --arch wav2vec_ctc`` (CTC fine-tuning): the
seed's fine-tuning command, scaled down, on /work/shared/data's librispeech_test_other_mini (100 utterances,
12.8 min) from a tiny pre-trained wav2vec 2.0, then ``s3prl wav2vec2 infer`` with viterbi and with a KenLM.

    S3PRL_TEST_DATA=../shared/data OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/w2v_finetune_real.py \\
        [--w2v-path /tmp/w2v_real/ck/checkpoint_last.pt] [--updates 300] [--work /tmp/w2v_ft_real] [--ljspeech] \\
        [--png docs/wav2vec2_finetune_loss.png]

Steps (all through the command line): ``s3prl wav2vec2 manifest`` (10% valid) and ``labels`` (train/valid
.ltr/.wrd + dict.ltr.txt); ``wav2vec2 train`` with the seed's flags except the scale (below); ``wav2vec2 infer``
on the valid split with ``checkpoint_best.pt``: viterbi, then kenlm with a 3-gram + lexicon from
``s3prl lm build`` over the TRAIN transcripts (so most valid words are out of its lexicon).
--ljspeech: the 32 LJSpeech clips (16 kHz copies in the work folder, their normalized transcripts upper-cased,
letters and apostrophes kept) are added to the TRAIN split (the valid split stays LibriSpeech).
--w2v-path: a pre-trained tiny model, e.g. the one benchmarks/w2v_pretrain_real.py leaves in /tmp/w2v_real/ck;
without one, that script is run first (--updates 200).
Expect ~100% WER: 90 utterances cannot teach a recogniser; the run proves the pipeline on real recordings.

--synth DIR: fine-tune on SYNTHESIZED speech instead, the LibriSpeech-layout corpus that
``benchmarks/ctc_synth_corpus.py OUTDIR --stage corpus`` writes to OUTDIR/librispeech_synth (espeak-ng, 62 min of
train-clean-100 from 12 voices; dev-clean and test-clean from voices never used in training). ``manifest`` (with
``--valid-percent 0``, once per split; dev-clean's train.tsv becomes valid.tsv and test-clean's test.tsv, as
fairseq's README says for dev/test sets) and ``labels`` for the three splits; training validates on dev-clean,
``infer`` decodes test-clean; the 3-gram is built from train.wrd only.
--random-init: the control: fine-tune from a freshly initialised model with --w2v-path's architecture (fairseq's
initialisation, no pre-training) instead of the pre-trained weights.
--max-tokens N: samples per batch (default 400000). --set=--FLAG=VALUE: replace (or add) a flag of the command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

# the seed's fine-tuning command (examples/wav2vec/README.md); SCALE replaces values for a tiny CPU run
SEED = ("--post-process letter --valid-subset valid --no-epoch-checkpoints --best-checkpoint-metric wer "
        "--num-workers 4 --max-update 80000 --sentence-avg --task audio_finetuning --arch wav2vec_ctc --labels ltr "
        "--apply-mask --mask-selection static --mask-other 0 --mask-length 10 --mask-prob 0.5 --layerdrop 0.1 "
        "--mask-channel-selection static --mask-channel-other 0 --mask-channel-length 64 --mask-channel-prob 0.5 "
        "--zero-infinity --feature-grad-mult 0.0 --freeze-finetune-updates 10000 --validate-after-updates 10000 "
        "--optimizer adam --adam-betas (0.9,0.98) --adam-eps 1e-08 --lr 2e-05 --lr-scheduler tri_stage "
        "--warmup-steps 8000 --hold-steps 32000 --decay-steps 40000 --final-lr-scale 0.05 --final-dropout 0.0 "
        "--dropout 0.0 --activation-dropout 0.1 --criterion ctc --attention-dropout 0.0 --max-tokens 1280000 "
        "--seed 2337 --log-format json --log-interval 500 --ddp-backend no_c10d").split()


LM_GRID = [(2.0, -1.0), (2.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.0), (0.5, 1.0)]  # (lm-weight, word-score)


def scale(updates: int, max_tokens: int = 400000) -> dict:
    """The seed's schedule shrunk to ``updates`` (same 10/40/50 % stages, freeze and first validation at 1/8),
    a larger peak lr (a tiny model, few updates), channel masks of 8 (the tiny model has 64 channels, the
    seed's 64 would blank them all) and 400000-sample batches (25 s; the longest file is 22.8 s)."""
    return {"--max-update": updates, "--warmup-steps": updates // 10, "--hold-steps": updates * 4 // 10,
            "--decay-steps": updates - updates // 10 - updates * 4 // 10, "--freeze-finetune-updates": updates // 8,
            "--validate-after-updates": updates // 8, "--lr": "0.0005", "--mask-channel-length": 8,
            "--max-tokens": max_tokens, "--log-interval": 10}


def cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "s3prl.cli", *args], cwd=PROJECT, check=True, capture_output=True,
                         text=True)
    return out.stdout + out.stderr


def add_ljspeech(folder: Path, data: Path, work: Path) -> int:
    """Append the LJSpeech clips to ``data``'s train.tsv / .ltr / .wrd (paths relative to the manifest's root) and
    rewrite dict.ltr.txt from train.ltr; returns the number of clips added."""
    import soundfile

    from s3prl.audio import load_audio
    from s3prl.wav2vec2.labels import letters, write_dictionary

    out = work / "ljspeech16k"
    out.mkdir(parents=True, exist_ok=True)
    root = (data / "train.tsv").read_text().splitlines()[0]
    rows, wrd, ltr = [], [], []
    for line in (folder / "transcripts.psv").read_text(encoding="utf-8").splitlines():
        name, _, text = line.partition("|")
        words = " ".join(re.sub(r"[^A-Z' ]+", " ", text.upper().replace("-", " ")).split())
        if not words:
            continue
        wav = out / f"{name}.wav"
        if not wav.exists():
            soundfile.write(str(wav), load_audio(folder / f"{name}.wav", 16000).numpy(), 16000, subtype="PCM_16")
        rows.append(f"{os.path.relpath(wav, root)}\t{soundfile.info(str(wav)).frames}\n")
        wrd.append(words + "\n")
        ltr.append(letters(words) + "\n")
    for suffix, lines in ((".tsv", rows), (".wrd", wrd), (".ltr", ltr)):
        with open(data / f"train{suffix}", "a", encoding="utf-8") as f:
            f.writelines(lines)
    write_dictionary([str(data / "train.ltr")], str(data / "dict.ltr.txt"))
    return len(rows)


def random_init(pretrained: Path, out: Path) -> None:
    """Write ``pretrained`` again with every weight re-drawn by fairseq's initialisation (same configuration and
    file layout): the no-pre-training control."""
    import torch

    from s3prl.wav2vec2.fairseq_init import init_like_fairseq
    from s3prl.wav2vec2.pretraining import Wav2Vec2PreTraining, fairseq_state_dict, from_fairseq

    ckpt = torch.load(pretrained, map_location="cpu", weights_only=False)
    loaded = from_fairseq(ckpt, str(pretrained))
    torch.manual_seed(0)
    fresh = init_like_fairseq(Wav2Vec2PreTraining(loaded.cfg, loaded.pcfg))
    state = fairseq_state_dict(fresh)
    assert set(state) == set(ckpt["model"]), "fresh model and checkpoint name different weights"
    ckpt["model"] = state
    torch.save(ckpt, out)


def prepare_synth(root: Path, data: Path) -> None:
    """Manifests and labels of the synthesized corpus, through the CLI: train (train-clean-100), valid
    (dev-clean) and test (test-clean) in ``data``."""
    for subset, name in (("train-clean-100", "train"), ("dev-clean", "valid"), ("test-clean", "test")):
        if not (root / subset).is_dir():
            raise SystemExit(f"no {subset} under {root}: run benchmarks/ctc_synth_corpus.py OUTDIR --stage corpus "
                             "and pass OUTDIR/librispeech_synth")
        dest = data if name == "train" else data / subset
        cli("wav2vec2", "manifest", str(root / subset), "--dest", str(dest), "--ext", "wav", "--valid-percent", "0",
            "--order", "sorted")
        if name != "train":
            (dest / "train.tsv").replace(data / f"{name}.tsv")
        cli("wav2vec2", "labels", str(data / f"{name}.tsv"), "--output-dir", str(data), "--output-name", name)


def result_cer(folder: Path) -> float:
    """CER of infer's ``hypo.word-*`` against ``ref.word-*`` (lines end with the ``(None-<id>)`` tag)."""
    from s3prl.metrics.error_rate import cer

    def lines(pattern: str) -> dict[str, str]:
        out = {}
        for line in next(folder.glob(pattern)).read_text().splitlines():
            text, _, tag = line.rpartition("(")
            out[tag] = " ".join(text.split())
        return out

    hyp, ref = lines("hypo.word-*"), lines("ref.word-*")
    return cer([hyp[k] for k in ref], [ref[k] for k in ref])


def plot(history: list[dict], png: Path, what: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if h["split"] == "train_inner"]
    valid = [h for h in history if h["split"] == "valid" and "loss" in h]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot([h["step"] for h in train], [h["loss"] for h in train], label="train CTC loss (bits/sentence)")
    axes[0].plot([h["step"] for h in valid], [h["loss"] for h in valid], "o-", label="valid CTC loss")
    axes[0].set_xlabel("update"), axes[0].legend()
    for key in ("uer", "wer"):
        axes[1].plot([h["step"] for h in valid], [h[key] for h in valid], "o-", label=f"valid {key.upper()} %")
    axes[1].set_xlabel("update"), axes[1].legend()
    fig.suptitle(f"s3prl wav2vec2 train --task audio_finetuning: tiny model, CTC on {what} (CPU)", fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=70)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--w2v-path", default="/tmp/w2v_real/ck/checkpoint_last.pt")
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--work", default="/tmp/w2v_ft_real")
    p.add_argument("--ljspeech", action="store_true", help="add the 32 LJSpeech clips to the train split")
    p.add_argument("--png", default=None, help="draw the loss / error-rate curves here")
    p.add_argument("--synth", type=Path, default=None,
                   help="fine-tune on the synthesized LibriSpeech-layout corpus in this folder")
    p.add_argument("--random-init", action="store_true", help="control: no pre-training (fresh weights)")
    p.add_argument("--max-tokens", type=int, default=400000)
    p.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                   help="replace a flag's value of the scaled seed command (or add the flag), e.g. "
                        "--set=--mask-prob=0.25; repeatable")
    p.add_argument("--lm-tune", action="store_true",
                   help="--synth: also decode the test split with (lm-weight, word-score) picked on valid")
    p.add_argument("--decode-only", action="store_true", help="reuse WORK/ck (a finished run): decode only")
    args = p.parse_args()
    shared = Path(os.environ.get("S3PRL_TEST_DATA", PROJECT.parent / "shared" / "data"))
    corpus = shared / "librispeech_test_other_mini"
    if not corpus.is_dir() and not args.synth:
        print(f"no librispeech_test_other_mini under {shared}: set S3PRL_TEST_DATA", file=sys.stderr)
        return 1
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pre = work / ("random_init.pt" if args.random_init else "pretrained.pt")  # one work folder, one kind of start
    if not pre.is_file():
        if not Path(args.w2v_path).is_file():
            subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "w2v_pretrain_real.py"), "--updates", "200",
                            "--work", str(work / "pre")], check=True, cwd=PROJECT)
            args.w2v_path = str(work / "pre" / "ck" / "checkpoint_last.pt")
        if args.random_init:
            random_init(Path(args.w2v_path), pre)
        else:
            shutil.copy(args.w2v_path, pre)
    data = work / "manifest"
    if args.synth:
        prepare_synth(args.synth.resolve(), data)
    else:
        cli("wav2vec2", "manifest", str(corpus), "--dest", str(data), "--ext", "flac", "--valid-percent", "0.1",
            "--seed", "1")
        for split in ("train", "valid"):
            cli("wav2vec2", "labels", str(data / f"{split}.tsv"), "--output-dir", str(data), "--output-name", split)
    test = "test" if args.synth else "valid"
    if args.ljspeech:
        print(f"added {add_ljspeech(shared / 'ljspeech_mini', data, work)} LJSpeech clips to the train split")
    save = work / "ck"
    if not args.decode_only:
        shutil.rmtree(save, ignore_errors=True)
    cmd = list(SEED)
    for flag, value in scale(args.updates, args.max_tokens).items():
        cmd[cmd.index(flag) + 1] = str(value)
    for change in args.set:
        flag, _, value = change.partition("=")
        if flag in cmd:
            cmd[cmd.index(flag) + 1] = value
        else:
            cmd += [flag, value]
    cmd = ["wav2vec2", "train", str(data), "--save-dir", str(save), "--w2v-path", str(pre), "--no-progress-bar", *cmd]
    print("command: s3prl " + " ".join(cmd), flush=True)
    started = time.perf_counter()
    if not args.decode_only:
        subprocess.run([sys.executable, "-m", "s3prl.cli", *cmd], check=True, cwd=PROJECT)
    seconds = time.perf_counter() - started
    history = [json.loads(line) for line in (save / "history.jsonl").read_text().splitlines()]
    train = [h for h in history if h["split"] == "train_inner"]
    valid = [h for h in history if h["split"] == "valid" and "loss" in h]
    print(f"{train[-1]['step']} of {args.updates} updates in {seconds:.0f} s; {len(train)} log lines")
    if args.png:
        what = "real read speech" if not args.synth else "SYNTHESIZED speech (espeak-ng)"
        plot(history, Path(args.png), what + (", no pre-training" if args.random_init else ""))
    for h in train[:3] + train[-3:]:
        print(f"  train update {h['step']}: loss {h['loss']:.3f} bits/sentence, lr {h['lr']:.2e}")
    first, last = train[: max(1, len(train) // 10)], train[-max(1, len(train) // 10):]
    mean = lambda rows: sum(r["loss"] for r in rows) / len(rows)  # noqa: E731
    print(f"  train loss, mean of the first / last 10% of log lines: {mean(first):.2f} -> {mean(last):.2f}")
    for h in valid:
        print(f"  valid update {h['step']}: loss {h['loss']:.3f}, uer {h['uer']:.1f}%, wer {h['wer']:.1f}%")
    best = save / "checkpoint_best.pt"
    out = cli("wav2vec2", "infer", str(data), "--path", str(best), "--gen-subset", test, "--w2l-decoder", "viterbi",
              "--results-path", str(work / "res_viterbi"), "--quiet", "--cpu")
    viterbi = re.search(r"WER: (\S+)", out).group(1)
    lm = work / "lm"
    lm.mkdir(exist_ok=True)
    cli("lm", "build", str(data / "train.wrd"), "-o", str(lm / "3gram.arpa"), "--order", "3", "--lexicon",
        str(lm / "lexicon.lst"))
    out_lm = cli("wav2vec2", "infer", str(data), "--path", str(best), "--gen-subset", test, "--w2l-decoder", "kenlm",
                 "--lm-model", str(lm / "3gram.arpa"), "--lexicon", str(lm / "lexicon.lst"), "--lm-weight", "2",
                 "--word-score", "-1", "--sil-weight", "0", "--results-path", str(work / "res_kenlm"), "--quiet",
                 "--cpu")
    kenlm = re.search(r"WER: (\S+)", out_lm).group(1)
    count = len((data / f"{test}.tsv").read_text().splitlines()) - 1
    print(f"infer on {test} ({count} utterances), checkpoint_best.pt: "
          f"viterbi WER {viterbi}%, kenlm (3-gram of the train transcripts, lm-weight 2, word-score -1) WER {kenlm}%")
    for name in ("res_viterbi", "res_kenlm"):
        print(f"  {name}: CER {100 * result_cer(work / name):.1f}% (characters of the word transcripts, spaces counted)")
    hyp = sorted((work / "res_viterbi").glob("hypo.word-*"))
    if hyp:
        print("  first viterbi hypotheses:", " / ".join(hyp[0].read_text().splitlines()[:3]))
    if args.lm_tune and test != "valid":
        # the seed's knobs suit a strong acoustic model; pick (lm-weight, word-score) on the valid split (dev-clean,
        # voices of neither train nor test), then decode the test split once with the pick
        def kenlm_wer(subset: str, weight: float, score: float, results: Path) -> float:
            out = cli("wav2vec2", "infer", str(data), "--path", str(best), "--gen-subset", subset, "--w2l-decoder",
                      "kenlm", "--lm-model", str(lm / "3gram.arpa"), "--lexicon", str(lm / "lexicon.lst"),
                      "--lm-weight", str(weight), "--word-score", str(score), "--sil-weight", "0", "--results-path",
                      str(results), "--quiet", "--cpu")
            return float(re.search(r"WER: (\S+)", out).group(1))

        dev = {(w, ws): kenlm_wer("valid", w, ws, work / "res_tune") for w, ws in LM_GRID}
        print("  kenlm WER on valid per (lm-weight, word-score):",
              {f"{w},{ws}": round(v, 1) for (w, ws), v in dev.items()})
        weight, score = min(dev, key=dev.get)
        tuned = kenlm_wer(test, weight, score, work / "res_kenlm_tuned")
        print(f"  kenlm on {test} with lm-weight {weight}, word-score {score} (picked on valid): WER {tuned:.1f}%, "
              f"CER {100 * result_cer(work / 'res_kenlm_tuned'):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
