"""Oracle side of the CTC tasks (PR, ASR, SF): run IN THE ORACLE VENV, writes tests/fixtures/oracle/ctc_parity.pt.

    O=../shared/tools/s3prl-oracle; PY=$(bash $O/setup.sh)
    $PY -m pip install --target /tmp/oracle_extra editdistance pandas python-dateutil pytz tzdata six --no-deps
    PYTHONPATH=/tmp/oracle_extra $PY tests/oracle/make_ctc_fixtures.py tests/fixtures/oracle/ctc_parity.pt

(The oracle venv lacks ``editdistance``, imported by the original ``ctc/metric.py`` and ``asr/expert.py``, and
``pandas``, imported by ``asr/dataset.py``; they go to a side folder so that the venv itself is not changed.)

What it records, all from the ORIGINAL s3prl 0.4.18 code:
* ``metrics``: the outputs of ``downstream/ctc/metric.py`` (cer, wer, per, slot_type_f1, slot_value_cer,
  slot_value_wer, slot_edit_f1_full/part) on seeded random hypothesis / reference pairs with slot markers, plus
  hand-written edge cases;
* ``text``: token ids of ``CharacterTextSlotEncoder`` (SF lines), ``WordTextEncoder`` (phonemes) and the ASR
  fairseq ``Dictionary`` on transcripts prepared by ``SequenceDataset._load_transcript``;
* ``experts``: for the ctc expert (PR: FrameLevel; SF: RNNs) and the asr expert (RNNs with the SUPERB options
  and with downsampling / layer norm / projection / GRU variants), the state dict, features, labels, the CTC
  loss and the decoded hypothesis / reference texts of one ``forward`` in eval mode;
* ``specaug``: inputs and outputs of ``downstream/specaug.SpecAug`` (ASR and SF settings) at fixed seeds;
* ``lm``: the words of the original ASR's KenLM + lexicon decoder (``W2lKenLMDecoder`` over flashlight-text) on
  noisy log-probabilities spelling (mis-spelled) texts, with a small hand-written bigram ARPA model and lexicon.

(``flashlight-text`` also goes to the side folder: ``pip install --target /tmp/oracle_extra --no-deps
flashlight-text``.)
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import types
from collections import defaultdict
from pathlib import Path

ORACLE_DIR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "s3prl-oracle"
sys.path.insert(0, os.environ.get("S3PRL_ORACLE_DIR", str(ORACLE_DIR)))
import oracle_env  # noqa: E402,F401  (threads, seeds, shims)
import torch  # noqa: E402

from s3prl.downstream.asr.dataset import SequenceDataset  # noqa: E402
from s3prl.downstream.asr.dictionary import Dictionary  # noqa: E402
from s3prl.downstream.asr.expert import DownstreamExpert as AsrExpert  # noqa: E402
from s3prl.downstream.ctc import metric  # noqa: E402
from s3prl.downstream.ctc.expert import DownstreamExpert as CtcExpert  # noqa: E402
from s3prl.downstream.ctc.text import CharacterTextSlotEncoder, WordTextEncoder  # noqa: E402
from s3prl.downstream.specaug import SpecAug  # noqa: E402

PHONEMES = ("SIL SPN AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH EH0 EH1 EH2 "
            "ER0 ER1 ER2 EY0 EY1 EY2 F G HH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG OW0 OW1 OW2 OY0 OY1 OY2 P R S SH "
            "T TH UH0 UH1 UH2 UW0 UW1 UW2 V W Y Z ZH").split()
CHARS = [" ", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "'"]
DICT_CHARS = list("|ETAONIHSRDLUMCWFGYPBVK'XJQZ")
SLOTS = ["city", "artist", "playlist", "music_item"]
SF_LINES = [
    "BOS PLAY SOME JAZZ EOS\tO O O music_item AddToPlaylist",
    "BOS ADD THE BEATLES TO MY ROAD TRIP PLAYLIST EOS\tO O artist artist O O playlist playlist playlist X",
    "BOS WEATHER IN NEW YORK & PARIS ? EOS\tO O O city city O city O Y",
    "BOS ROCK N ROLL EOS\tO music_item music_item music_item Z",
]
TRANSCRIPTS = ["HELLO WORLD", "IT'S A  TEST", "ZEBRA QUIZ JUMPS"]


def random_text(rng: random.Random, slots: bool) -> str:
    words = []
    for _ in range(rng.randint(0, 6)):
        word = "".join(rng.choice("ABCDE'") for _ in range(rng.randint(1, 4)))
        if slots and rng.random() < 0.35:
            slot = rng.choice(SLOTS[:3])
            end = slot if rng.random() < 0.85 else rng.choice(SLOTS)
            word = f"B-{slot} {word}" + (f" E-{end}" if rng.random() < 0.9 else "")
        words.append(word)
    text = " ".join(words)
    if rng.random() < 0.1:
        text = text.replace(" ", "  ", 1)
    return text


def metric_cases() -> list[dict]:
    rng = random.Random(0)
    cases = [
        {"hyp": ["B-city PARIS E-city", "A B"], "ref": ["B-city PARIS E-city", "A B C"]},
        {"hyp": ["", "B-city LON E-city B-city PARIS E-city"], "ref": ["B-city PARIS E-city", "B-city PARIS E-city"]},
        {"hyp": ["B-artist B-city X E-city E-artist", "NO SLOT"], "ref": ["B-artist X E-artist", "NO SLOTS"]},
        {"hyp": ["B-city  A  E-city", "B-city A E-city B-playlist P E-playlist"], "ref": ["B-city A E-city", "X"]},
    ]
    for _ in range(40):
        n = rng.randint(1, 6)
        refs = [random_text(rng, True) or "A" for _ in range(n)]
        hyps = [random_text(rng, True) if rng.random() < 0.5 else r for r in refs]
        cases.append({"hyp": hyps, "ref": refs})
    names = ["cer", "wer", "per", "slot_type_f1", "slot_value_cer", "slot_value_wer", "slot_edit_f1_full",
             "slot_edit_f1_part"]
    for case in cases:
        case["out"] = {}
        for name in names:
            try:
                case["out"][name] = float(getattr(metric, name)(hypothesis=case["hyp"], groundtruth=case["ref"]))
            except ZeroDivisionError:
                case["out"][name] = "ZeroDivisionError"
    return cases


def text_fixtures(tmp: Path) -> dict:
    (tmp / "character.txt").write_text("\n".join(CHARS))
    (tmp / "slots.txt").write_text("\n".join(["O", *SLOTS]))
    (tmp / "phoneme.txt").write_text("\n".join(PHONEMES))
    sf = CharacterTextSlotEncoder.load_from_file(str(tmp / "character.txt"), str(tmp / "slots.txt"))
    pr = WordTextEncoder.load_from_file(str(tmp / "phoneme.txt"))
    d = Dictionary.load(str(tmp / "char.dict"))
    chapter = tmp / "libri" / "sub" / "11" / "22"
    chapter.mkdir(parents=True)
    (chapter / "11-22.trans.txt").write_text("".join(f"11-22-{i:04d} {t}\n" for i, t in enumerate(TRANSCRIPTS)))
    holder = types.SimpleNamespace(libri_root=str(tmp / "libri"))
    prepared = SequenceDataset._load_transcript(holder, [f"sub/11/22/11-22-{i:04d}.flac" for i in range(3)])
    asr = []
    for i, t in enumerate(TRANSCRIPTS):
        line = prepared[f"11-22-{i:04d}"]
        ids = d.encode_line(line, line_tokenizer=lambda x: x.split(), add_if_not_exist=False).long().tolist()
        asr.append({"text": t, "ids": ids, "string": d.string(torch.tensor(ids))})
    phones = ["HH AH0 L OW1 W ER1 L D", "SIL Z IY1 B R AH0 SPN"]
    return {"sf": [{"line": line, "ids": sf.encode(line), "decoded": sf.decode(sf.encode(line))} for line in SF_LINES],
            "sf_vocab_size": sf.vocab_size,
            "pr": [{"text": p, "ids": pr.encode(p), "decoded": pr.decode(pr.encode(p))} for p in phones],
            "asr": asr, "asr_dict_size": len(d)}


def perturb(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))


def run_expert(expert, features, labels, kind: str) -> dict:
    expert.eval()
    records = defaultdict(list)
    filenames = [f"utt{i}" for i in range(len(features))]
    with torch.no_grad():
        loss = expert("test", [f.clone() for f in features], labels, filenames, records)
    with torch.no_grad():  # the head's outputs, through the original modules as its forward calls them
        padded = torch.nn.utils.rnn.pad_sequence([f.clone() for f in features], batch_first=True)
        logits, out_len = expert.model(expert.projector(padded), torch.IntTensor([len(f) for f in features]))
        log_probs = torch.nn.functional.log_softmax(logits, dim=-1)
    out = {"log_probs": log_probs, "log_probs_len": torch.as_tensor(out_len).long(),
           "state_dict": {k: v.clone() for k, v in expert.state_dict().items() if k != "best_score"},
           "features": features, "labels": [list(map(int, l)) for l in labels], "loss": float(loss)}
    if kind == "ctc":
        out.update(hypothesis=list(records["hypothesis"]), groundtruth=list(records["groundtruth"]))
        # the original decodes the padded frames too; its evaluation runs one utterance per batch
        single = defaultdict(list)
        with torch.no_grad():
            for i, f in enumerate(features):
                expert("test", [f.clone()], [labels[i]], [filenames[i]], single)
        out["single_hypothesis"] = list(single["hypothesis"])
    else:
        out.update(pred_tokens=list(records["pred_tokens"]), pred_words=[" ".join(w) for w in records["pred_words"]],
                   target_words=[" ".join(w) for w in records["target_words"]])
    return out


def expert_fixtures(tmp: Path) -> dict:
    torch.manual_seed(0)
    lengths = [37, 25, 6, 31]
    features = [torch.randn(n, 12) for n in lengths]
    out = {}
    # PR: FrameLevel over 74 outputs; the third utterance is too short for its label (zero_infinity)
    pr_cfg = {"corpus": {"name": "libriphone"}, "text": {"mode": "word", "vocab_file": str(tmp / "phoneme.txt")},
              "model": {"project_dim": 16, "zero_infinity": True, "select": "FrameLevel"},
              "metric": ["per"], "metric_higher_better": False}
    expert = CtcExpert(12, 160, pr_cfg, str(tmp))
    perturb(expert, 1)
    gen = torch.Generator().manual_seed(5)
    labels = [torch.randint(3, 74, (n,), generator=gen).tolist() + [1] for n in (9, 4, 8, 1)]
    out["pr"] = run_expert(expert, features, labels, "ctc")
    # SF: RNNs over characters + slots
    rnn = {"total_rate": -1, "module": "LSTM", "bidirection": True, "dim": [10, 10], "dropout": [0.2, 0.2],
           "layer_norm": [False, False], "proj": [False, False], "sample_rate": [1, 1], "sample_style": "concat"}
    sf_cfg = {"corpus": {"name": "snips"}, "text": {"mode": "character-slot", "vocab_file": str(tmp / "character.txt"),
                                                    "slots_file": str(tmp / "slots.txt")},
              "model": {"project_dim": 14, "zero_infinity": True, "select": "RNNs", "RNNs": rnn},
              "metric": ["slot_type_f1"], "metric_higher_better": True}
    expert = CtcExpert(12, 160, sf_cfg, str(tmp))
    perturb(expert, 2)
    sf = CharacterTextSlotEncoder.load_from_file(str(tmp / "character.txt"), str(tmp / "slots.txt"))
    out["sf"] = run_expert(expert, features, [sf.encode(SF_LINES[i % len(SF_LINES)])[:lengths[i] // 2] + [1]
                                              for i in range(4)], "ctc")
    # ASR: the SUPERB head (small) and variants of the RNNs options
    d = Dictionary.load(str(tmp / "char.dict"))
    words = ["HELLO WORLD", "A", "IT IS", "ZEBRA QUIZ"]
    asr_labels = [d.encode_line(" ".join(list(w.replace(" ", "|"))) + " |", line_tokenizer=lambda x: x.split(),
                                add_if_not_exist=False).tolist() for w in words]
    variants = {
        "superb": dict(rnn),
        "downsample": {**rnn, "total_rate": 320, "layer_norm": [True, False], "proj": [True, True],
                       "sample_rate": [2, 1], "dropout": [0.0, 0.1]},
        "gru_drop": {**rnn, "module": "GRU", "bidirection": False, "total_rate": 320, "sample_style": "drop",
                     "dim": [9]} | {"dropout": [0.2], "layer_norm": [False], "proj": [False], "sample_rate": [1]},
    }
    for name, conf in variants.items():
        cfg = {"datarc": {"dict_path": str(tmp / "char.dict"), "zero_infinity": True,
                          "decoder_args": {"decoder_type": "None"}},
               "modelrc": {"project_dim": 14, "select": "RNNs", "RNNs": conf}}
        expert = AsrExpert(12, 160, cfg, str(tmp))
        perturb(expert, 3)
        out[f"asr_{name}"] = {**run_expert(expert, features, asr_labels, "asr"), "conf": conf, "upstream_rate": 160}
    return out


LM_WORDS = ["HELLO", "WORLD", "A", "IT", "IS", "ZEBRA", "QUIZ", "WO", "LOW"]
ARPA = """\\data\\
ngram 1=12
ngram 2=5

