"""DistilHuBERT objective fixture for tests/test_pretrain_distiller.py, from the ORIGINAL code (oracle venv).

    python make_pretrain_distiller_fixtures.py OUT_DIR EXPERT_DIR TEACHER_CKPT

The original pre-training expert (``s3prl/pretrain/distiller/pretrain_expert.py``) is not part of the s3prl
0.4.18 package: the calling script (make_pretrain_distiller_fixtures.sh) extracts it from the original
repository into the temporary ``EXPERT_DIR`` at generation time; nothing of it is committed. Its imports are
satisfied by the oracle's ``upstream.distiller.model`` (0.4.18), a stand-in for ``easydict`` and an unused
stand-in for its dataset module; ``torch.hub.load`` returns the original ``hubert_local`` expert on
``TEACHER_CKPT`` (our tiny HuBERT fixture), in eval mode.

Saved: the configuration, the original's student state right after ``DistillerForPretrain`` built it
(initialised from the teacher: the sha256 of every tensor, and the tensors of the random prediction heads),
two equal-length waveforms, the teacher's target layers, the loss and its terms, the student gradients, and
the student after one step of the original ``AdamW_with_schedule`` (betas 0.9/0.98, eps 1e-6, as the original
runner config) with gradient clipping 5.0. To keep the file small, gradients and weights of the four middle
convolutions (conv_layers.2-5, the same rule as conv_layers.1 and 6) are left out.
"""

import hashlib
import importlib.util
import os
import re
import sys
import types

ORACLE = os.environ.get("S3PRL_ORACLE_DIR",
                        os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import oracle_env  # noqa: E402,F401  (threads, seeds, shims)
import torch  # noqa: E402
import s3prl  # noqa: E402
import s3prl.hub as hub  # noqa: E402

sys.path.insert(0, os.path.dirname(s3prl.__file__))  # the expert imports upstream.* as top-level packages
from optimizers import get_optimizer  # noqa: E402
from upstream.distiller.model import DistillerConfig  # noqa: E402

DISTILLER = {
    "extractor_mode": "default", "extractor_conv_feature_layers": "[(48, 10, 5)] + [(48, 3, 2)] * 4 + [(48, 2, 2)] * 2",
    "extractor_dropout": 0.0, "feature_grad_mult": 0.1, "conv_pos": 16, "conv_pos_groups": 4,
    "encoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64, "encoder_attention_heads": 4,
    "activation_fn": "gelu", "layer_norm_first": False, "attention_type": "original",
    "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "encoder_layerdrop": 0.0,
    "final_dim": 32, "out_layer_type": "expand-last", "n_tasks": 2, "task_emb_type": "expand-last",
    "loss_type": "l1", "feat_pen_loss": 0.5, "cosine_loss": 1.0, "pred_layer_id": [1, 2],
    "init_teacher_conv_layers": True, "init_teacher_encoder_layers": True}


LEFT_OUT = re.compile(r"feature_extractor\.conv_layers\.[2-5]\..*")


def sha256(tensor):
    return hashlib.sha256(tensor.detach().float().contiguous().numpy().tobytes()).hexdigest()


def kept(tensors):
    return {k: v.detach().clone() for k, v in tensors if not LEFT_OUT.fullmatch(k)}


class AttrDict(dict):
    """Stand-in for easydict.EasyDict (attribute access to the teacher section)."""

    __getattr__ = dict.__getitem__


def load_expert(expert_dir):
    sys.modules["easydict"] = types.SimpleNamespace(EasyDict=AttrDict)
    for name in ("pretrain.distiller", "pretrain.distiller.dataset"):
        sys.modules[name] = types.SimpleNamespace(OnlineWaveDataset=None)
    spec = importlib.util.spec_from_file_location("distiller_expert", os.path.join(expert_dir, "pretrain_expert.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(out, expert_dir, teacher_ckpt):
    expert = load_expert(expert_dir)
    teacher = hub.hubert_local(ckpt=teacher_ckpt)
    torch.hub.load = lambda *args, **kwargs: teacher  # the original downloads its teacher by name
    config = {"distiller": DISTILLER, "teacher": {"model": "hubert_local", "n_layers": 2,
                                                 "path": os.path.basename(teacher_ckpt)},
              "task": {"sequence_length": 250000}, "audio": {"target_level": None}}
    torch.manual_seed(0)
    model = expert.DistillerForPretrain(DistillerConfig(DISTILLER), AttrDict(config["teacher"]))
    model.train()
    model.teacher.eval()  # deterministic targets (ours runs its teacher in eval mode)
    initial = {k: v.clone() for k, v in model.distiller.state_dict().items()}
    heads = {k: v for k, v in initial.items() if k.startswith("output_layer.")}  # random, not from the teacher
    g = torch.Generator().manual_seed(3)
    wavs = 0.1 * torch.randn(2, 8000, generator=g)
    lengths = torch.tensor([8000, 8000])
    with torch.no_grad():
        hs = model.teacher([w for w in wavs])["hidden_states"]
        targets = torch.stack([hs[i] for i in DISTILLER["pred_layer_id"]], dim=1)  # (B, N, T, D)
    loss, other = model(wavs, [w for w in wavs], lengths, torch.ones(2, 8000), return_other=True)
    loss.backward()
    grads = kept((k, p.grad) for k, p in model.distiller.named_parameters())
    optimizer = get_optimizer([model.distiller], 10, {"name": "AdamW_with_schedule", "lr": 1e-2,
                                                      "warmup_proportion": 0.3, "betas": [0.9, 0.98], "eps": 1e-6,
                                                      "weight_decay": 1e-6})
    torch.nn.utils.clip_grad_norm_(model.distiller.parameters(), 5.0)
    optimizer.step()
    after = kept(model.distiller.named_parameters())
    case = {"config": config, "initial_sha256": {k: sha256(v) for k, v in initial.items()}, "initial_heads": heads,
            "wavs": wavs, "targets": targets, "loss": loss.detach(),
            "rec_loss": other["rec_loss"].detach(), "sim_loss": other["sim_loss"].detach(),
            "feat_pen": other["feat_pen"].detach(), "grads": grads,
            "optimizer": {"lr": 1e-2, "total_steps": 10, "warmup_proportion": 0.3, "betas": [0.9, 0.98],
                          "eps": 1e-6, "after_one_step": after}}
    torch.save(case, os.path.join(out, "distiller_objective.pt"))
    print("wrote", os.path.join(out, "distiller_objective.pt"), float(loss))


if __name__ == "__main__":
    main(*sys.argv[1:4])
