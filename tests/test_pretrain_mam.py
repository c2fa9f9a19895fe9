"""``s3prl pretrain`` for Mockingjay, TERA, Audio ALBERT and the SpecAugment-Transformer.

Against the ORIGINAL s3prl (fixtures from tests/oracle/make_pretrain_fixtures.sh):
* masking decisions: the same seeds give bit-identical altered inputs, target positions, attention masks and
  kept utterances (time spans with and without overlap, variable widths, the 80/10/10 dice, frequency bands,
  magnitude noise), 16 seeds x 3 configurations, and the SpecAugment task's masks (16 seeds);
* objective: same weights and masked batch -> same loss and gradients (share_layer included);
* optimizer: ``AdamW_with_schedule`` gives the original's weights after each of 3 steps;
* checkpoints written by our command load in the original (its dump) and in ours with the same hidden states
  (SpecAugment: through the original's ``tera_local``, the same expert class; its 0.4.18 hub has no
  ``spec_augment_local``) and a pre-LN Mockingjay. The SpecAugment objective is the Mockingjay one, checked above.
"""

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from parity import compare_with_dump, load_dump  # noqa: E402

from s3prl.cli import build_parser  # noqa: E402
from s3prl.nn import S3PRLUpstream  # noqa: E402
from s3prl.pretrain import config as config_io  # noqa: E402
from s3prl.pretrain import mam  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "pretrain"
METHODS = ["mockingjay", "tera", "audio_albert"]


pytestmark = pytest.mark.usefixtures("one_thread")


def objective_from(ref: dict) -> mam.MAMObjective:
    objective = mam.MAMObjective(ref["config"])
    parts = objective.parts()
    parts["Transformer"].load_state_dict(ref["state"]["Transformer"])
    parts["SpecHead"].load_state_dict(ref["state"]["SpecHead"])
    return objective.train()


def batch_of(ref: dict) -> mam.MAMBatch:
    return mam.MAMBatch(ref["spec_masked"], ref["mask_label"], ref["attn_mask"], ref["spec_target"], [])


def original_grad_name(objective: mam.MAMObjective, name: str) -> str:
    part, _, rest = name.partition(".")
    return f"Transformer.{mam.original_names(rest, objective.cfg)[0]}" if part == "Transformer" else name


@pytest.mark.parametrize("case", ["time", "tera", "widths", "spec_augment"])
def test_masking_decisions_equal_the_original(case):
    ref = torch.load(FIXTURES / "mam_masking.pt", weights_only=True)[case]
    target = ref["target"] if ref["target"] is not None else ref["inputs"]
    alter = mam.spec_augment_batch if case == "spec_augment" else mam.mask_batch
    for seed, want in enumerate(ref["results"]):
        masked, label, attn, tgt, _ = alter(ref["inputs"], target, ref["task"], random.Random(seed),
                                            torch.Generator().manual_seed(seed))
        assert torch.equal(masked, want["spec_masked"]), seed
        assert torch.equal(label, want["mask_label"]) and torch.equal(attn, want["attn_mask"]), seed
        assert torch.equal(tgt, want["spec_target"]), seed


@pytest.mark.parametrize("method", METHODS + ["mockingjay_preln"])
def test_objective_and_gradients_equal_the_original(method):
    ref = torch.load(FIXTURES / f"{method}_objective.pt", weights_only=True)
    objective = objective_from(ref)
    written = objective.parts()["Transformer"].state_dict()  # our checkpoint layout = the original's keys
    assert written.keys() == ref["state"]["Transformer"].keys()
    loss = objective(batch_of(ref))
    loss.backward()
    assert abs(loss.item() - ref["loss"].item()) <= 1e-5
    named = {name: p for name, p in objective.named_parameters() if p.grad is not None}  # pre-LN: the per-layer
    assert len(named) == len(ref["grads"])  # output norms are off the loss's path, in the original as here
    for name, p in named.items():
        assert (p.grad - ref["grads"][original_grad_name(objective, name)]).abs().max().item() <= 1e-5, name