\\1-grams:
-1.0\t<unk>\t0.0
-99\t<s>\t-0.30
-1.2\t</s>\t0.0
-0.9\tHELLO\t-0.2
-1.1\tWORLD\t-0.2
-0.8\tA\t-0.2
-1.0\tIT\t-0.2
-1.0\tIS\t-0.2
-1.3\tZEBRA\t-0.2
-1.4\tQUIZ\t-0.2
-1.5\tWO\t-0.2
-1.5\tLOW\t-0.2

\\2-grams:
-0.2\t<s> HELLO
-0.1\tHELLO WORLD
-0.3\tIT IS
-0.4\tIS A
-0.2\tZEBRA QUIZ

\\end\\
"""


def lm_fixtures(tmp: Path) -> dict:
    """The original ASR expert's flashlight decoding (W2lKenLMDecoder) of noisy spelled log-probabilities."""
    (tmp / "lm.arpa").write_text(ARPA)
    lexicon = "".join(f"{w}\t{' '.join(w)} |\n" for w in LM_WORDS)
    (tmp / "lexicon.lst").write_text(lexicon)
    d = Dictionary.load(str(tmp / "char.dict"))
    out = {"arpa": ARPA, "lexicon": lexicon, "runs": []}
    for weights in ((2.0, -1.0), (0.5, 1.0)):
        args = {"decoder_type": "kenlm", "nbest": 1, "criterion": "ctc", "beam": 5, "beam_threshold": 25,
                "kenlm_model": str(tmp / "lm.arpa"), "lexicon": str(tmp / "lexicon.lst"), "lm_weight": weights[0],
                "word_score": weights[1], "unk_weight": float("-inf"), "sil_weight": 0}
        from s3prl.downstream.asr.expert import get_decoder

        decoder = get_decoder(args, d)
        for b, emissions in enumerate(spelled_emissions(d)):
            decoded = decoder.decode(emissions.unsqueeze(0).contiguous())[0]
            words = decoded[0]["words"] if decoded else None
            out["runs"].append({"emissions": emissions, "lm_weight": weights[0], "word_score": weights[1],
                                "words": words})
    return out


