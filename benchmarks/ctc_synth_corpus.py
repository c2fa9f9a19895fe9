"""Learning evidence for the CTC tasks (PR, ASR, SF) on a synthesized corpus of over an hour, plus real recordings.

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    nice -n 10 .venv/bin/python benchmarks/ctc_synth_corpus.py OUTDIR [--stage corpus|synth|real|all]

1. ``corpus``: with espeak-ng, English sentences drawn from a fixed grammar (12 templates over 257 words, all in
   the CMU dictionary) in the LibriSpeech layout: ``train-clean-100`` (12 voices), ``dev-clean`` (3 other
   voices), ``test-clean`` (3 more voices: accent + voice variant pairs never heard in training, and variants
   never used in training); each utterance has its own speed, pitch and white-noise SNR. The same generator
   makes an Audio-SNIPS-style slot-filling corpus (``train/ valid/ test/``, ``all.iob.snips.txt``,
   ``slots.txt``; 7 intents, 10 slot types) whose speakers carry the original's voice names (8 / 4 / 4), so
   the ``ctc_snips`` reader needs no option. Test sentences never occur in training.
2. ``synth``: trains ``ctc_libriphone``, ``asr`` and ``ctc_snips`` on ``fbank`` and on ``mfcc`` with the runner,
   in process, exactly as ``s3prl downstream train -u UPSTREAM -d TASK`` (small BLSTM head via ``task.model``,
   CPU), next to the same run stopped after 1 step (untrained head). ASR is then decoded greedily and with a
   3-gram of the TRAINING transcripts only (``s3prl lm build`` + ``task.decoder``): with the original's decoder
   defaults, and with (lm_weight, word_score) picked on the dev split (``lm_tune``). docs/ctc_tasks.md
   ("Learning") has the numbers, and how SF was resumed to 600 steps with ``s3prl downstream train -e``.
3. ``real``: ``../shared/data/librispeech_test_other_mini`` (10 real speakers, official transcripts) split by
   speaker (6 train / 2 dev / 2 test), PR and ASR through ``downstream train`` + ``evaluate`` (greedy and LM):
   far too little data to learn from; a pipeline check on real audio.

Everything is written under OUTDIR; ``OUTDIR/results.json`` collects the numbers. Finished runs are reused
(delete a run folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from s3prl.cli import main as s3prl
from s3prl.downstream.demo import add_noise, find_espeak

# ------------------------------------------------------------------------------------------------
# the grammar (every word is in the CMU dictionary, checked at generation)
# ------------------------------------------------------------------------------------------------

WORDS = {
    "name": "JOHN MARY PETER SARAH DAVID ANNA JAMES EMMA ROBERT LUCY THOMAS ALICE HENRY GRACE GEORGE CLARA "
            "WILLIAM HELEN ARTHUR MARTHA EDWARD JANE CHARLES RUTH FRANK ROSE SAMUEL EMILY WALTER NORA",
    "adj": "OLD YOUNG SMALL LARGE QUIET BRIGHT DARK HAPPY TIRED COLD WARM GREEN RED BLUE WHITE HEAVY STRANGE "
           "GENTLE ANGRY CLEVER EMPTY BUSY LONELY HUNGRY WOODEN SILVER GOLDEN NARROW DISTANT FAMOUS",
    "noun": "FARMER DOCTOR TEACHER SOLDIER SAILOR CHILD KING QUEEN MERCHANT BAKER STRANGER FRIEND GIRL BOY "
            "WOMAN MAN PRIEST HUNTER FISHERMAN PAINTER LAWYER STUDENT WRITER SINGER DRIVER GUARD SERVANT "
            "CAPTAIN NURSE PRINCE",
    "obj": "LETTER BOOK BASKET LAMP CHAIR TABLE BOX KEY CUP COAT HAT RING BOTTLE CANDLE MAP PICTURE WINDOW "
           "DOOR BLANKET PENCIL BREAD APPLE FLOWER STONE ROPE BELL CLOCK MIRROR SHOE KNIFE BLUE",
    "place": "GARDEN MARKET RIVER FOREST VILLAGE CHURCH HARBOR KITCHEN LIBRARY STATION CASTLE BRIDGE HILL "
             "FIELD SCHOOL HOSPITAL OFFICE FARM MOUNTAIN VALLEY TOWER CITY ISLAND BEACH STREET SHOP HOUSE "
             "PALACE CELLAR MILL",
    "vi": "WALKED SLEPT WAITED SANG LAUGHED DANCED WORKED STAYED SAT CRIED SMILED ARRIVED RESTED PRAYED "
          "SHOUTED",
    "adv": "SLOWLY QUICKLY QUIETLY CAREFULLY SUDDENLY HAPPILY ALONE AGAIN EARLY LATE",
    "time": "YESTERDAY TODAY TONIGHT MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY SUNDAY",
    "loc": "IN NEAR BEHIND BESIDE INSIDE",
    "num": "TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN TWELVE",
}
WORDS = {k: v.split() for k, v in WORDS.items()}
WORDS["obj"].remove("BLUE")
# transitive verbs: (past, base)
VERBS = [tuple(p.split("/")) for p in (
    "FOUND/FIND CARRIED/CARRY BROUGHT/BRING TOOK/TAKE SAW/SEE LEFT/LEAVE BOUGHT/BUY SOLD/SELL LOST/LOSE HID/HIDE "
    "DROPPED/DROP OPENED/OPEN CLOSED/CLOSE PAINTED/PAINT CLEANED/CLEAN MENDED/MEND WATCHED/WATCH MOVED/MOVE "
    "WANTED/WANT KEPT/KEEP").split()]
TEMPLATES = (
    "THE {adj} {noun} {vt} THE {obj} {loc} THE {place}",
    "{name} {vi} {loc} THE {place} ON {time}",
    "{name} GAVE THE {noun} A {adj} {obj}",
    "ON {time} THE {noun} {vi} {adv}",
    "{name} AND {name} {vt} THE {adj} {obj}",
    "WHERE IS THE {adj} {obj} THAT {name} {vt}",
    "THE {noun} SAID THAT THE {place} WAS VERY {adj}",
    "{name} {vi} {adv} AT THE {place}",
    "PLEASE {vb} THE {obj} TO THE {place} BEFORE {time}",
    "THE {obj} WAS {loc} THE {adj} {obj} IN THE {place}",
    "DID {name} {vb} THE {obj} ON {time}",
    "THE {noun} HAD {num} {adj} {obj} IN THE {place}",
)


def sentence(rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    out = []
    for part in template.split():
        if part.startswith("{"):
            key = part[1:-1]
            if key in ("vt", "vb"):
                out.append(rng.choice(VERBS)[0 if key == "vt" else 1])
            else:
                out.append(rng.choice(WORDS[key]))
        else:
            out.append(part)
    return " ".join(out)


# SNIPS-style intents: (intent, template); {slot} is filled from SLOT_VALUES and tagged with the slot name
SLOT_VALUES = {
    "artist": ["TAYLOR SWIFT", "ELVIS PRESLEY", "THE BEATLES", "MILES DAVIS", "BOB DYLAN", "NINA SIMONE",
               "JOHNNY CASH", "ARETHA FRANKLIN", "FRANK SINATRA", "DAVID BOWIE", "ADELE", "MADONNA"],
    "genre": ["JAZZ", "ROCK", "CLASSICAL", "BLUES", "FOLK", "HIP HOP", "COUNTRY", "REGGAE"],
    "room": ["KITCHEN", "BEDROOM", "LIVING ROOM", "BATHROOM", "OFFICE", "GARAGE", "DINING ROOM", "HALLWAY"],
    "city": ["PARIS", "LONDON", "BERLIN", "TOKYO", "CHICAGO", "BOSTON", "MADRID", "DUBLIN", "SEATTLE", "ROME",
             "NEW YORK", "SAN FRANCISCO"],
    "timeRange": ["TOMORROW", "TONIGHT", "THIS WEEKEND", "NEXT MONDAY", "THIS AFTERNOON", "ON FRIDAY",
                  "NEXT WEEK", "IN THE MORNING"],
    "playlist": ["ROAD TRIP", "WORKOUT", "CHILL EVENING", "SUMMER HITS", "STUDY", "PARTY", "SUNDAY MORNING"],
    "party_size_number": ["TWO", "THREE", "FOUR", "FIVE", "SIX", "EIGHT", "TEN"],
    "object_name": ["THE HOBBIT", "MOBY DICK", "DRACULA", "EMMA", "ULYSSES", "THE ODYSSEY", "JANE EYRE",
                    "LITTLE WOMEN"],
    "rating_value": ["ONE", "TWO", "THREE", "FOUR", "FIVE"],
    "movie_name": ["STAR WARS", "JAWS", "ROCKY", "TITANIC", "ALIEN", "CASABLANCA", "VERTIGO", "PSYCHO"],
}
INTENTS = (
    ("PlayMusic", "PLAY {artist} IN THE {room}"),
    ("PlayMusic", "PLAY SOME {genre} MUSIC IN THE {room}"),
    ("GetWeather", "WHAT IS THE WEATHER IN {city} {timeRange}"),
    ("GetWeather", "WILL IT RAIN IN {city} {timeRange}"),
    ("AddToPlaylist", "ADD {artist} TO MY {playlist} PLAYLIST"),
    ("BookRestaurant", "BOOK A TABLE FOR {party_size_number} IN {city} {timeRange}"),
    ("RateBook", "GIVE {object_name} {rating_value} STARS"),
    ("SearchScreeningEvent", "WHEN IS {movie_name} PLAYING IN {city}"),
    ("SearchCreativeWork", "FIND THE BOOK {object_name}"),
)


def snips_sentence(rng: random.Random) -> tuple[list[str], list[str], str]:
    """(words, tags, intent): tags are slot names or ``O``, one per word."""
    intent, template = rng.choice(INTENTS)
    words, tags = [], []
    for part in template.split():
        if part.startswith("{"):
            value = rng.choice(SLOT_VALUES[part[1:-1]]).split()
            words += value
            tags += [part[1:-1]] * len(value)
        else:
            words.append(part)
            tags.append("O")
    return words, tags, intent


# ------------------------------------------------------------------------------------------------
# voices: 20 espeak-ng accent + variant pairs; dev / test variants never occur in training
# ------------------------------------------------------------------------------------------------

TRAIN_VOICES = ("en-us+m1", "en-gb+f1", "en-gb-scotland+m2", "en-gb-x-gbclan+f2", "en-gb-x-rp+m3",
                "en-gb-x-gbcwmd+f3", "en-029+m4", "en-us-nyc+f1", "en-us+f2", "en-gb+m2", "en-gb-x-rp+f3",
                "en-029+m1")
DEV_VOICES = ("en-gb-scotland+f4", "en-us-nyc+m5", "en-gb-x-gbclan+m8", "en-029+f4")
TEST_VOICES = ("en-us+f5", "en-gb-x-gbcwmd+m6", "en-gb-x-rp+m7", "en-us-nyc+m7")
LIBRI_SPLITS = (("train-clean-100", TRAIN_VOICES, 115), ("dev-clean", DEV_VOICES[:3], 40),
                ("test-clean", TEST_VOICES[:3], 50))
SNIPS_NAMES = (("train", ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"), 110),
               ("valid", ("Aditi", "Amy", "Geraint", "Nicole"), 25),
               ("test", ("Brian", "Emma", "Raveena", "Russell"), 30))


def _speak(exe: str, voice: str, text: str, path: Path, rng: random.Random) -> tuple | None:
    speed, pitch, snr = rng.randint(125, 195), rng.randint(25, 75), rng.uniform(10.0, 30.0)
    if path.is_file():  # the draws above happen anyway: a resumed synthesis gives the same corpus
        return None
    raw = path.with_name(path.stem + ".espeak.wav")
    return [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text.lower()], raw, path, snr


def _run_jobs(jobs: list) -> None:
    def one(job):
        cmd, raw, path, snr = job
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {' '.join(cmd)}\n{done.stderr}")
        add_noise(raw, path, snr)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, jobs))


def make_librispeech(root: Path, seed: int = 0) -> Path:
    from s3prl.text import load_lexicon

    lexicon = load_lexicon(None)
    vocab = {w for ws in WORDS.values() for w in ws} | {w for p in VERBS for w in p} | {
        w for t in TEMPLATES for w in t.split() if not w.startswith("{")}
    missing = sorted(w for w in vocab if w not in lexicon)
    if missing:
        raise SystemExit(f"words missing from the CMU dictionary: {missing}")
    exe, rng, jobs, seen = find_espeak(), random.Random(seed), [], set()
    for i, (subset, voices, per_voice) in enumerate(LIBRI_SPLITS):
        for v, voice in enumerate(voices):
            spk, chapter = 1000 + 10 * i + v, 1
            folder = root / subset / str(spk) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            lines = []
            for u in range(per_voice):
                text = sentence(rng)
                while subset != "train-clean-100" and text in seen:  # held-out sentences too
                    text = sentence(rng)
                if subset == "train-clean-100":
                    seen.add(text)
                uid = f"{spk}-{chapter}-{u:04d}"
                lines.append(f"{uid} {text}")
                job = _speak(exe, voice, text, folder / f"{uid}.wav", rng)
                if job:
                    jobs.append(job)
            (folder / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    (root / "voices.json").write_text(json.dumps({s: {1000 + 10 * i + v: voice for v, voice in enumerate(vs)}
                                                  for i, (s, vs, _) in enumerate(LIBRI_SPLITS)}, indent=1))
    _run_jobs(jobs)
    return root


def make_snips(root: Path, seed: int = 1) -> Path:
    exe, rng, jobs, lines = find_espeak(), random.Random(seed), [], []
    voices = {"train": TRAIN_VOICES[:8], "valid": DEV_VOICES, "test": TEST_VOICES}
    train_texts = set()
    for split, names, per_voice in SNIPS_NAMES:
        (root / split).mkdir(parents=True, exist_ok=True)
        for name, voice in zip(names, voices[split]):
            for u in range(per_voice):
                words, tags, intent = snips_sentence(rng)
                while split != "train" and " ".join(words) in train_texts:
                    words, tags, intent = snips_sentence(rng)
                if split == "train":
                    train_texts.add(" ".join(words))
                uid = f"{name}-snips-{split}-{u:04d}"
                lines.append(f"{uid} BOS {' '.join(words)} EOS\tO {' '.join(tags)} {intent}")
                job = _speak(exe, voice, " ".join(words), root / split / f"{uid}.wav", rng)
                if job:
                    jobs.append(job)
    (root / "all.iob.snips.txt").write_text("\n".join(lines) + "\n")
    (root / "slots.txt").write_text("O\n" + "\n".join(SLOT_VALUES) + "\n")
    (root / "voices.json").write_text(json.dumps({n: v for split, names, _ in SNIPS_NAMES
                                                  for n, v in zip(names, voices[split])}, indent=1))
    _run_jobs(jobs)
    return root


def corpus_stats(root: Path) -> dict:
    import soundfile

    out = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = list(sub.rglob("*.wav"))
        out[sub.name] = {"utterances": len(files),
                         "minutes": round(sum(soundfile.info(str(f)).duration for f in files) / 60, 2)}
    return out


# ------------------------------------------------------------------------------------------------
# training and evaluation through the CLI, in process
# ------------------------------------------------------------------------------------------------

HEAD = ("task.model={project_dim: 128, select: RNNs, module: LSTM, bidirection: true, dim: [128, 128], "
        "dropout: [0.1, 0.1], layer_norm: [false, false], proj: [false, false], sample_rate: [1, 1], "
        "sample_style: concat, total_rate: 320}")  # 2 frames of 10 ms concatenated: half the CPU
TASKS = (("ctc_libriphone", "libri", "per"), ("asr", "libri", "wer"), ("ctc_snips", "snips", "slot_type_f1"))


def train(task: str, upstream: str, root: Path, out: Path, steps: int, lr: float = 2e-3, extra: str = "") -> Path:
    exp = out / f"{task}_{upstream}_{steps}"
    opts = (f"task.root={root},,data.cache_dir={out / 'cache'},,data.num_workers=0,,train.total_steps={steps},,"
            f"train.eval_step={max(1, steps // 2)},,train.save_step={max(1, steps // 2)},,train.log_step=50,,"
            f"train.gradient_accumulate_steps=1,,train.lr={lr},,data.batch_seconds=20,,{HEAD}{extra}")
    if not (exp / "results.json").is_file():
        cmd = ["downstream", "train", "-u", upstream, "-d", task, "-p", str(exp), "-o", opts]
        print("s3prl " + " ".join(cmd[:-1]) + f" '{opts}'", flush=True)
        assert s3prl(cmd) == 0
    return exp


def metrics(exp: Path, name: str = "results.json") -> dict:
    return json.loads((exp / name).read_text())["metrics"]


def build_lm(texts: list[Path], out: Path) -> tuple[Path, Path]:
    arpa, lexicon = out / "lm3.arpa", out / "lexicon.lst"
    out.mkdir(parents=True, exist_ok=True)
    if not arpa.is_file():
        assert s3prl(["lm", "build", *map(str, texts), "--with-ids", "-o", str(arpa), "--order", "3",
                      "--lexicon", str(lexicon)]) == 0
    return arpa, lexicon


def lm_evaluate(exp: Path, arpa: Path, lexicon: Path) -> dict:
    """The test split decoded with the lexicon + KenLM beam search; CER of both word strings from the .ark files."""
    if not (exp / "test-LM-hyp.ark").is_file():
        assert s3prl(["downstream", "evaluate", "-e", str(exp), "-t", "test", "-o",
                      f"task.decoder={{kenlm_model: {arpa}, lexicon: {lexicon}}}"]) == 0
    lm = metrics(exp, "results_test.json")
    return {"wer_lm": lm["wer"], "cer_lm": 100 * ark_cer(exp, "LM"), "cer_greedy": 100 * ark_cer(exp, "noLM")}


LM_GRID = [(2.0, -1.0), (2.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.0), (0.5, 1.0)]  # (lm_weight, word_score)


def lm_tune(exp: Path, arpa: Path, lexicon: Path, beam: int = 5) -> dict:
    """(lm_weight, word_score) picked by the DEV WER over ``LM_GRID``, then the test split decoded with it.
    Each setting decodes a copy of ``dev-best.ckpt`` in its own folder (evaluate writes beside the checkpoint)."""
    import shutil

    dev = {}
    for weight, score in LM_GRID:
        folder = exp / f"lm_w{weight}_s{score}"
        folder.mkdir(exist_ok=True)
        if not (folder / "dev-best.ckpt").is_file():
            shutil.copy(exp / "dev-best.ckpt", folder / "dev-best.ckpt")
        opts = (f"task.decoder={{kenlm_model: {arpa}, lexicon: {lexicon}, beam: {beam}, lm_weight: {weight}, "
                f"word_score: {score}}}")
        if not (folder / "results_dev.json").is_file():
            assert s3prl(["downstream", "evaluate", "-e", str(folder / "dev-best.ckpt"), "-t", "dev", "-o", opts]) == 0
        dev[(weight, score)] = (metrics(folder, "results_dev.json")["wer"], folder, opts)
    (weight, score), (dev_wer, folder, opts) = min(dev.items(), key=lambda kv: kv[1][0])
    if not (folder / "results_test.json").is_file():
        assert s3prl(["downstream", "evaluate", "-e", str(folder / "dev-best.ckpt"), "-t", "test", "-o", opts]) == 0
    test = metrics(folder, "results_test.json")
    out = {"lm_weight": weight, "word_score": score, "beam": beam, "dev_wer_lm": dev_wer,
           "dev_wer_grid": {f"{w},{s}": v[0] for (w, s), v in dev.items()},
           "wer_lm": test["wer"], "cer_lm": 100 * ark_cer(folder, "LM")}
    (exp / "lm_tuned.json").write_text(json.dumps(out, indent=1))
    return out


def ark_cer(exp: Path, kind: str) -> float:
    from s3prl.metrics import error_rate

    def read(path):
        return dict((line.split(" ", 1) + [""])[:2] for line in path.read_text().splitlines())

    hyp, ref = read(exp / f"test-{kind}-hyp.ark"), read(exp / f"test-{kind}-ref.ark")
    return error_rate.cer([hyp[u].strip() for u in ref], [ref[u].strip() for u in ref])


STEPS = {"ctc_libriphone": 300, "asr": 600, "ctc_snips": 250}


def run_synth(out: Path, upstreams: list[str], steps: dict) -> dict:
    roots = {"libri": out / "librispeech_synth", "snips": out / "snips_synth"}
    arpa, lexicon = build_lm(sorted((roots["libri"] / "train-clean-100").rglob("*.trans.txt")), out)
    results = {}
    for upstream in upstreams:
        for task, corpus, metric in TASKS:
            base = metrics(train(task, upstream, roots[corpus], out, 1))
            exp = train(task, upstream, roots[corpus], out, steps[task])
            row = {"untrained_1_step": base, "trained": metrics(exp), "steps": steps[task]}
            if task == "asr":
                row["lm"] = lm_evaluate(exp, arpa, lexicon)
                row["lm_tuned"] = lm_tune(exp, arpa, lexicon)
            results.setdefault(upstream, {})[task] = row
            print(f"{upstream} {task}: test {metric} {base[metric]:.4f} (1 step) -> {row['trained'][metric]:.4f} "
                  f"({steps[task]} steps) {row.get('lm', '')}", flush=True)
            (out / f"results_{upstream}.json").write_text(json.dumps(results, indent=1))
    return results


REAL_SPLIT = {"train": ["1688", "1998", "2033", "2414", "2609", "3005"], "dev": ["3080", "3331"],
              "test": ["367", "533"]}


def run_real(data: Path, out: Path, steps: int) -> dict:
    """Speaker-disjoint split of librispeech_test_other_mini; PR (skip_oov) and ASR on fbank, greedy + LM."""
    split = (f",,task.train=[{','.join(REAL_SPLIT['train'])}],,task.dev=[{','.join(REAL_SPLIT['dev'])}],,"
             f"task.test=[{','.join(REAL_SPLIT['test'])}]")
    texts = sorted(p for s in REAL_SPLIT["train"] for p in (data / s).rglob("*.trans.txt"))
    arpa, lexicon = build_lm(texts, out)
    results = {"split": REAL_SPLIT}
    for task, extra in (("ctc_libriphone", ",,task.skip_oov=true"), ("asr", "")):
        base = metrics(train(task, "fbank", data, out, 1, extra=split + extra))
        exp = train(task, "fbank", data, out, steps, extra=split + extra)
        results[task] = {"untrained_1_step": base, "trained": metrics(exp), "steps": steps}
        if task == "asr":
            results[task]["lm"] = lm_evaluate(exp, arpa, lexicon)
        print(f"real {task}: {results[task]}", flush=True)
        (out / "results_real.json").write_text(json.dumps(results, indent=1))
    return results


def report(out: Path) -> dict:
    """``OUTDIR/results.json``: the corpus sizes and every run's numbers."""
    data = {"corpus": {k: corpus_stats(out / k) for k in ("librispeech_synth", "snips_synth")}}
    for path in sorted(out.glob("results_*.json")):  # {upstream: {task: ...}}, one file per process
        data.update(json.loads(path.read_text()))
    for upstream, rows in data.items():  # the LM weights tuned on dev, also where a process ran them later
        asr = rows.get("asr") if isinstance(rows, dict) else None
        if asr and (out / f"asr_{upstream}_{asr['steps']}" / "lm_tuned.json").is_file():
            asr["lm_tuned"] = json.loads((out / f"asr_{upstream}_{asr['steps']}" / "lm_tuned.json").read_text())
        sf, longer = rows.get("ctc_snips") if isinstance(rows, dict) else None, out / f"ctc_snips_{upstream}_600"
        if sf and (longer / "results.json").is_file():  # SF resumed from its last states to 600 steps (docs)
            rows["ctc_snips_600"] = {**sf, "trained": metrics(longer), "steps": 600}
    if (out / "real" / "results_real.json").is_file():
        data["real"] = json.loads((out / "real" / "results_real.json").read_text())
    (out / "results.json").write_text(json.dumps(data, indent=1))
    (out / "results.md").write_text(markdown(data))
    return data


