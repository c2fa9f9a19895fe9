"""wav2vec 2.0 CTC fine-tuning (fairseq ``wav2vec_ctc`` + ``ctc`` criterion): parity with fairseq 0.12.2.

Fixtures: tests/oracle/make_w2v_ft_fixtures.py (fairseq oracle). Expected values are fairseq's (loss, lprobs,
gradients, masks, learning rates, the shipped recipe yaml, emissions of a checkpoint we wrote) or derived here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from s3prl.wav2vec2 import finetune_recipes as recipes
from s3prl.wav2vec2.ctc_model import Vocabulary, from_fairseq
from s3prl.wav2vec2.finetune import (CtcBatch, FineTuneConfig, Wav2Vec2CtcObjective, collate_targets, ctc_loss,
                                     fairseq_finetuned_checkpoint, fairseq_finetuned_state_dict, finetune_config,
                                     from_fairseq_finetuned, from_pretrained, letter_targets, train_step)

FIX = Path(__file__).parent / "fixtures"
TOL = dict(rtol=1e-5, atol=1e-5)
# Gradients and emissions are float32 sums over thousands of terms: their rounding noise scales with the tensor's
# magnitude and with the CPU's kernels (measured on an AMD EPYC: our float32 gradients differ from our float64
# ones by up to 9.4e-6 x max|g|, fairseq's float32 ones from our float64 ones by up to 6.3e-6 x max|g|), so those
# are compared at 5e-5 of the tensor's largest magnitude (at least 1) instead of an absolute 1e-5.
SCALED = 5e-5


def assert_close_scaled(ours: torch.Tensor, ref: torch.Tensor, msg: str = "") -> None:
    ours, ref = ours.detach().double(), ref.double()
    assert ours.shape == ref.shape, msg
    finite = ref.isfinite()
    assert torch.equal(ours.isfinite(), finite), f"{msg}: not finite in different places"
    assert torch.equal(ours[~finite].nan_to_num(), ref[~finite].nan_to_num()), f"{msg}: different infinities"
    ours, ref = ours[finite], ref[finite]
    limit = SCALED * max(float(ref.abs().max()), 1.0) if ref.numel() else 0.0
    diff = float((ours - ref).abs().max()) if ref.numel() else 0.0
    assert diff <= limit, f"{msg} max |ours - fairseq| {diff:.3g} > {limit:.3g}"
# the oracle zeroes every dropout / layerdrop of the model in train mode: ours the same
NO_DROPOUT = dict(layerdrop=0.0, activation_dropout=0.0, dropout=0.0, attention_dropout=0.0, dropout_input=0.0,
                  final_dropout=0.0)


@pytest.fixture(scope="module")
def fx():
    return torch.load(FIX / "w2v_ft_loss.pt", weights_only=True)


@pytest.fixture(scope="module")
def ckpt():
    return torch.load(FIX / "w2v_ft_ckpt.pt", weights_only=True)


def batch_of(d) -> CtcBatch:
    return CtcBatch(d["wav_int16"].float() / 32768, d["wav_len"], d["target"])


def fairseq_grads(model) -> dict:
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return fairseq_finetuned_state_dict(model, grads)


def test_checkpoint_settings_are_the_recipe(ckpt):
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", Vocabulary.fairseq(ckpt["dictionary"]))
    f = model.ftcfg
    assert (f.apply_mask, f.mask_prob, f.mask_channel_prob, f.layerdrop, f.feature_grad_mult) == (
        True, 0.65, 0.5, 0.1, 0.0)
    assert f.zero_infinity and f.sentence_avg and f.freeze_finetune_updates == 0
    assert model.proj.weight.shape == (32, 32)
    assert model.vocabulary.symbols == ckpt["dictionary"]


def test_loss_lprobs_gradients_equal_fairseq(fx, ckpt):
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", **NO_DROPOUT).train()
    model.set_num_updates(fx["num_updates"])
    b = batch_of(fx)
    out = model(b.wavs, b.wavs_len, mask_indices=fx["mask_indices"], mask_channel_indices=fx["mask_channel_indices"])
    assert torch.equal(out.lengths, fx["input_lengths"])
    res = ctc_loss(out.logits, out.lengths, b.targets, model.ftcfg)
    torch.testing.assert_close(res.lprobs, fx["lprobs"], **TOL)
    assert res.sample_size == fx["sample_size"] == 2  # sentence_avg
    assert math.isclose(float(res.loss.detach()), fx["loss"], rel_tol=1e-5)
    assert {k: v for k, v in res.log.items() if k != "loss"} == {
        k: v for k, v in fx["logging_output"].items() if k != "loss"}
    res.loss.backward()
    ours = fairseq_grads(model)
    assert sorted(ours) == sorted(fx["grads"])
    none = sorted(set(fairseq_finetuned_state_dict(model)) - set(ours))
    assert none == sorted(fx["grads_none"])  # feature_grad_mult 0: the CNN gets no gradient
    for key, ref in fx["grads"].items():
        assert_close_scaled(ours[key], ref, key)


def test_freeze_finetune_updates_only_proj_trains(fx, ckpt):
    ref = fx["frozen"]
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", freeze_finetune_updates=5, **NO_DROPOUT).train()
    model.set_num_updates(ref["num_updates"])
    assert model.frozen
    b = batch_of(ref)
    out = model(b.wavs, b.wavs_len, mask_indices=ref["mask_indices"], mask_channel_indices=ref["mask_channel_indices"])
    res = ctc_loss(out.logits, out.lengths, b.targets, model.ftcfg)
    assert math.isclose(float(res.loss.detach()), ref["loss"], rel_tol=1e-5)
    res.loss.backward()
    ours = fairseq_grads(model)
    assert sorted(ours) == sorted(ref["grads"]) == ["w2v_encoder.proj.bias", "w2v_encoder.proj.weight"]
    assert sorted(set(fairseq_finetuned_state_dict(model)) - set(ours)) == sorted(ref["grads_none"])
    for key, value in ref["grads"].items():
        assert_close_scaled(ours[key], value, key)
    # the frozen forward is the same computation: proj gradients equal the unfrozen run's
    assert_close_scaled(ref["grads"]["w2v_encoder.proj.weight"], fx["grads"]["w2v_encoder.proj.weight"])
    model.set_num_updates(5)
    assert not model.frozen


def test_objective_freezes_encoder_for_n_optimizer_steps(fx, ckpt):
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", freeze_finetune_updates=2, **NO_DROPOUT).train()
    objective = Wav2Vec2CtcObjective(model)
    opt = objective.attach(torch.optim.Adam(objective.parameters(), lr=1e-3))
    b = batch_of(fx)
    enc0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        loss = objective(b)
        assert math.isclose(float(loss.detach()) * objective.last_log["sample_size"], objective.last_log["loss"], rel_tol=1e-6)
        loss.backward()
        opt.step()
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, enc0[n])}
        if step < 1:
            assert changed == {"proj.weight", "proj.bias"}
    assert int(objective.num_updates) == 3
    assert "mask_emb" in changed and any(n.startswith("model.encoder.") for n in changed)
    assert not any(n.startswith("model.feature_extractor.") for n in changed)  # feature_grad_mult 0


def test_train_step_scales_by_sample_size(fx, ckpt):
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", **NO_DROPOUT).train()
    res = train_step(model, batch_of(fx), num_updates=0, mask_indices=fx["mask_indices"],
                     mask_channel_indices=fx["mask_channel_indices"])
    ours = fairseq_grads(model)
    assert_close_scaled(ours["w2v_encoder.proj.weight"] * res.sample_size, fx["grads"]["w2v_encoder.proj.weight"])


def test_masks_only_in_training_and_drawn_from_generator(fx, ckpt):
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", **NO_DROPOUT)
    b = batch_of(fx)
    model.eval()
    out = model(b.wavs, b.wavs_len)
    assert out.mask_indices is None and out.mask_channel_indices is None
    model.train()
    a = model(b.wavs, b.wavs_len, generator=torch.Generator().manual_seed(3))
    c = model(b.wavs, b.wavs_len, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.mask_indices, c.mask_indices) and torch.equal(a.logits, c.logits)
    counts = a.mask_indices.sum(1)
    assert bool((counts == counts[0]).all()) and int(counts[0]) >= 2  # require_same_masks, min_masks 2
    assert tuple(a.mask_channel_indices.shape) == (2, 32)
    model.ftcfg.apply_mask = False
    assert model(b.wavs, b.wavs_len).mask_indices is None


# --- tri-stage schedule and recipes ------------------------------------------------------------------------


def derived_tri_stage(lr, max_update, ratios, init_scale, final_scale, n):
    """The tri-stage formula written from its definition (linear warm-up from init_scale*lr, hold, exponential
    decay to final_scale*lr over the decay steps, then constant)."""
    w, h, d = (int(max_update * r) for r in ratios)
    if n < w:
        return init_scale * lr + (lr - init_scale * lr) * n / w
    if n < w + h:
        return lr
    if n <= w + h + d:
        return lr * final_scale ** ((n - w - h) / d)
    return final_scale * lr


def test_tri_stage_equals_fairseq_step_by_step():
    ref = torch.load(FIX / "w2v_ft_lr.pt", weights_only=True)
    assert set(ref) == {*recipes.PRESETS, "small"}
    for name, case in ref.items():
        c = case["cfg"]
        rate = recipes.tri_stage(c["lr"][0], c["max_update"], c["phase_ratio"], c.get("init_lr_scale", 0.01),
                                 c["final_lr_scale"])
        assert list(rate.stages) == case["stages"], name
        if name != "small":
            assert recipes.schedule(recipes.preset(name)).stages == rate.stages
        for n, value in zip(case["steps"], case["lr"]):
            assert math.isclose(rate(n), value, rel_tol=1e-9, abs_tol=1e-15), (name, n, rate(n), value)
            derived = derived_tri_stage(c["lr"][0], c["max_update"], c["phase_ratio"], c.get("init_lr_scale", 0.01),
                                        c["final_lr_scale"], n)
            assert math.isclose(rate(n), derived, rel_tol=1e-9), (name, n)


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def test_presets_equal_the_shipped_recipes():
    shipped = json.loads((FIX / "w2v_ft_recipes.json").read_text())
    assert set(shipped) == set(recipes.PRESETS)
    for name, yaml in shipped.items():
        ours = recipes.preset(name)
        assert set(ours) == set(yaml), name
        for section, values in yaml.items():
            for key, value in values.items():
                if value == "???":  # w2v_path / data: the user's
                    continue
                mine = _plain(ours[section].get(key))
                if key == "adam_betas":
                    mine = "(" + ",".join(str(x) for x in mine) + ")"
                if isinstance(value, str) and isinstance(mine, float):  # YAML 1.1 reads 1e-08 as a string;
                    value = float(value)  # fairseq's typed config turns it into a float
                assert mine == value, (name, section, key, mine, value)
            extra = set(ours[section]) - set(values)
            assert not extra, (name, section, extra)
    cfg = finetune_config(recipes.preset("base_10m"))
    assert (cfg.freeze_finetune_updates, cfg.mask_channel_prob, cfg.mask_channel_length, cfg.sentence_avg,
            cfg.zero_infinity, cfg.apply_mask) == (10000, 0.25, 64, True, True, True)
    with pytest.raises(KeyError, match="known: base_10m"):
        recipes.preset("base_5h")


# --- criterion details -----------------------------------------------------------------------------------


def levenshtein(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_valid_error_counts_follow_fairseq_definition():
    pytest.importorskip("rapidfuzz")
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "|", "A", "B", "C"]
    voc = Vocabulary.fairseq(symbols)
    path = [5, 5, 0, 6, 4, 0, 7, 7, 4, 5, 0]  # A A _ B | _ C C | A _  -> units A B | C | A
    T, V = 14, len(symbols)
    logits = torch.full((1, T, V), -5.0)
    logits[0, torch.arange(len(path)), torch.tensor(path)] = 5.0
    logits[0, len(path):, 7] = 5.0  # past the valid length: ignored
    target = collate_targets([[5, 6, 4, 6, 4, 5, 2]])  # "A B | B | A" + </s> (dropped)
    res = ctc_loss(logits, torch.tensor([len(path)]), target, FineTuneConfig(), voc, training=False)
    hyp_units, ref_units = [5, 6, 4, 7, 4, 5], [5, 6, 4, 6, 4, 5]
    assert res.log["c_errors"] == levenshtein(ref_units, hyp_units) == 1 and res.log["c_total"] == 6
    assert res.log["w_errors"] == res.log["wv_errors"] == levenshtein(["AB", "B", "A"], ["AB", "C", "A"]) == 1
    assert res.log["w_total"] == 3
    # the loss itself: torch's ctc on the same log-probabilities, blank 0, targets without pad / eos
    lp = torch.log_softmax(logits[:, :len(path)], -1).transpose(0, 1)
    want = torch.nn.functional.ctc_loss(lp, torch.tensor([[5, 6, 4, 6, 4, 5]]), torch.tensor([len(path)]),
                                        torch.tensor([6]), blank=0, reduction="sum")
    assert math.isclose(float(res.loss.detach()), float(want), rel_tol=1e-6)
    assert res.sample_size == 6  # ntokens unless sentence_avg


def test_zero_infinity_and_padding():
    logits = torch.randn(2, 3, 6)
    targets = collate_targets([[4, 5, 4, 5, 4], [5]])  # 5 labels in 3 frames: impossible
    inf = ctc_loss(logits, torch.tensor([3, 2]), targets, FineTuneConfig(zero_infinity=False))
    zero = ctc_loss(logits, torch.tensor([3, 2]), targets, FineTuneConfig(zero_infinity=True))
    assert math.isinf(float(inf.loss)) and math.isfinite(float(zero.loss))
    assert torch.equal(zero.lprobs[2, 1], torch.tensor([0.0] + [float("-inf")] * 5))  # padded frame -> blank


# --- checkpoints -----------------------------------------------------------------------------------------


def test_written_checkpoint_loads_in_fairseq_with_same_emissions(fx, ckpt, tmp_path):
    """The oracle ran OUR one-step update and writer, then fairseq's loader + dump on the file: redo both here."""
    ref = torch.load(FIX / "w2v_ft_ours_dump.pt", weights_only=True)
    model = from_fairseq_finetuned(ckpt, "w2v_ft_ckpt.pt", layerdrop=0.0, activation_dropout=0.0).train()
    b = batch_of(fx)
    train_step(model, b, num_updates=0, mask_indices=fx["mask_indices"],
               mask_channel_indices=fx["mask_channel_indices"])
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= ref["sgd_lr"] * p.grad
    (tmp_path / "dict.ltr.txt").write_text("".join(f"{s} 1\n" for s in ckpt["dictionary"][4:]))
    path = tmp_path / "ours.pt"
    torch.save(fairseq_finetuned_checkpoint(model, str(tmp_path), num_updates=1), path)
    written = torch.load(path, weights_only=True)
    assert set(written["model"]) == set(ckpt["model"])
    # fairseq's emissions of that file (each utterance alone, and the padded batch)
    inference = from_fairseq(written, str(path))
    for i, single in enumerate(ref["single"]):
        n = int(b.wavs_len[i])
        ours, _ = inference(b.wavs[i:i + 1, :n], b.wavs_len[i:i + 1])
        assert_close_scaled(ours, single["emissions"], f"utterance {i}")
    model.eval()
    ours, _ = model.emissions(b.wavs, b.wavs_len)
    assert_close_scaled(ours, ref["batch"]["emissions"], "batch")
    # the file reloads into the training model with the same weights
    again = from_fairseq_finetuned(written, str(path))
    for (n, p), (_, q) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(p, q), n


