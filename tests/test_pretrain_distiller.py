"""``s3prl pretrain -u distiller`` (DistilHuBERT).

Against the ORIGINAL code (fixtures from tests/oracle/make_pretrain_distiller_fixtures.sh; the original
pre-training expert is taken from the original repository at generation time only):
* initialisation from the teacher: the student's CNN, projection, positional conv and layers equal the
  original ``DistillerForPretrain``'s after it copied them from the same teacher file;
* objective: same weights and waveforms -> the same teacher targets, loss terms and gradients;
* one step of the original ``AdamW_with_schedule`` (its name-based weight-decay groups) -> the same weights;
* a checkpoint written by our command loads in the original ``distiller_local`` (its dump) and in ours alike.
Independent derivation: the masked loss of a padded batch written out with loops.
Resume: an interrupted run (``--stop-after``; SIGKILL in the slow test) resumed equals an uninterrupted one.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from parity import compare_with_dump, load_dump  # noqa: E402

from s3prl.cli import build_parser  # noqa: E402
from s3prl.nn import S3PRLUpstream  # noqa: E402
from s3prl.pretrain import config as config_io  # noqa: E402
from s3prl.pretrain import distiller, mam  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "pretrain"
TEACHER = Path(__file__).parent / "fixtures" / "oracle" / "hubert_tiny.pt"  # a tiny random HuBERT (oracle format)

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(**distiller_conf) -> dict:
    model, _ = config_io.presets("distiller")
    model["distiller"].update(
        extractor_conv_feature_layers="[(48, 10, 5)] + [(48, 3, 2)] * 4 + [(48, 2, 2)] * 2", encoder_embed_dim=32,
        encoder_ffn_embed_dim=64, encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4, final_dim=32,
        n_tasks=2, pred_layer_id=[1, 2], **distiller_conf)
    model["teacher"].update(model="hubert_local", path=str(TEACHER), n_layers=2)
    model["task"]["sequence_length"] = 6400
    return model


@pytest.fixture(scope="module")
def ref():
    return torch.load(FIXTURES / "distiller_objective.pt", weights_only=True)


def sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().float().contiguous().numpy().tobytes()).hexdigest()


def objective_of(ref, original_heads: bool = True) -> tuple[distiller.DistillerObjective, torch.nn.Module]:
    """Our objective on the fixture's configuration and teacher; with ``original_heads`` the random prediction
    heads are the original's, which makes the whole student the original's initial one."""
    model = tiny_model()
    model["distiller"].update(ref["config"]["distiller"])
    teacher = distiller.build_teacher(model, torch.device("cpu"))
    torch.manual_seed(0)
    objective = distiller.DistillerObjective(model, teacher)
    if original_heads:
        state = objective.parts()["Distiller"].state_dict()
        objective.parts()["Distiller"].load_state_dict({**state, **ref["initial_heads"]})
        assert {k: sha256(v) for k, v in objective.parts()["Distiller"].state_dict().items()} == \
            ref["initial_sha256"]
    return objective, teacher


def original_grad(ref_grads: dict, name: str) -> torch.Tensor | None:
    """The original's tensor for our parameter ``name`` (None: left out of the fixture)."""
    if distiller.original_name(name) not in ref_grads:
        return None
    match = re.fullmatch(distiller.QKV, name)
    if match:  # our fused q/k/v = the original's three projections stacked
        return torch.cat([ref_grads[f"encoder.layers.{match[1]}.self_attn.{w}_proj.{match[2]}"] for w in "qkv"])
    return ref_grads[distiller.original_name(name)]


def test_initialisation_from_the_teacher_equals_the_original(ref):
    objective, _ = objective_of(ref, original_heads=False)
    ours = objective.parts()["Distiller"].state_dict()
    assert ours.keys() == ref["initial_sha256"].keys()
    for key, want in ref["initial_sha256"].items():
        if key.startswith("output_layer."):  # the prediction heads are random (not from the teacher)
            assert ours[key].shape == ref["initial_heads"][key].shape
            continue
        assert sha256(ours[key]) == want, key  # bit-identical copies of the teacher (or default LayerNorm)


