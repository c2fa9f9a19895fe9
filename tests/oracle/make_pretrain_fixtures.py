"""Objective fixtures for tests/test_pretrain.py, computed by the ORIGINAL s3prl APC / VQ-APC / NPC (oracle venv).

    python make_pretrain_fixtures.py OUT_DIR [CASE ...]

For each method: a tiny original ``APC`` (its own initialisation, seed 0), a padded batch of random features
with uneven lengths, and the original pre-trainer's objective (``pretrain/apc/pretrain_expert.py``: input
without the last n_future frames, lengths minus n_future, L1Loss against the batch shifted by n_future) in
training mode after ``torch.manual_seed(123)`` (dropout masks and Gumbel noise). Saves the configuration, the
weights, the batch, the loss and every parameter's gradient.
"""

import os
import sys

ORACLE = os.environ.get("S3PRL_ORACLE_DIR",
                        os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import oracle_env  # noqa: E402,F401  (threads, seeds, shims)
import torch  # noqa: E402
from s3prl.upstream.apc.apc import APC  # noqa: E402
from s3prl.upstream.npc.npc import NPC  # noqa: E402

PARAS = {"num_layers": 3, "hidden_size": 32, "dropout": 0.1, "residual": True}
VQ = {"codebook_size": [16, 8], "code_dim": [20, 12], "gumbel_temperature": 0.5}
N_FUTURE = 5


def case(vq):
    paras = dict(PARAS, vq=VQ) if vq else dict(PARAS)
    config = {"model": {"paras": paras}, "task": {"sequence_length": 1500, "n_future": N_FUTURE},
              "data": {"audio": {"feat_type": "fbank", "feat_dim": 80, "frame_length": 25, "frame_shift": 10,
                                 "decode_wav": False, "cmvn": True}}}
    torch.manual_seed(0)
    model = APC(80, **paras)
    model.train()
    lengths = [40, 33, 12]
    feats = torch.randn(len(lengths), max(lengths), 80)
    for b, n in enumerate(lengths):
        feats[b, n:] = 0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    pred, _ = model(feats[:, :-N_FUTURE, :], [n - N_FUTURE for n in lengths], testing=False)
    loss = torch.nn.L1Loss()(pred, feats[:, N_FUTURE:, :])
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    return {"config": config, "state": state, "feats": feats, "lengths": torch.tensor(lengths), "seed": 123,
            "loss": loss.detach(), "grads": grads}


NPC_PARAS = {"kernel_size": 9, "mask_size": 3, "n_blocks": 2, "hidden_size": 32, "dropout": 0.1, "residual": True,
             "batch_norm": True, "activate": "relu", "disable_cross_layer": False,
             "vq": {"codebook_size": [16, 8], "code_dim": [20, 12], "gumbel_temperature": 1.0}}


def npc_case(disable_cross_layer=False):
    """The NPC pre-trainer: the whole padded batch through the model (train mode: dropout, BatchNorm batch
    statistics, Gumbel noise), L1 averaged over channels, summed over valid frames, divided by their number."""
    paras = dict(NPC_PARAS, disable_cross_layer=disable_cross_layer)
    config = {"model": {"paras": paras}, "task": {"sequence_length": 1500, "n_future": 5},
              "data": {"audio": {"feat_type": "fbank", "feat_dim": 80, "frame_length": 25, "frame_shift": 10,
                                 "decode_wav": False, "cmvn": True}}}
    torch.manual_seed(0)
    model = NPC(80, **paras)
    model.train()
    lengths = [40, 33, 12]
    feats = torch.randn(len(lengths), max(lengths), 80)
    for b, n in enumerate(lengths):
        feats[b, n:] = 0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    pred, _ = model(feats)
    loss = torch.nn.L1Loss(reduction="none")(pred, feats)
    total = 0
    for i, n in enumerate(lengths):
        total += loss[i, :n, :].mean(dim=-1).sum()
    loss = total / sum(lengths)
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    return {"config": config, "state": state, "feats": feats, "lengths": torch.tensor(lengths), "seed": 123,
            "loss": loss.detach(), "grads": grads}


CASES = {"apc": lambda: case(False), "vq_apc": lambda: case(True), "npc": npc_case,
         "npc_no_cross_layer": lambda: npc_case(disable_cross_layer=True)}

if __name__ == "__main__":
    out = sys.argv[1]
    for name in sys.argv[2:] or CASES:  # optional: only the named cases
        torch.save(CASES[name](), os.path.join(out, f"{name}_objective.pt"))
        print("wrote", name)
