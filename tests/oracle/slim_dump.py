"""Keep what the default test suite reads of an oracle dump, to keep the committed fixtures small.

    python slim_dump.py DUMP.pt [--keep-legacy-extra]

Kept: ``wavs``, ``single``, ``single_lengths``, ``meta`` (what ``tests/parity.py`` compares) and, with
``--keep-legacy-extra``, the original expert's extra outputs (``z``, ``c``, ``codewords``, ``codeids``) of the
LONGEST utterance only (the one the original computed without padding, hence comparable). Dropped: the
padded-batch pass of the original (``batch``, ``legacy_hidden_states``), which depends on the padding and
which ours is not meant to reproduce. Rewrites DUMP.pt in place; runs in either venv (plain torch).
"""

import argparse

import torch

DUPLICATES = ("last_hidden_state", "default")  # = the last hidden state and ``c``


def main(path: str, keep_legacy_extra: bool) -> None:
    d = torch.load(path, map_location="cpu", weights_only=True)
    slim = {k: d[k] for k in ("wavs", "single", "single_lengths", "meta")}
    if keep_legacy_extra:
        longest = max(range(len(d["wavs"])), key=lambda i: len(d["wavs"][i]))
        slim["legacy_extra"] = {k: v[longest : longest + 1].clone() for k, v in d["legacy_extra"].items()
                                if k not in DUPLICATES}
        slim["legacy_extra_utterance"] = longest
    torch.save(slim, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--keep-legacy-extra", action="store_true")
    args = parser.parse_args()
    main(args.path, args.keep_legacy_extra)