def test_objective_and_gradients_equal_the_original(ref):
    objective, teacher = objective_of(ref)
    objective.train()
    lengths = torch.tensor([8000, 8000])
    targets, _ = distiller.teacher_targets(teacher, [1, 2], ref["wavs"], lengths,
                                           objective.student.cfg.conv_layers)
    assert (targets - ref["targets"]).abs().max().item() <= 1e-5  # our teacher = the original's hidden states
    terms = objective.terms(distiller.DistillBatch(ref["wavs"], lengths, targets, []))
    for key in ("loss", "rec_loss", "sim_loss", "feat_pen"):
        assert abs(terms[key].item() - ref[key].item()) <= 1e-5, key
    terms["loss"].backward()
    compared = 0
    for name, p in objective.student.named_parameters():
        want = original_grad(ref["grads"], name)
        if want is not None:
            assert (p.grad - want).abs().max().item() <= 1e-6, name
            compared += 1
    assert compared == len(list(objective.student.parameters())) - 4  # all but conv_layers.2-5


def test_adamw_with_schedule_step_equals_the_original(ref):
    objective, teacher = objective_of(ref)
    opt = ref["optimizer"]
    optimizer = mam.AdamWWithSchedule(objective, objective.parameters(), opt["lr"], opt["total_steps"],
                                      opt["warmup_proportion"], betas=tuple(opt["betas"]), eps=opt["eps"],
                                      plain=distiller.no_decay_ids(objective))
    lengths = torch.tensor([8000, 8000])
    targets, _ = distiller.teacher_targets(teacher, [1, 2], ref["wavs"], lengths, objective.student.cfg.conv_layers)
    objective(distiller.DistillBatch(ref["wavs"], lengths, targets, [])).backward()
    torch.nn.utils.clip_grad_norm_(objective.parameters(), 5.0)
    optimizer.step()
    for name, p in objective.student.named_parameters():
        want = original_grad(opt["after_one_step"], name)
        if want is not None:
            assert (p.detach() - want).abs().max().item() <= 1e-5, name


@pytest.mark.parametrize("loss_type", ["l1", "l2"])
def test_loss_of_a_padded_batch_equals_a_direct_derivation(loss_type):
    g = torch.Generator().manual_seed(0)
    B, N, T, D, C = 3, 2, 7, 5, 4
    pred, target, feat = torch.randn(B, N, T, D, generator=g), torch.randn(B, N, T, D, generator=g), \
        torch.randn(B, T, C, generator=g)
    frames = [7, 4, 2]
    valid = torch.arange(T)[None, :] < torch.tensor(frames)[:, None]
    got = distiller.distill_loss(pred, target, feat, valid, loss_type, cosine=0.7, feat_pen=0.3)
    rec, sim, pen, count = 0.0, 0.0, 0.0, sum(frames)
    for b in range(B):
        for t in range(frames[b]):
            pen += sum(float(feat[b, t, c]) ** 2 for c in range(C)) / C
            for n in range(N):
                p, y = pred[b, n, t].tolist(), target[b, n, t].tolist()
                rec += sum(abs(a - c) if loss_type == "l1" else (a - c) ** 2 for a, c in zip(p, y)) / D
                cos = sum(a * c for a, c in zip(p, y)) / (np.linalg.norm(p) * np.linalg.norm(y))
                sim += np.log1p(np.exp(-cos))  # -log(sigmoid(cos))
    rec, sim, pen = rec / (count * N), sim / (count * N), pen / count
    assert abs(got["rec_loss"].item() - rec) < 1e-5 and abs(got["sim_loss"].item() - sim) < 1e-5
    assert abs(got["feat_pen"].item() - pen) < 1e-5
    assert abs(got["loss"].item() - (rec + 0.7 * sim + 0.3 * pen)) < 1e-5


def test_cosine_term_is_the_log_sigmoid_of_torch_cosine_similarity():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(2, 3, 6, 8, generator=g), torch.randn(2, 3, 6, 8, generator=g)
    got = distiller.distill_loss(pred, target, torch.zeros(2, 6, 4), torch.ones(2, 6, dtype=torch.bool), "l1",
                                 cosine=1.0, feat_pen=0.0)
    want = -F.logsigmoid(F.cosine_similarity(pred, target, dim=-1)).mean()
    assert abs(got["sim_loss"].item() - want.item()) < 1e-6