def test_from_pretrained_fairseq_file(tmp_path):
    pre = torch.load(FIX / "w2v_loss_base_ckpt.pt", weights_only=True)
    path = tmp_path / "pre.pt"
    torch.save(pre, path)
    voc = Vocabulary.fairseq(["<s>", "<pad>", "</s>", "<unk>", "|", "A", "B"])
    model = from_pretrained(str(path), voc, finetune_config(recipes.preset("base_100h"), mask_channel_length=4))
    state = fairseq_finetuned_state_dict(model)
    for key, value in pre["model"].items():
        name = "w2v_encoder.w2v_model." + key
        if key.startswith(("quantizer.", "project_q.", "final_proj.")):
            assert name not in state
        else:
            assert torch.equal(state[name], value.float()), key
    assert model.proj.weight.shape == (7, 24) and float(model.proj.bias.detach().abs().sum()) == 0.0
    (tmp_path / "dict.ltr.txt").write_text("| 1\nA 1\nB 1\n")
    ck = fairseq_finetuned_checkpoint(model, str(tmp_path))
    assert ck["cfg"]["model"]["w2v_args"]["model"]["_name"] == "wav2vec2"
    inference = from_fairseq(ck, "written")
    wav = torch.randn(1, 8000)
    model.eval()
    torch.testing.assert_close(inference(wav, torch.tensor([8000]))[0], model.emissions(wav, torch.tensor([8000]))[0])
    with pytest.raises(FileNotFoundError, match="w2v_path"):
        from_pretrained(str(tmp_path / "missing.pt"), voc, FineTuneConfig())