def test_adamw_with_schedule_equals_the_original():
    ref = torch.load(FIXTURES / "tera_objective.pt", weights_only=True)
    objective = objective_from(ref)
    opt = ref["optimizer"]
    optimizer = mam.AdamWWithSchedule(objective, objective.parameters(), opt["config"]["lr"], opt["total_steps"],
                                      opt["config"]["warmup_proportion"])
    for step, want in enumerate(opt["params"]):
        optimizer.zero_grad()
        objective(batch_of(ref)).backward()
        torch.nn.utils.clip_grad_norm_(objective.parameters(), 5.0)
        optimizer.step()
        for name, p in objective.named_parameters():
            assert (p - want[original_grad_name(objective, name)]).abs().max().item() <= 1e-5, (step, name)


@pytest.mark.parametrize("method", METHODS + ["spec_augment", "mockingjay_preln"])
def test_our_checkpoint_loads_in_the_original_and_ours_alike(method):
    path = FIXTURES / f"{method}_pretrained.ckpt"
    ckpt = torch.load(path, weights_only=True)
    dump = load_dump(FIXTURES / f"{method}_pretrained.states.pt")
    method = method.removesuffix("_preln")
    assert ckpt["Upstream_Config"]["transformer"]["pre_layer_norm"] == path.name.startswith("mockingjay_preln")
    assert ckpt["Method"] == method and {"Transformer", "SpecHead", "Upstream_Config", "Config"} <= set(ckpt)
    err = compare_with_dump(S3PRLUpstream(f"{method}_local", path_or_url=str(path)).eval(), dump)
    assert err["single"] <= 1e-5 and err["batch"] <= 1e-5, err


def tiny_model(method: str) -> dict:
    model, _ = config_io.presets(method)
    model["transformer"].update(hidden_size=16, num_attention_heads=2, intermediate_size=32)
    model["task"].update(position_encoding_size=16, sequence_length=40)
    return model


def test_resume_is_exact_and_albert_checkpoint_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wavs").mkdir()
    rng = np.random.default_rng(0)
    for i, n in enumerate((5000, 6000, 7000, 8000, 6500)):
        sf.write(tmp_path / f"wavs/u{i}.wav", (0.1 * rng.standard_normal(n)).astype("float32"), 16000)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(tiny_model("audio_albert")))
    common = ["pretrain", "--quiet", "-u", "audio_albert", "-g", "model.yaml", "-o",
              "config.pretrain_expert.datarc.audio_dir=wavs,,config.pretrain_expert.datarc.train_batch_size=2,,"
              "config.runner.total_steps=5,,config.runner.gradient_accumulate_steps=2,,config.runner.save_step=5"]

    def run(*argv):
        args = build_parser().parse_args(list(argv))
        return args.run(args)

    run(*common, "-n", "whole")
    run(*common, "-n", "parts", "--stop-after", "2")
    run("pretrain", "--quiet", "-n", "parts", "-a")
    whole, parts = (torch.load(tmp_path / f"result/pretrain/{n}/states-5.ckpt", weights_only=True)
                    for n in ("whole", "parts"))
    for key in ("Transformer", "SpecHead"):
        assert whole[key].keys() == parts[key].keys()
        assert all(torch.equal(whole[key][k], parts[key][k]) for k in whole[key]), key
    assert "encoder.layer.2.attention.self.query.weight" in whole["Transformer"]  # ALBERT: every index written
    model = S3PRLUpstream("audio_albert_local", path_or_url=str(tmp_path / "result/pretrain/whole/states-5.ckpt"))
    hs, lens = model.eval()(torch.randn(1, 8000) * 0.1, torch.tensor([8000]))
    assert len(hs) == 4 and hs[-1].shape == (1, 50, 16)


def test_bad_mam_configs_are_named(tmp_path):
    model = tiny_model("tera")
    model["task"]["mask_proportio"] = 0.1
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(model))
    with pytest.raises(ValueError, match="unknown config key 'task.mask_proportio'"):
        config_io.load("tera", str(tmp_path / "typo.yaml"), None)
    model = tiny_model("tera")
    model["task"]["position_encoding_size"] = 8
    with pytest.raises(ValueError, match="position_encoding_size"):
        config_io.validate("tera", model, config_io.presets("tera")[1])
