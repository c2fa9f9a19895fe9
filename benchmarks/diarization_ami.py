"""SD on the real AMI excerpts: a system's DER next to the trivial baselines, and ours next to pyannote.metrics.

    .venv/bin/python benchmarks/diarization_ami.py AMI_DIR [EXPDIR ...]

For the dev and test splits of ``AMI_DIR`` (``debug.{development,test}.{rttm,uem}``) it prints the DER of
* "nobody": no output at all (DER 100%: all missed),
* "one speaker": a single hypothesis speaker talking through the whole UEM,
* "everyone": as many hypothesis speakers as the reference has, all talking through the whole UEM,
* each EXPDIR's ``test_predict.rttm`` (from ``s3prl downstream train -d ami_diarization``), on test,
computed with s3prl.metrics.der and with pyannote.metrics (when installed), and the largest difference.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from s3prl.metrics import der


def baselines(reference: dict, uem: dict) -> dict[str, dict]:
    one = {rec: {"spk": list(uem[rec])} for rec in uem}
    everyone = {rec: {f"spk{i}": list(uem[rec]) for i in range(len(reference.get(rec, {})))} for rec in uem}
    return {"nobody (no output)": {}, "one speaker": one, "everyone": everyone}


def pyannote_der(reference: dict, hypothesis: dict, uem: dict) -> float | None:
    try:
        from pyannote.core import Annotation, Segment, Timeline
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError:
        return None

    def annotation(turns, uri):
        a = Annotation(uri=uri)
        for spk, segs in turns.items():
            for i, (s, e) in enumerate(der.merge(segs)):
                a[Segment(s, e), f"{spk}{i}"] = spk
        return a

    metric = DiarizationErrorRate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rec in uem:
            metric(annotation(reference.get(rec, {}), rec), annotation(hypothesis.get(rec, {}), rec),
                   uem=Timeline([Segment(s, e) for s, e in uem[rec]]))
    return abs(metric)


def line(name: str, reference: dict, hypothesis: dict, uem: dict) -> str:
    ours = der.score(reference, hypothesis, uem)["total"]
    theirs = pyannote_der(reference, hypothesis, uem)
    diff = "" if theirs is None else f"  pyannote {100 * theirs:6.2f}%  |diff| {abs(theirs - ours['DER']):.1e}"
    return (f"  {name:<28} DER {100 * ours['DER']:6.2f}%  (miss {100 * ours['missed_rate']:5.2f}, FA "
            f"{100 * ours['false_alarm_rate']:6.2f}, conf {100 * ours['confusion_rate']:5.2f}){diff}")


def main(argv: list[str]) -> int:
    root, expdirs = Path(argv[0]), [Path(p) for p in argv[1:]]
    for split in ("development", "test"):
        reference, uem = der.read_rttm(root / f"debug.{split}.rttm"), der.read_uem(root / f"debug.{split}.uem")
        print(f"{split} ({len(uem)} recordings, collar 0, overlap scored, UEM):")
        for name, hyp in baselines(reference, uem).items():
            print(line(name, reference, hyp, uem))
        if split == "test":
            for exp in expdirs:
                print(line(exp.name, reference, der.read_rttm(exp / "test_predict.rttm"), uem))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