def test_bad_options_are_clear():
    with pytest.raises(ValueError, match="mask_prob"):
        FineTuneConfig(mask_prob=1.5).check()
    with pytest.raises(ValueError, match="post_process"):
        FineTuneConfig(post_process="sentencepiece").check()


@pytest.mark.slow
def test_real_recordings_fine_tuning_learns(tmp_path):
    """Two real LibriSpeech utterances (first 2 s, their first words as targets), fine-tuned from a tiny
    pre-trained file with the objective, fairseq's Adam and a tri-stage schedule; the encoder is frozen for the
    first updates. The loss must fall well below its start (overfitting proves the pipeline, not accuracy)."""
    import os

    import soundfile as sf

    from s3prl.wav2vec2.train import FairseqAdam

    root = os.path.join(os.environ.get("S3PRL_TEST_DATA", ""), "librispeech_test_other_mini", "3005")
    if not os.environ.get("S3PRL_TEST_DATA") or not os.path.isdir(root):
        pytest.skip("S3PRL_TEST_DATA (../shared/data) is not set")
    with open(os.path.join(root, "3005-163389.trans.txt")) as f:
        texts = dict(line.strip().split(" ", 1) for line in f)
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]
    voc = Vocabulary.fairseq(symbols)
    wavs, targets = [], []
    for uid in ("3005-163389-0000", "3005-163389-0001"):
        audio, sr = sf.read(os.path.join(root, f"{uid}.flac"), dtype="float32")
        wavs.append(torch.from_numpy(audio[:2 * sr]))
        targets.append(letter_targets(" ".join(texts[uid].split()[:3]), voc))
    batch = CtcBatch(torch.stack(wavs), torch.tensor([len(w) for w in wavs]), collate_targets(targets))
    pre = torch.load(FIX / "w2v_loss_base_ckpt.pt", weights_only=True)
    torch.save(pre, tmp_path / "pre.pt")
    torch.manual_seed(0)
    model = from_pretrained(str(tmp_path / "pre.pt"), voc, finetune_config(
        recipes.preset("base_10m"), mask_channel_length=4, freeze_finetune_updates=10)).train()
    objective = Wav2Vec2CtcObjective(model)
    rate = recipes.tri_stage(3e-3, 120, (0.1, 0.4, 0.5), final_lr_scale=0.05)
    opt = objective.attach(FairseqAdam(objective.parameters(), 3e-3, (0.9, 0.98), 1e-8, 0.0, rate))
    losses = []
    for _ in range(120):
        opt.zero_grad(set_to_none=True)
        loss = objective(batch)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert int(objective.num_updates) == 120
    print("loss every 20 updates:", [round(x, 2) for x in losses[::20]], "last", round(losses[-1], 2))
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10, losses[::10]
