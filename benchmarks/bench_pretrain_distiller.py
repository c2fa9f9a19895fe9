"""DistilHuBERT pre-training step: ours (cached teacher targets / teacher online) vs the original, 1 CPU thread.

Same teacher file (a HuBERT Base-size checkpoint, e.g. a random one from the oracle's make_ckpt.py), the
preset DistilHuBERT student (2 layers, 3 heads: teacher layers 4, 8, 12) initialised from it, the same batch
(B x seconds of noise-like audio at equal lengths), dropout on, fp32. Timed: one training step (forward,
backward, AdamW_with_schedule step) and, separately, the teacher's forward that the cache removes from every
step after the first epoch.

    .venv/bin/python benchmarks/bench_pretrain_distiller.py ours TEACHER.pt EXPERT_DIR
    cd / && ~/.cache/s3prl-oracle/venv/bin/python /work/main/benchmarks/bench_pretrain_distiller.py original \\
        TEACHER.pt EXPERT_DIR

EXPERT_DIR holds the original ``pretrain_expert.py`` (git show HEAD:s3prl/pretrain/distiller/pretrain_expert.py
of github.com/s3prl/s3prl), used by the ``original`` mode only, as in tests/oracle/make_pretrain_distiller_fixtures.py.
"""

import os
import sys
import time

import torch

torch.set_num_threads(1)
B, SECONDS, REPEAT = 2, 4, 3


def timed(fn, repeat=REPEAT):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def wavs():
    return 0.1 * torch.randn(B, 16000 * SECONDS, generator=torch.Generator().manual_seed(0))


def step(optimizer, loss):
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 5.0)
    optimizer.step()


def ours(teacher_path, _expert_dir):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from s3prl.pretrain import config, distiller, mam

    model, _ = config.presets("distiller")
    model["teacher"].update(model="hubert_local", path=teacher_path)
    teacher = distiller.build_teacher(model, torch.device("cpu"))
    torch.manual_seed(0)
    objective = distiller.DistillerObjective(model, teacher).train()
    x, lengths = wavs(), torch.full((B,), 16000 * SECONDS)
    conv = objective.student.cfg.conv_layers
    teacher_time = timed(lambda: distiller.teacher_targets(teacher, [4, 8, 12], x, lengths, conv))
    targets, _ = distiller.teacher_targets(teacher, [4, 8, 12], x, lengths, conv)
    optimizer = mam.AdamWWithSchedule(objective, objective.parameters(), 2e-4, 1000, 0.07, betas=(0.9, 0.98),
                                      eps=1e-6, plain=distiller.no_decay_ids(objective))
    cached = timed(lambda: step(optimizer, objective(distiller.DistillBatch(x, lengths, targets, []))))
    objective.teacher = teacher  # teacher.cache: false (the teacher runs in the step)
    online = timed(lambda: step(optimizer, objective(distiller.DistillBatch(x, lengths, None, []))))
    report("ours", teacher_time, cached, online)


def original_main(teacher_path, expert_dir):
    sys.path.insert(0, os.environ.get("S3PRL_ORACLE_DIR", "/work/shared/tools/s3prl-oracle"))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
    import make_pretrain_distiller_fixtures as fx  # the oracle set-up and the expert loader (oracle venv)
    import s3prl.hub as hub
    from optimizers import get_optimizer
    from upstream.distiller.model import DistillerConfig

    expert = fx.load_expert(expert_dir)
    teacher = hub.hubert_local(ckpt=teacher_path)
    torch.hub.load = lambda *args, **kwargs: teacher
    conf = dict(BASE_DISTILLER)
    torch.manual_seed(0)
    model = expert.DistillerForPretrain(DistillerConfig(conf), fx.AttrDict({"model": "hubert_local", "n_layers": 12}))
    model.train()
    model.teacher.eval()
    x = wavs()
    orig, lengths, mask = [w for w in x], torch.full((B,), 16000 * SECONDS), torch.ones(B, 16000 * SECONDS)
    with torch.no_grad():
        teacher_time = timed(lambda: model.teacher(orig))
    optimizer = get_optimizer([model.distiller], 1000, {"name": "AdamW_with_schedule", "lr": 2e-4,
                                                        "warmup_proportion": 0.07, "betas": [0.9, 0.98], "eps": 1e-6,
                                                        "weight_decay": 1e-6})
    whole = timed(lambda: step(optimizer, model(x, orig, lengths, mask)[0]))
    report("original", teacher_time, None, whole)


# the original's pretrain/distiller/config_model.yaml with the released model's heads (as our preset)
BASE_DISTILLER = {
    "extractor_mode": "default", "extractor_conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
    "extractor_dropout": 0.0, "feature_grad_mult": 0.1, "conv_pos": 128, "conv_pos_groups": 16,
    "encoder_layers": 2, "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
    "activation_fn": "gelu", "layer_norm_first": False, "attention_type": "original", "dropout": 0.1,
    "attention_dropout": 0.1, "activation_dropout": 0.1, "encoder_layerdrop": 0.0, "final_dim": 768,
    "out_layer_type": "expand-last", "n_tasks": 3, "task_emb_type": "expand-last", "loss_type": "l1",
    "feat_pen_loss": 0.0, "cosine_loss": 1.0, "pred_layer_id": [4, 8, 12], "init_teacher_conv_layers": True,
    "init_teacher_encoder_layers": True}


def report(who, teacher_time, cached, online):
    cached_text = f"{cached * 1000:.0f} ms" if cached is not None else "n/a (no cache)"
    print(f"{who}: B={B} x {SECONDS} s; teacher forward {teacher_time * 1000:.0f} ms; step with cached targets "
          f"{cached_text}; step with the teacher online {online * 1000:.0f} ms")


if __name__ == "__main__":
    mode, teacher_file, expert_folder = sys.argv[1:4]
    (original_main if mode == "original" else ours)(teacher_file, expert_folder)