def spelled_emissions(d) -> list:
    """Noisy CTC log-probabilities that spell (sometimes misspelled) texts: 2-3 frames per token, blanks between."""
    gen = torch.Generator().manual_seed(7)
    out = []
    for text in ("HELLO WORLD", "HELO WORLT", "IT IS A ZEBRA", "ZEBRA QUIZ", "LOW WO", "IT IZ A QUIS"):
        frames = []
        for token in " ".join(text.replace(" ", "|")).split() + ["|"]:
            for _ in range(int(torch.randint(2, 4, (1,), generator=gen))):
                frames.append(d.index(token))
            frames.append(d.bos())
        logits = 2.5 * torch.nn.functional.one_hot(torch.tensor(frames), len(d)).float()
        logits = logits + 1.2 * torch.randn(logits.shape, generator=gen)
        out.append(torch.log_softmax(logits, dim=-1))
    return out


def specaug_fixtures() -> dict:
    asr = dict(adaptive=False, adaptive_number_ratio=0.04, adaptive_size_ratio=0.04, max_n_time_masks=20,
               apply_time_warp=True, apply_time_mask=True, apply_freq_mask=True, time_warp_window=5,
               time_mask_width_range=[0, 40], freq_mask_width_range=[0, 50], num_freq_mask=4, num_time_mask=2)
    out = []
    for name, conf in (("asr", asr), ("sf", {**asr, "adaptive": True})):
        for seed in (0, 1):
            torch.manual_seed(100 + seed)
            feats = [torch.randn(n, 32) for n in (60, 41, 9)]
            torch.manual_seed(seed)
            augmented, _ = SpecAug(**conf)([f.clone() for f in feats])
            out.append({"name": name, "conf": conf, "seed": seed, "features": feats, "output": augmented})
    return out


def main(path: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "char.dict").write_text("".join(f"{c} {1000 - i}\n" for i, c in enumerate(DICT_CHARS)))
        fixtures = {"metrics": metric_cases(), "text": text_fixtures(tmp), "experts": expert_fixtures(tmp),
                    "specaug": specaug_fixtures()}
        fixtures["lm"] = lm_fixtures(tmp)
    torch.save(fixtures, path)
    print(f"wrote {path}: {len(fixtures['metrics'])} metric cases, {len(fixtures['experts'])} expert runs, "
          f"{len(fixtures['specaug'])} specaug runs")


if __name__ == "__main__":
    main(sys.argv[1])