def test_our_checkpoint_loads_in_the_original_and_ours_alike():
    path = FIXTURES / "distiller_pretrained.ckpt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["Method"] == "distiller" and {"Distiller", "Config", "Runner_Config"} <= set(ckpt)
    assert set(ckpt["Config"]) == {"distiller", "teacher", "task", "audio"}  # what distiller_local reads
    dump = load_dump(FIXTURES / "distiller_pretrained.states.pt")
    err = compare_with_dump(S3PRLUpstream("distiller_local", path_or_url=str(path)).eval(), dump)
    assert err["single"] <= 1e-5 and err["batch"] <= 1e-5, err


def write_wavs(folder: Path, lengths=(5000, 6000, 7000, 8000, 9000)) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, n in enumerate(lengths):
        t = np.arange(n) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.05 * rng.standard_normal(n)
        sf.write(folder / f"u{i}.wav", wav.astype("float32"), 16000)


COMMON = ("config.pretrain_expert.datarc.audio_dir=wavs,,config.pretrain_expert.datarc.train_batch_size=2,,"
          "config.runner.total_steps=6,,config.runner.save_step=2,,config.runner.fp16=false,,config.optimizer.lr=0.001")


def run(*argv):
    args = build_parser().parse_args(["pretrain", "--quiet", *argv])
    return args.run(args)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_wavs(tmp_path / "wavs")
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(tiny_model()))
    return tmp_path


def test_resume_is_exact_and_the_cache_is_reused(workdir):
    run("-u", "distiller", "-g", "model.yaml", "-o", COMMON, "-n", "whole")
    run("-u", "distiller", "-g", "model.yaml", "-o", COMMON, "-n", "parts", "--stop-after", "3",
        "--cache-dir", "result/pretrain/whole/features")
    run("-n", "parts", "-a", "--cache-dir", "result/pretrain/whole/features")
    whole, parts = (torch.load(workdir / f"result/pretrain/{n}/states-6.ckpt", weights_only=True)
                    for n in ("whole", "parts"))
    assert all(torch.equal(whole["Distiller"][k], parts["Distiller"][k]) for k in whole["Distiller"])
    assert not torch.equal(whole["Distiller"]["output_layer.2.weight"],
                           torch.load(workdir / "result/pretrain/whole/states-2.ckpt",
                                      weights_only=True)["Distiller"]["output_layer.2.weight"])  # it did learn
    log = (workdir / "result/pretrain/parts/log.txt").read_text()
    assert "features: 0 computed, 5 read" in log  # the teacher ran once per file, in the first run only
    hs, _ = S3PRLUpstream("distiller_local", path_or_url=str(workdir / "result/pretrain/whole/states-6.ckpt"))(
        torch.randn(1, 8000) * 0.1, torch.tensor([8000]))
    assert len(hs) == 1 + 2 + 2 and hs[-1].shape == (1, 25, 32)


