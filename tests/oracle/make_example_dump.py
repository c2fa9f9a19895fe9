"""Dump of the ORIGINAL ``customized_upstream`` (the example template) with a known random init (oracle venv).

    python make_example_dump.py --seed 0 -- <dump.py arguments>   # --name customized_upstream --ckpt ANY_FILE

The template has no checkpoint: its two ``nn.Linear`` layers keep PyTorch's default initialisation. This
script seeds the global RNG right before the original ``S3PRLUpstream`` builds it (the first thing its
constructor does), so ``torch.manual_seed(seed); S3PRLUpstream("customized_upstream")`` must give the same
weights and outputs in a faithful re-implementation. dump.py insists on ``--ckpt``; the template ignores it
(any existing file will do). The original weights are added to the dump under ``state_dict``.
"""

import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import dump  # noqa: E402  (oracle_env first: threads, seeds, shims)
import torch  # noqa: E402


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    sep = argv.index("--") if "--" in argv else len(argv)
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv[:sep] else 0
    rest = argv[sep + 1:]
    import s3prl.nn

    original_init = s3prl.nn.S3PRLUpstream.__init__
    built = []

    def seeded_init(self, *args, **kwargs):
        torch.manual_seed(seed)
        original_init(self, *args, **kwargs)
        built.append(self)

    s3prl.nn.S3PRLUpstream.__init__ = seeded_init
    code = dump.main(rest)
    out = rest[rest.index("--out") + 1]
    result = torch.load(out, weights_only=True)
    result["state_dict"] = {k: v.clone() for k, v in built[0].upstream.state_dict().items()}
    result["meta"]["seed"] = seed
    torch.save(result, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