ROWS = (("ctc_libriphone", "PER % (PR)", lambda m: 100 * m["per"], None),
        ("asr", "WER % greedy (ASR)", lambda m: m["wer"], None),
        ("asr", "WER % 3-gram LM (ASR)", None, "wer_lm"),
        ("asr", "WER % 3-gram LM, weights picked on dev (ASR)", None, "tuned:wer_lm"),
        ("asr", "CER % greedy (ASR)", None, "cer_greedy"),
        ("asr", "CER % 3-gram LM (ASR)", None, "cer_lm"),
        ("asr", "CER % 3-gram LM, weights picked on dev (ASR)", None, "tuned:cer_lm"),
        ("asr", "UER % greedy (ASR: characters and word ends)", lambda m: m["uer"], None),
        ("ctc_snips", "slot-type F1 % (SF)", lambda m: 100 * m["slot_type_f1"], None),
        ("ctc_snips", "slot-value CER % (SF)", lambda m: 100 * m["slot_value_cer"], None),
        ("ctc_snips", "CER % (SF, chars + slot markers)", lambda m: 100 * m["cer"], None),
        ("ctc_snips_600", "slot-type F1 % (SF, resumed to 600 steps)", lambda m: 100 * m["slot_type_f1"], None),
        ("ctc_snips_600", "slot-value CER % (SF, 600 steps)", lambda m: 100 * m["slot_value_cer"], None),
        ("ctc_snips_600", "CER % (SF, 600 steps)", lambda m: 100 * m["cer"], None))