def test_online_teacher_equals_cached_targets(workdir):
    """teacher.cache: false runs the teacher on each crop; for files within sequence_length the targets, and so
    the whole run, are those of the cached teacher."""
    model = tiny_model()
    model["task"]["sequence_length"] = 0  # no crop
    (workdir / "model.yaml").write_text(yaml.safe_dump(model))
    run("-u", "distiller", "-g", "model.yaml", "-o", COMMON, "-n", "cached")
    run("-u", "distiller", "-g", "model.yaml", "-o", COMMON + ",,upstream.teacher.cache=false", "-n", "online")
    a, b = (torch.load(workdir / f"result/pretrain/{n}/states-6.ckpt", weights_only=True)["Distiller"]
            for n in ("cached", "online"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5


def test_crop_targets_are_the_whole_file_targets_on_the_same_frames(workdir):
    model = tiny_model()
    teacher = distiller.build_teacher(model, torch.device("cpu"))
    conv = distiller.student_config(model)[0].conv_layers
    extract = distiller.cache_extractor(teacher, model, conv)
    path = str(workdir / "wavs/u4.wav")
    from s3prl.audio import load_audio

    wav = load_audio(path)
    batch = distiller.collate(model, conv)([extract(wav)], [path], __import__("random").Random(5), None)
    whole, _ = distiller.teacher_targets(teacher, [1, 2], wav[None], torch.tensor([wav.numel()]), conv)
    crop = batch.wavs[0]
    start = next(s for s in range(0, wav.numel() - crop.numel() + 1, 320) if torch.equal(wav[s:s + crop.numel()],
                                                                                         crop))
    frames = batch.targets.size(2)
    assert crop.numel() == 6400 and frames == 19
    assert torch.equal(batch.targets[0], whole[0, :, start // 320: start // 320 + frames])


def test_bad_inputs_are_named(workdir):
    with pytest.raises(ValueError, match="apc pre-training checkpoint, not distiller"):
        run("-u", "distiller", "-e", str(FIXTURES / "apc_pretrained.ckpt"))
    model = tiny_model()
    model["distiller"]["pred_layer_id"] = [1, 5]
    (workdir / "bad.yaml").write_text(yaml.safe_dump(model))
    with pytest.raises(ValueError, match=r"pred_layer_id \[1, 5\].*hidden states 0..2"):
        run("-u", "distiller", "-g", "bad.yaml", "-o", COMMON, "-n", "bad")
    with pytest.raises(ValueError, match="teacher.model = 'no_such_model'"):
        run("-u", "distiller", "-g", "model.yaml", "-o", COMMON + ",,upstream.teacher.model=no_such_model", "-n", "x")
    apc = f"upstream.teacher.model=apc_local,,upstream.teacher.path={FIXTURES / 'apc_pretrained.ckpt'}"
    with pytest.raises(ValueError, match=r"frame every \[160\] samples, the student .* every 320"):
        run("-u", "distiller", "-g", "model.yaml", "-o", COMMON + ",," + apc, "-n", "y")
    with pytest.raises(ValueError, match="unknown config key 'distiller.n_task'"):
        (workdir / "typo.yaml").write_text(yaml.safe_dump({"distiller": {"n_task": 3}}))
        config_io.load("distiller", str(workdir / "typo.yaml"), None)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_then_resumed_run_equals_an_uninterrupted_one(workdir, sig):
    """SIGKILL: the run loses what followed its last checkpoint and resumes from it; SIGTERM: it saves at the end
    of the current step and stops. Either way the resumed run ends with the uninterrupted run's weights."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "s3prl.cli", "pretrain", "--quiet", "-u", "distiller", "-g", "model.yaml", "-o",
            COMMON.replace("save_step=2", "save_step=1").replace("total_steps=6", "total_steps=40")]
    subprocess.run(base + ["-n", "whole"], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(base + ["-n", "cut", "--cache-dir", "result/pretrain/whole/features"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((workdir / "result/pretrain/cut").glob("states-1[0-9].ckpt")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait()
    assert not (workdir / "result/pretrain/cut/states-40.ckpt").exists()
    subprocess.run([sys.executable, "-m", "s3prl.cli", "pretrain", "--quiet", "-n", "cut", "-a", "--cache-dir",
                    "result/pretrain/whole/features"], check=True, env=env, capture_output=True)
    a, b = (torch.load(workdir / f"result/pretrain/{n}/states-40.ckpt", weights_only=True)["Distiller"]
            for n in ("whole", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_distiller_learns_on_real_recordings(tmp_path, monkeypatch):
    """40 steps of a tiny student of the tiny HuBERT teacher on LibriSpeech test-other (mini): the loss of the last
    10 steps is clearly below that of the first 10 (docs/pretrain.md records a 400-step run and its curve)."""
    import json

    root = os.environ.get("S3PRL_TEST_DATA")
    if not root or not os.path.isdir(os.path.join(root, "librispeech_test_other_mini")):
        pytest.skip("S3PRL_TEST_DATA is not set or missing")
    monkeypatch.chdir(tmp_path)
    model = tiny_model(encoder_layers=1)
    model["task"]["sequence_length"] = 32000
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(model))
    run("-u", "distiller", "-n", "real", "-g", "model.yaml", "-o",
        f"config.pretrain_expert.datarc.audio_dir={root}/librispeech_test_other_mini,,"
        "config.pretrain_expert.datarc.train_batch_size=8,,config.runner.total_steps=40,,config.runner.log_step=1,,"
        "config.runner.save_step=40,,config.optimizer.lr=0.001,,config.runner.fp16=false")
    losses = [json.loads(line)["loss"] for line in open(tmp_path / "result/pretrain/real/history.jsonl")]
    assert sum(losses[-10:]) / 10 < 0.9 * sum(losses[:10]) / 10, (losses[:10], losses[-10:])
