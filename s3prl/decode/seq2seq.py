"""Beam search for attention encoder-decoders, with the decisions of fairseq's ``SequenceGenerator`` (so that the
original ``speech_translation`` task's hypotheses are reproduced from the same weights):

* every hypothesis starts with ``eos``; padding is never generated; ``eos`` is forbidden before ``min_len`` steps
  and forced at ``max_len``;
* each step ranks the 2 x beam best (hypothesis, token) extensions of a sentence by their summed log-probability
  (only the first hypothesis at the first step); an ``eos`` among the first ``beam`` of them ends a hypothesis,
  scored by its sum divided by its length (tokens + eos) ** ``len_penalty``; the first ``beam`` extensions that
  do not end continue;
* a sentence is done when it holds ``beam`` ended hypotheses; its best-scored one is the output.
"""

from __future__ import annotations

from typing import Callable

import torch


def beam_search(step: Callable[[torch.Tensor], torch.Tensor], reorder: Callable[[torch.Tensor], None], batch: int,
                beam: int, max_len: int, eos: int, pad: int, unk: int, min_len: int = 1, len_penalty: float = 1.0,
                unk_penalty: float = 0.0) -> list[list[tuple[float, list[int]]]]:
    """Hypotheses per sentence, best first: ``[(score, tokens ending with eos), ...]``.

    ``step(tokens (batch * beam, t)) -> log-probabilities (batch * beam, V)`` of the next token (hypothesis
    ``b * beam + k`` is the k-th of sentence b); ``reorder(index (batch * beam,))`` makes the caller's decoder
    state follow the surviving hypotheses (row i of the new state is row ``index[i]`` of the old)."""
    n, cand = batch * beam, 2 * beam
    tokens = torch.full((n, max_len + 2), pad, dtype=torch.long)
    tokens[:, 0] = eos
    scores = torch.zeros(n, max_len + 1)
    ignore = torch.zeros(batch, beam, dtype=torch.bool)  # slots filled with an ended hypothesis (never extended)
    offsets = torch.arange(batch).unsqueeze(1) * beam
    finalized: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    finished = [False] * batch
    for t in range(max_len + 1):
        lprobs = step(tokens[:, : t + 1]).float().cpu()  # (n, V)
        vocab = lprobs.size(-1)
        lprobs = lprobs.masked_fill(lprobs.isnan(), float("-inf"))
        lprobs[:, pad] = float("-inf")
        lprobs[:, unk] -= unk_penalty
        if t >= max_len:  # only eos may follow
            keep = lprobs[:, eos].clone()
            lprobs.fill_(float("-inf"))
            lprobs[:, eos] = keep
        elif t < min_len:
            lprobs[:, eos] = float("-inf")
        lp = lprobs.view(batch, beam, vocab)
        lp = lp[:, :1] if t == 0 else lp + scores.view(batch, beam, -1)[:, :, t - 1 : t]
        flat = lp.reshape(batch, -1)
        cand_scores, index = flat.topk(min(cand, flat.size(1) - 1), dim=1)  # (batch, <= 2 beam)
        cand_tokens, cand_rows = index % vocab, torch.div(index, vocab, rounding_mode="floor") + offsets
        ends = cand_tokens.eq(eos) & cand_scores.ne(float("-inf"))
        ends[:, :beam][ignore] = False
        for b in range(batch):
            hits = ends[b, :beam].nonzero().flatten().tolist()
            if finished[b] or not hits:
                continue
            for j in hits:
                if len(finalized[b]) < beam:
                    row = int(cand_rows[b, j])
                    score = float(cand_scores[b, j]) / (t + 1) ** len_penalty
                    finalized[b].append((score, tokens[row, 1 : t + 1].tolist() + [eos]))
            finished[b] = len(finalized[b]) == beam or t == max_len
        if all(finished):
            break
        # the first `beam` candidates that neither end nor come from an ignored slot survive
        blocked = ends.clone()
        blocked[:, :beam] |= ignore
        rank = blocked.long() * cand + torch.arange(blocked.size(1))
        rank, active = rank.topk(beam, dim=1, largest=False)
        ignore = rank.ge(cand)
        rows = cand_rows.gather(1, active).flatten()
        tokens[:, : t + 1] = tokens[rows, : t + 1]
        tokens.view(batch, beam, -1)[:, :, t + 1] = cand_tokens.gather(1, active)
        scores[:, :t] = scores[rows, :t]
        scores.view(batch, beam, -1)[:, :, t] = cand_scores.gather(1, active)
        reorder(rows)
    return [sorted(hyps, key=lambda h: -h[0]) for hyps in finalized]