def markdown(data: dict) -> str:
    """The results table: test split (held-out voices), untrained (1 step) and trained, per upstream."""
    ups = [u for u in ("fbank", "mfcc") if u in data]
    head = "| test metric (held-out voices) | " + " | ".join(
        f"{u}: 1 step | {u}: trained" for u in ups) + " |\n|---|" + "---|---|" * len(ups) + "\n"
    lines = []
    for task, name, get, lm_key in ROWS:
        cells = []
        for u in ups:
            row = data[u].get(task)
            if row is None:
                cells += ["", ""]
            elif lm_key:
                lm = row.get("lm_tuned", {}) if lm_key.startswith("tuned:") else row["lm"]
                value = lm.get(lm_key.split(":")[-1])
                cells += ["", "" if value is None else f"{value:.1f} ({row['steps']} steps)"]
            else:
                cells += [f"{get(row['untrained_1_step']):.1f}", f"{get(row['trained']):.1f} ({row['steps']} steps)"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = head + "\n".join(lines) + "\n"
    real = data.get("real")
    if real and "asr" in real:
        pr, asr = real.get("ctc_libriphone"), real["asr"]
        text += ("\n| real test-other (2 unseen speakers), fbank | 1 step | trained |\n|---|---|---|\n"
                 + (f"| PER % (PR) | {100 * pr['untrained_1_step']['per']:.1f} | {100 * pr['trained']['per']:.1f} "
                    f"({pr['steps']} steps) |\n" if pr else "")
                 + f"| WER % greedy (ASR) | {asr['untrained_1_step']['wer']:.1f} | {asr['trained']['wer']:.1f} |\n"
                 f"| WER % 3-gram LM (ASR) | | {asr['lm']['wer_lm']:.1f} |\n"
                 f"| CER % greedy / LM (ASR) | | {asr['lm']['cer_greedy']:.1f} / {asr['lm']['cer_lm']:.1f} |\n")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--stage", choices=("corpus", "synth", "real", "report", "all"), default="all")
    parser.add_argument("--upstreams", nargs="+", default=["fbank", "mfcc"])
    for task, default in STEPS.items():
        parser.add_argument(f"--steps-{task.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--real-steps", type=int, default=150)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("S3PRL_TEST_DATA", "../shared/data")))
    args = parser.parse_args()
    out = args.outdir.resolve()
    if args.stage in ("corpus", "all"):
        make_librispeech(out / "librispeech_synth")
        make_snips(out / "snips_synth")
        build_lm(sorted((out / "librispeech_synth" / "train-clean-100").rglob("*.trans.txt")), out)
        print(json.dumps({k: corpus_stats(out / k) for k in ("librispeech_synth", "snips_synth")}), flush=True)
    if args.stage in ("synth", "all"):
        steps = {task: getattr(args, f"steps_{task}") for task in STEPS}
        run_synth(out, args.upstreams, steps)
    if args.stage in ("real", "all"):
        run_real((args.data / "librispeech_test_other_mini").resolve(), out / "real", args.real_steps)
    if args.stage in ("report", "all"):
        print(json.dumps(report(out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
