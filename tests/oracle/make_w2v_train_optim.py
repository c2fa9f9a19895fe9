"""fairseq 0.12.2's ``adam`` optimizer + ``polynomial_decay`` schedule on a fixed gradient sequence (run IN THE
FAIRSEQ ORACLE VENV; called by make_w2v_train_fixtures.py): the learning rate of every update and the parameter
after it, for tests/test_wav2vec2_train.py. Only fairseq's public classes are used; nothing is copied."""

import sys

import torch
from omegaconf import OmegaConf

from fairseq.optim.adam import FairseqAdam
from fairseq.optim.lr_scheduler.polynomial_decay_schedule import PolynomialDecayLRSchedule

out = sys.argv[1]
torch.manual_seed(0)
settings = {"lr": 5e-4, "betas": "(0.9, 0.98)", "eps": 1e-6, "weight_decay": 0.01, "warmup": 4, "total": 10,
            "end": 1e-5, "power": 2.0, "updates": 14}
param = torch.nn.Parameter(torch.randn(6, dtype=torch.float64))
start = param.detach().clone()
grads = torch.randn(settings["updates"], 6, dtype=torch.float64)
opt_cfg = OmegaConf.create({"adam_betas": settings["betas"], "adam_eps": settings["eps"],
                            "weight_decay": settings["weight_decay"], "use_old_adam": True,
                            "fp16_adam_stats": False, "tpu": False, "lr": [settings["lr"]]})
optimizer = FairseqAdam(opt_cfg, [param])
sched_cfg = OmegaConf.create({"warmup_updates": settings["warmup"], "force_anneal": None,
                              "end_learning_rate": settings["end"], "power": settings["power"],
                              "total_num_update": settings["total"], "lr": [settings["lr"]]})
scheduler = PolynomialDecayLRSchedule(sched_cfg, optimizer)
lrs, params = [], []
for n in range(settings["updates"]):
    lrs.append(optimizer.get_lr())
    param.grad = grads[n].clone()
    optimizer.step()
    scheduler.step_update(n + 1)
    params.append(param.detach().clone())
torch.save({"settings": settings, "start": start, "grads": grads, "lrs": torch.tensor(lrs, dtype=torch.float64),
            "params": torch.stack(params), "optimizer_class": type(optimizer._optimizer).__module__ + "." +
            type(optimizer._optimizer).__name__}, out)
print(f"wrote {out}: lrs {lrs}")
