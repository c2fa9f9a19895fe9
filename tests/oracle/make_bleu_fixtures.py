"""BLEU fixture from the ORIGINAL speech_translation scoring code (run in the s3prl-oracle venv).

    bash tests/oracle/make_probe_fixtures.sh    # installs sacrebleu 2.6.0 aside (never into the venv), runs this

Two original code paths are run on the same strings:
* ``DownstreamExpert._metric`` of s3prl/downstream/speech_translation/expert.py (the task's dev/test BLEU), called
  on a bare object carrying ``tgt_lang``; the module's fairseq imports are satisfied by empty stand-ins (the
  method itself only calls sacrebleu);
* the original standalone scorer ``count_sacreBLEU.py`` run as a script on an ``output-st-test.tsv`` it reads.
"""

import csv
import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

side, out = sys.argv[1], sys.argv[2]
sys.path.append(side)  # after the venv's own packages

CASES = {
    "en_mixed": {
        "lang": "de",
        "hyps": ["Das ist ein Test.", "Hallo Welt!", "Ich habe einen Hund, und er heißt Max.", "ja", "",
                 "The U.S.A. isn't \"here\" -- right?", "Zahlen: 3,5 und 1.000 Euro."],
        "refs": ["Das ist ein kleiner Test.", "Hallo, Welt!", "Ich habe einen Hund; er heißt Max.", "Ja",
                 "Leer", "The U.S.A. is not \"here\" - right?", "Zahlen: 3,5 und 1.000 Euro."],
    },
    "case_sensitive": {"lang": "en", "hyps": ["the cat sat on the mat", "A B C D E"],
                       "refs": ["The cat sat on the mat", "a b c d e"]},
    "zh": {"lang": "zh", "hyps": ["我们今天去公园散步。", "他喜欢读书和写字"],
           "refs": ["我们今天去公园散步了。", "他喜欢读书、写字。"]},
}


class _Anything(types.ModuleType):
    """A stand-in module whose every attribute is a permissive mock (only for the import of expert.py)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return mock.MagicMock(name=f"{self.__name__}.{name}")


class _Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "fairseq" or name.startswith("fairseq."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        module = _Anything(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
sys.modules.setdefault("editdistance", types.ModuleType("editdistance"))
expert = importlib.import_module("s3prl.downstream.speech_translation.expert")
script = Path(expert.__file__).with_name("count_sacreBLEU.py")

import sacrebleu  # noqa: E402

result = {"sacrebleu_version": sacrebleu.__version__, "cases": {}}
for name, case in CASES.items():
    holder = types.SimpleNamespace(tgt_lang=case["lang"])
    bleu = expert.DownstreamExpert._metric(holder, list(case["hyps"]), list(case["refs"]))
    entry = dict(case, expert_bleu=bleu.score, expert_precisions=list(bleu.precisions), expert_bp=bleu.bp)
    if case["lang"] != "zh":  # the standalone script always uses sacrebleu's default (13a) tokenizer
        with tempfile.TemporaryDirectory() as tmp:
            with open(Path(tmp) / "output-st-test.tsv", "w", newline="") as f:
                w = csv.writer(f, delimiter="\t", quotechar=None, quoting=csv.QUOTE_NONE, lineterminator="\n")
                w.writerow(["id", "hyp", "ref"])
                for i, (h, r) in enumerate(zip(case["hyps"], case["refs"])):
                    w.writerow([i, h, r])
            env = {"PYTHONPATH": side}
            printed = subprocess.run([sys.executable, str(script), "--exp-dir", tmp], check=True,
                                     capture_output=True, text=True, env=env).stdout
        entry["script_bleu"] = float(printed.strip().splitlines()[-1])
    result["cases"][name] = entry
    print(name, entry["expert_bleu"], entry.get("script_bleu"))

Path(out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
