"""Comparison of our S3PRLUpstream with a dump of the original s3prl (written by the oracle's dump.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from s3prl.nn import S3PRLUpstream


def load_dump(path: Path) -> dict:
    """A dump of the original's hidden states; dumps that share their waveforms name the file holding them
    (``wavs_from``, in the same folder) instead of storing them again."""
    dump = torch.load(path, weights_only=True)
    if dump.get("wavs_from"):
        dump["wavs"] = torch.load(Path(path).parent / dump["wavs_from"], weights_only=True)["wavs"]
    return dump


def compare_with_dump(upstream: S3PRLUpstream, dump: dict) -> dict:
    """Max abs differences: ours at batch size 1 vs the original at batch size 1 ('single'), and our padded
    batch vs the original at batch size 1 (the batch independence we add). Asserts counts, shapes, lengths."""
    wavs = dump["wavs"]
    meta = dump["meta"]
    assert upstream.num_layers == meta["num_layers"], (upstream.num_layers, meta["num_layers"])
    assert upstream.hidden_sizes == list(meta["hidden_sizes"])
    assert upstream.downsample_rates == list(meta["downsample_rates"])
    lens = torch.tensor([len(w) for w in wavs])
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    single_err, batch_err, compared = 0.0, 0.0, 0
    with torch.no_grad():
        batch_hs, batch_lens = upstream(padded, lens)
        for b, wav in enumerate(wavs):
            refs, ref_lens = dump["single"][b], dump["single_lengths"][b]
            if refs is None:  # the original raised on this input (e.g. 961-1039 samples)
                continue
            hs, hs_len = upstream(wav[None], torch.tensor([len(wav)]))
            assert len(hs) == len(refs)
            for layer, (h, ref, ref_len) in enumerate(zip(hs, refs, ref_lens)):
                assert h.shape == ref.shape, (b, layer, h.shape, ref.shape)
                assert torch.equal(hs_len[layer], ref_len), (b, layer, hs_len[layer], ref_len)
                n = int(ref_len[0])
                single_err = max(single_err, (h[0, :n] - ref[0, :n]).abs().max().item())
                assert int(batch_lens[layer][b]) == n
                batch_err = max(batch_err, (batch_hs[layer][b, :n] - ref[0, :n]).abs().max().item())
            compared += 1
    assert compared > 0
    return {"single": single_err, "batch": batch_err, "utterances": compared}
