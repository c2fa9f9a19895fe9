"""Diarization error rate: one implementation, with its scoring policy explicit in the arguments and the results.

DER = (missed speech + false alarm + speaker confusion) / reference speech, all in seconds of speaker time,
over a scoring region:

* ``uem``: the regions scored per recording. Without one, each recording is scored from the earliest onset
  to the latest offset of any reference or hypothesis turn (what dscore and pyannote.metrics do).
* ``collar``: seconds removed on EACH side of every reference turn boundary (the dscore / md-eval convention;
  pyannote.metrics' ``collar`` is the total width, i.e. ``2 * collar`` here).
* ``skip_overlap``: remove the regions where two or more reference speakers talk at once.

The defaults are those of the original s3prl scoring (dscore's defaults): no UEM, collar 0, overlap scored.
Speakers are mapped one-to-one, reference to hypothesis, so as to maximise the time they share inside the
scored region (Hungarian algorithm); totals over several recordings sum the seconds before dividing.

Turns of one speaker that overlap or touch each other are merged first (a speaker either talks or not).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

Turns = dict[str, list[tuple[float, float]]]  # speaker -> [(start, end)] in seconds


@dataclass(frozen=True)
class Policy:
    """What is scored: ``collar`` seconds on each side of reference boundaries, overlap regions or not."""

    collar: float = 0.0
    skip_overlap: bool = False
    uem: str = "extent of reference and hypothesis turns"

    def describe(self) -> str:
        return (f"collar {self.collar:g} s each side, overlap {'skipped' if self.skip_overlap else 'scored'}, "
                f"scoring region: {self.uem}")


@dataclass
class DER:
    """The seconds of one recording (or a total) and the rates derived from them."""

    scored: float = 0.0  # seconds of reference speaker time in the scoring region
    missed: float = 0.0
    false_alarm: float = 0.0
    confusion: float = 0.0
    region: float = 0.0  # seconds of scoring region
    mapping: dict = field(default_factory=dict)  # hypothesis speaker -> reference speaker

    @property
    def error(self) -> float:
        return self.missed + self.false_alarm + self.confusion

    @property
    def der(self) -> float:
        """Error / reference speech; NaN when the region holds no reference speech."""
        return self.error / self.scored if self.scored > 0 else math.nan

    def __add__(self, other: "DER") -> "DER":
        return DER(self.scored + other.scored, self.missed + other.missed, self.false_alarm + other.false_alarm,
                   self.confusion + other.confusion, self.region + other.region)

    def as_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "mapping"}
        rate = self.der
        out.update(DER=None if math.isnan(rate) else rate,
                   missed_rate=self.missed / self.scored if self.scored else None,
                   false_alarm_rate=self.false_alarm / self.scored if self.scored else None,
                   confusion_rate=self.confusion / self.scored if self.scored else None)
        if self.mapping:
            out["mapping"] = dict(self.mapping)
        return out


# ------------------------------------------------------------------------------------------------
# intervals
# ------------------------------------------------------------------------------------------------


def merge(intervals) -> list[tuple[float, float]]:
    """Sorted union of ``(start, end)`` intervals; empty ones dropped."""
    out: list[list[float]] = []
    for s, e in sorted((float(s), float(e)) for s, e in intervals if e > s):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def subtract(region, holes) -> list[tuple[float, float]]:
    """``region`` minus the union of ``holes`` (both lists of intervals)."""
    holes = merge(holes)
    out = []
    for s, e in merge(region):
        cursor = s
        for hs, he in holes:
            if he <= cursor or hs >= e:
                continue
            if hs > cursor:
                out.append((cursor, hs))
            cursor = max(cursor, he)
        if cursor < e:
            out.append((cursor, e))
    return out


def overlap_regions(turns: Turns) -> list[tuple[float, float]]:
    """Where two or more speakers of ``turns`` are active at once."""
    points = sorted([(s, 1) for segs in turns.values() for s, _ in merge(segs)] +
                    [(e, -1) for segs in turns.values() for _, e in merge(segs)], key=lambda p: (p[0], p[1]))
    out, active, start = [], 0, 0.0
    for t, step in points:  # ends sort before starts at the same instant: touching turns do not overlap
        before = active
        active += step
        if before < 2 <= active:
            start = t
        elif before >= 2 > active and t > start:
            out.append((start, t))
    return merge(out)


def scoring_region(reference: Turns, hypothesis: Turns, uem, policy: Policy) -> list[tuple[float, float]]:
    """The UEM (or the turns' extent) minus the collars and, if asked, the reference overlap."""
    if uem is None:
        spans = [t for turns in (reference, hypothesis) for segs in turns.values() for t in segs]
        uem = [(min(s for s, _ in spans), max(e for _, e in spans))] if spans else []
    holes = []
    if policy.collar > 0:
        for segs in reference.values():
            for s, e in segs:
                holes += [(s - policy.collar, s + policy.collar), (e - policy.collar, e + policy.collar)]
    if policy.skip_overlap:
        holes += overlap_regions(reference)
    return subtract(uem, holes)


def activity(turns: Turns, bounds: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Speakers and their activity (S, K) on the K elementary segments between ``bounds``."""
    mids = (bounds[:-1] + bounds[1:]) / 2
    names = sorted(turns)
    act = np.zeros((len(names), len(mids)), dtype=bool)
    for i, name in enumerate(names):
        segs = merge(turns[name])
        if segs:
            starts, ends = np.array(segs).T
            j = np.searchsorted(starts, mids, side="right") - 1  # the last turn starting before each midpoint
            act[i] = (j >= 0) & (mids < ends[np.maximum(j, 0)])
    return names, act


# ------------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------------


def score_recording(reference: Turns, hypothesis: Turns, uem=None, policy: Policy | None = None) -> DER:
    """DER components of one recording (``uem``: list of ``(start, end)``, or None for the turns' extent)."""
    policy = policy or Policy()
    region = scoring_region(reference, hypothesis, uem, policy)
    cuts = {t for s, e in region for t in (s, e)}
    for turns in (reference, hypothesis):
        cuts.update(t for segs in turns.values() for s, e in segs for t in (s, e))
    bounds = np.array(sorted(cuts), dtype=float)
    if len(bounds) < 2 or not region:
        return DER()
    _, inside = activity({"region": region}, bounds)
    dur = np.diff(bounds) * inside[0]  # (K,) seconds scored of each elementary segment
    ref_names, ref = activity(reference, bounds)  # (R, K)
    hyp_names, hyp = activity(hypothesis, bounds)  # (H, K)
    n_ref, n_hyp = ref.sum(0), hyp.sum(0)
    shared = (ref.astype(float) * dur) @ hyp.T.astype(float)  # (R, H) seconds both talk
    rows, cols = assignment(shared)
    correct = float(sum(shared[r, c] for r, c in zip(rows, cols)))
    mapping = {hyp_names[c]: ref_names[r] for r, c in zip(rows, cols) if shared[r, c] > 0}
    return DER(scored=float(dur @ n_ref), missed=float(dur @ np.maximum(n_ref - n_hyp, 0)),
               false_alarm=float(dur @ np.maximum(n_hyp - n_ref, 0)),
               confusion=float(dur @ np.minimum(n_ref, n_hyp)) - correct, region=float(dur.sum()), mapping=mapping)


def score(reference: dict[str, Turns], hypothesis: dict[str, Turns], uem: dict | None = None,
          collar: float = 0.0, skip_overlap: bool = False) -> dict:
    """DER per recording and in total. ``reference`` / ``hypothesis``: ``{recording: {speaker: [(s, e)]}}``.

    A recording of the reference missing from the hypothesis is scored as all missed (the system said nothing
    there); one of the hypothesis missing from the reference (and from the UEM) is an error, as is a reference
    recording without UEM regions when a UEM is given. A UEM recording absent from the reference is scored as
    one without reference speech. Returns ``{"policy", "recordings": {rec: {...}}, "total": {...}}``.
    """
    if collar < 0 or not math.isfinite(collar):
        raise ValueError(f"collar must be a finite number of seconds >= 0, got {collar}")
    known = set(reference) | set(uem or ())
    stray = sorted(set(hypothesis) - known)
    if stray:
        raise ValueError(f"the hypothesis has recordings that are not in the reference{' or the UEM' if uem else ''}: "
                         f"{', '.join(stray[:10])}{' ...' if len(stray) > 10 else ''}")
    if uem is not None:
        uncovered = sorted(set(reference) - set(uem))
        if uncovered:
            raise ValueError(f"the UEM has no region for recordings of the reference: {', '.join(uncovered[:10])}")
    policy = Policy(collar, skip_overlap, "UEM" if uem is not None else Policy.uem)
    per, total = {}, DER()
    for rec in sorted(known):
        result = score_recording(reference.get(rec, {}), hypothesis.get(rec, {}),
                                 None if uem is None else uem[rec], policy)
        per[rec], total = result, total + result
    if total.scored == 0:
        raise ValueError("the reference has no speech inside the scoring region: DER is undefined")
    return {"policy": asdict(policy), "recordings": {r: d.as_dict() for r, d in per.items()}, "total": total.as_dict()}


def assignment(weights: np.ndarray) -> tuple[list[int], list[int]]:
    """Rows and columns of a one-to-one matching with the largest total weight (Hungarian algorithm,
    shortest augmenting paths with potentials; O(n^3) on the square matrix padded with zeros)."""
    n_rows, n_cols = weights.shape
    n = max(n_rows, n_cols)
    if n == 0:
        return [], []
    cost = np.zeros((n, n))
    cost[:n_rows, :n_cols] = weights.max(initial=0.0) - weights  # minimise cost == maximise weight
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    match = np.zeros(n + 1, dtype=int)  # match[j]: the row (1-based) given column j; 0 = free
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        best = np.full(n + 1, np.inf)
        way = np.zeros(n + 1, dtype=int)
        used = np.zeros(n + 1, dtype=bool)
        while match[j0] != 0:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < best[1:])
            best[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, best[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[match[used]] += delta
            v[used] -= delta
            best[1:][free] -= delta
            j0 = j1
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    pairs = [(match[j] - 1, j - 1) for j in range(1, n + 1) if match[j] - 1 < n_rows and j - 1 < n_cols]
    pairs.sort()
    return [r for r, _ in pairs], [c for _, c in pairs]


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------


def read_rttm(path: str | Path) -> dict[str, Turns]:
    """``SPEAKER <rec> <chan> <onset> <dur> <NA> <NA> <speaker> ...`` lines -> ``{rec: {speaker: [(s, e)]}}``.
    Other line types (SPKR-INFO, ...), blank lines and ``#`` comments are skipped; bad lines raise naming
    the file and line."""
    out: dict[str, Turns] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ValueError(f"{path}:{n}: an RTTM SPEAKER line has at least 8 fields "
                             f"(SPEAKER rec chan onset dur <NA> <NA> speaker), got {line!r}")
        try:
            onset, dur = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(f"{path}:{n}: onset and duration must be numbers, got {fields[3]!r} "
                             f"{fields[4]!r}") from None
        if not (math.isfinite(onset) and math.isfinite(dur)) or dur < 0 or onset < 0:
            raise ValueError(f"{path}:{n}: onset {onset} / duration {dur} must be finite and >= 0")
        out.setdefault(fields[1], {}).setdefault(fields[7], []).append((onset, onset + dur))
    return out


def read_uem(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """``<rec> <chan> <start> <end>`` lines -> ``{rec: [(start, end)]}``; overlapping regions of one recording
    and ``end < start`` raise naming the file and lines."""
    out: dict[str, list[tuple[float, float, int]]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 4:
            raise ValueError(f"{path}:{n}: a UEM line is `<recording> <channel> <start> <end>`, got {line!r}")
        try:
            start, end = float(fields[2]), float(fields[3])
        except ValueError:
            raise ValueError(f"{path}:{n}: start and end must be numbers, got {fields[2]!r} {fields[3]!r}") from None
        if not (math.isfinite(start) and math.isfinite(end)) or end < start or start < 0:
            raise ValueError(f"{path}:{n}: region {start}-{end} must have 0 <= start <= end")
        out.setdefault(fields[0], []).append((start, end, n))
    regions = {}
    for rec, items in out.items():
        items.sort()
        for (s1, e1, n1), (s2, e2, n2) in zip(items, items[1:]):
            if s2 < e1:
                raise ValueError(f"{path}: regions of {rec} overlap (lines {n1} and {n2}: {s1}-{e1} and {s2}-{e2}); "
                                 "merge them so that no second is counted twice")
        regions[rec] = [(s, e) for s, e, _ in items]
    return regions


def write_rttm(path: str | Path, turns: dict[str, Turns]) -> None:
    """RTTM with one SPEAKER line per turn (10 fields), recordings and turns in time order."""
    lines = []
    for rec in sorted(turns):
        rows = sorted((s, e, spk) for spk, segs in turns[rec].items() for s, e in segs)
        lines += [f"SPEAKER {rec} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>\n" for s, e, spk in rows]
    Path(path).write_text("".join(lines))
