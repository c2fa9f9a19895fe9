"""Masked-acoustic-model fixtures for tests/test_pretrain_mam.py, from the ORIGINAL s3prl (run in the oracle venv).

    python make_pretrain_mam_fixtures.py OUT_DIR [CASE ...]

* masking: the original ``generate_masked_acoustic_model_data`` on small random batches for many seeds
  (``random.seed(s)`` and ``torch.manual_seed(s)`` before each call, 16 seeds) and three task configurations
  (time masking with overlap; TERA time+frequency+noise without overlap; variable span widths) and the
  SpecAugment pre-training task (``generate_spec_aug_data``);
* objective: per method (and ``mockingjay_preln``: a pre-LN transformer), a tiny original
  ``TransformerForMaskedAcousticModel`` (its own initialisation, dropout 0), one masked batch, the original
  pre-trainer's loss and every parameter's gradient (those that have one: pre-LN's per-layer output norms do not);
* optimizer: the original ``AdamW_with_schedule`` (``get_optimizer``) on the TERA case, 3 steps of that batch's
  gradients (clipped to 5.0 as the runner does), every parameter after each step.
"""

import os
import random
import sys
import types

ORACLE = os.environ.get("S3PRL_ORACLE_DIR",
                        os.path.join(os.path.dirname(__file__), "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))

import oracle_env  # noqa: E402,F401  (threads, seeds, shims)
import torch  # noqa: E402
import s3prl  # noqa: E402

# the original pre-training modules import as top-level packages from the s3prl folder; the dataset and plot
# helpers they import need pandas / matplotlib, which are not used here
import torch._dynamo  # noqa: E402,F401  (imported before the pandas stand-in: it probes for pandas)

sys.path.insert(0, os.path.dirname(s3prl.__file__))
sys.modules.setdefault("pandas", types.ModuleType("pandas"))
_plots = types.ModuleType("utility.audio")
_plots.plot_spectrogram_to_numpy = None
sys.modules["utility.audio"] = _plots
from pretrain.mockingjay.pretrain_expert import TransformerForMaskedAcousticModel  # noqa: E402
from pretrain.mockingjay.task import generate_masked_acoustic_model_data  # noqa: E402
from pretrain.spec_augment.task import generate_spec_aug_data  # noqa: E402
from optimizers import get_optimizer  # noqa: E402
from upstream.mockingjay.model import TransformerConfig  # noqa: E402

TASK = {"loss": "L1", "sequence_length": 1500, "position_encoding_size": 32, "mask_proportion": 0.15,
        "mask_consecutive_min": 7, "mask_consecutive_max": 7, "mask_allow_overlap": True, "mask_bucket_ratio": 1.5,
        "mask_frequency": 0.0, "noise_proportion": 0.0}
TASKS = {
    "time": dict(TASK),
    "tera": dict(TASK, mask_allow_overlap=False, mask_frequency=0.2, noise_proportion=0.5),
    "widths": dict(TASK, mask_consecutive_min=2, mask_consecutive_max=9, mask_proportion=0.3),
    "spec_augment": {"loss": "L1", "sequence_length": 1500, "position_encoding_size": 32, "mask_T": 8, "mask_F": 3,
                     "num_T": 2, "num_F": 2, "p": 1.0},
}
TRANSFORMER = {"input_dim": -1, "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2,
               "intermediate_size": 64, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
               "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
               "share_layer": False, "pre_layer_norm": False}
KALDI = {"kaldi": {"feat_type": "fbank", "fbank": {"num_mel_bins": 80, "frame_length": 25.0, "frame_shift": 10.0,
                                                   "use_log_fbank": True}},
         "delta": {"order": 2, "win_length": 5}, "cmvn": {"use_cmvn": True}}


def stft_audio(target_type):
    side = lambda kind, ch: {"feat_type": kind, "channel": ch, "log": True, "delta": 0, "cmvn": True}  # noqa: E731
    return {"target_level": -25, "win_ms": 25, "hop_ms": 10, "n_freq": 201, "n_mels": 80, "n_mfcc": 13,
            "input": side("mel", 0), "target": side(target_type, 1)}


METHODS = {  # name -> (transformer, task, audio, input dim, target dim or None: the input is the target)
    "mockingjay": (TRANSFORMER, TASKS["time"], KALDI, 240, None),
    "tera": (TRANSFORMER, TASKS["tera"], stft_audio("mel"), 80, 80),
    "audio_albert": (dict(TRANSFORMER, share_layer=True), TASKS["widths"], stft_audio("linear"), 80, 201),
    "mockingjay_preln": (dict(TRANSFORMER, pre_layer_norm=True), TASKS["time"], KALDI, 240, None),
}


def padded_batch(lengths, dim, generator):
    x = torch.randn(len(lengths), max(lengths), dim, generator=generator)
    for b, n in enumerate(lengths):
        x[b, n:] = 0
    return x


def masking_cases():
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, task in TASKS.items():
        inputs, target = padded_batch([40, 33, 21, 6], 10, g), None
        if name != "time":
            target = padded_batch([40, 33, 21, 6], 10, g)  # frequency masks index the target by input channel
        results = []
        for seed in range(16):
            random.seed(seed)
            torch.manual_seed(seed)
            spec = (inputs.clone(),) if target is None else (inputs.clone(), target.clone())
            generate = generate_spec_aug_data if name == "spec_augment" else generate_masked_acoustic_model_data
            masked, _, label, attn, tgt = generate(spec, config=task)
            results.append({"spec_masked": masked, "mask_label": label, "attn_mask": attn, "spec_target": tgt})
        out[name] = {"task": task, "inputs": inputs, "target": target, "results": results}
    return out


def objective_case(name):
    transformer, task, audio, in_dim, out_dim = METHODS[name]
    torch.manual_seed(0)
    config = TransformerConfig(transformer)
    config.loss = task["loss"]
    model = TransformerForMaskedAcousticModel(config, in_dim, output_dim=out_dim)
    model.train()
    g = torch.Generator().manual_seed(1)
    lengths = [40, 35, 24, 9]
    inputs = padded_batch(lengths, in_dim, g)
    spec = (inputs,) if out_dim is None else (inputs, padded_batch(lengths, out_dim, g))
    random.seed(5)
    torch.manual_seed(5)
    masked, pos_enc, label, attn, target = generate_masked_acoustic_model_data(spec, config=task)
    pos_enc = pos_enc.expand(masked.size(0), *pos_enc.size())  # as the pre-trainer's forward
    state = {"Transformer": {k: v.clone() for k, v in model.Transformer.state_dict().items()},
             "SpecHead": {k: v.clone() for k, v in model.SpecHead.state_dict().items()}}
    loss, _ = model(masked, pos_enc, label, attn, target)
    loss.backward()
    # pre-LN: the per-layer output norms are not on the loss's path (no gradient)
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    upstream_config = {"transformer": transformer, "task": task, "audio": audio}
    case = {"config": upstream_config, "state": state, "spec_masked": masked, "mask_label": label,
            "attn_mask": attn, "spec_target": target, "loss": loss.detach(), "grads": grads}
    if name == "tera":
        case["optimizer"] = optimizer_case(model, (masked, pos_enc, label, attn, target))
    return case


def optimizer_case(model, batch):
    opt_config = {"name": "AdamW_with_schedule", "lr": 1e-2, "warmup_proportion": 0.3}
    optimizer = get_optimizer([model], 10, opt_config)
    after = []
    for _ in range(3):
        optimizer.zero_grad()
        loss, _ = model(*batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        after.append({k: p.detach().clone() for k, p in model.named_parameters()})
    return {"config": opt_config, "total_steps": 10, "params": after}


if __name__ == "__main__":
    out = sys.argv[1]
    names = sys.argv[2:]  # optional: only these objective cases (no masking cases)
    if not names:
        torch.save(masking_cases(), os.path.join(out, "mam_masking.pt"))
    for name in names or METHODS:
        torch.save(objective_case(name), os.path.join(out, f"{name}_objective.pt"))
    print("wrote", out)
