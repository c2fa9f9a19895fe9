"""fairseq 0.12.2's side of tests/fixtures/w2v1_train_oracle (run IN THE FAIRSEQ ORACLE VENV; called by
make_w2v1_train_fixtures.py). Only fairseq's public classes are used; nothing is copied.

    PY cfg IN.json OUT.json   IN: {name: [flags...]} -> {name: cfg} as fairseq-train composes each command line
                              (options.get_training_parser + parse_args_and_arch + convert_namespace_to_omegaconf):
                              the model, criterion, optimizer, lr_scheduler and optimization sections
    PY cosine OUT.pt          fairseq's CosineLRSchedule: the learning rate after step_update(n), n = 0, 1, ...
                              for several settings (the seed's two, warm-up 0, t_mult 2 with a shrink)
    PY init IN.json OUT.json  IN: {name: [flags...]} -> {name: {parameter: [shape, mean, std, kurtosis]}} of a FRESH
                              fairseq ``Wav2VecModel`` built from each command line's cfg (torch seed 0)
"""

import json
import sys

import torch
from omegaconf import OmegaConf


def compose(flags):
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, input_args=flags)
    cfg = convert_namespace_to_omegaconf(args)
    keep = ("model", "criterion", "optimizer", "lr_scheduler", "optimization")
    return {k: OmegaConf.to_container(cfg[k], resolve=True, enum_to_str=True) for k in keep}


COSINE = {  # name: (settings, update counts)
    "seed_wav2vec": ({"lr": 0.005, "min_lr": 1e-6, "warmup_updates": 500, "warmup_init_lr": 1e-7,
                      "max_update": 400000}, list(range(0, 1200)) + list(range(1200, 400011, 997)) + [399999, 400000]),
    "seed_vq": ({"lr": 1e-5, "min_lr": 1e-6, "warmup_updates": 1000, "warmup_init_lr": 1e-7, "max_update": 400000},
                list(range(0, 1500)) + list(range(1500, 400011, 1013))),
    "no_warmup_default_init": ({"lr": 0.01, "min_lr": 0.0, "warmup_updates": 0, "warmup_init_lr": -1,
                                "max_update": 50}, list(range(0, 120))),
    "warmup_default_init": ({"lr": 0.01, "min_lr": 1e-3, "warmup_updates": 7, "warmup_init_lr": -1,
                             "max_update": 40}, list(range(0, 60))),
    "t_mult_2_shrink": ({"lr": 0.02, "min_lr": 1e-4, "warmup_updates": 10, "warmup_init_lr": 0.0, "max_update": 2000,
                         "t_mult": 2.0, "lr_period_updates": 30, "lr_shrink": 0.5}, list(range(0, 600))),
    "period_given": ({"lr": 0.003, "min_lr": 1e-5, "warmup_updates": 3, "warmup_init_lr": 1e-6, "max_update": 100,
                      "lr_period_updates": 17, "lr_shrink": 0.3}, list(range(0, 110))),
}


def cosine(out):
    from fairseq.optim.adam import FairseqAdam
    from fairseq.optim.lr_scheduler.cosine_lr_scheduler import CosineLRSchedule

    result = {}
    for name, (settings, updates) in COSINE.items():
        s = {"t_mult": 1.0, "lr_period_updates": -1, "lr_shrink": 0.1, **settings}
        param = torch.nn.Parameter(torch.zeros(2))
        opt = FairseqAdam(OmegaConf.create({"adam_betas": "(0.9, 0.999)", "adam_eps": 1e-8, "weight_decay": 0.0,
                                            "use_old_adam": False, "fp16_adam_stats": False, "tpu": False,
                                            "lr": [s["lr"]]}), [param])
        sched = CosineLRSchedule(OmegaConf.create({**{k: v for k, v in s.items() if k != "lr"}, "lr": [s["lr"]]}),
                                 opt)
        lrs = []
        for n in updates:
            sched.step_update(n)
            lrs.append(opt.get_lr())
        result[name] = {"settings": settings, "updates": torch.tensor(updates),
                        "lrs": torch.tensor(lrs, dtype=torch.float64)}
    torch.save(result, out)


def init_stats(flags):
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models.wav2vec.wav2vec import Wav2VecModel

    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), input_args=flags))
    torch.manual_seed(0)
    out = {}
    for name, p in Wav2VecModel(cfg.model).state_dict().items():
        x = p.double().flatten()
        std = float(x.std()) if x.numel() > 1 else 0.0
        kurt = float(((x - x.mean()) ** 4).mean() / std ** 4) if std > 0 else 0.0
        out[name] = [list(p.shape), float(x.mean()), std, kurt]
    return out


if __name__ == "__main__":
    if sys.argv[1] in ("cfg", "init"):
        commands = json.load(open(sys.argv[2]))
        run = compose if sys.argv[1] == "cfg" else init_stats
        json.dump({name: run(flags) for name, flags in commands.items()}, open(sys.argv[3], "w"), indent=1)
    else:
        cosine(sys.argv[2])
