"""wav2vec 2.0 pre-training objective vs fairseq 0.12.2 (fixtures from tests/oracle/make_w2v_loss_fixtures.py).

The checkpoints were written by fairseq's trainer and the loss dumps by fairseq's own criterion on the same batch;
here our model loads the same checkpoint, replays fairseq's masks, negatives and Gumbel noise, and must give the
same logits, every loss term and every gradient. Masking statistics and the Gumbel temperature schedule are
compared with fairseq's ``compute_mask_indices`` / ``GumbelVectorQuantizer`` outputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from s3prl.convert.errors import CheckpointFormatError
from s3prl.wav2vec2.criterion import train_step, wav2vec2_loss
from s3prl.wav2vec2.masking import compute_span_mask, sample_negatives
from s3prl.wav2vec2.pretraining import Wav2Vec2PreTraining, fairseq_state_dict, from_fairseq
from s3prl.wav2vec2.quantizer import GumbelVectorQuantizer, gumbel_temperature

FIX = Path(__file__).parent / "fixtures"
SCENARIOS = ["base", "large"]


def load(name):
    ckpt = torch.load(FIX / f"w2v_loss_{name}_ckpt.pt", weights_only=True)
    dump = torch.load(FIX / f"w2v_loss_{name}_dump.pt", weights_only=True)
    return ckpt, dump


def no_dropout(model: Wav2Vec2PreTraining) -> Wav2Vec2PreTraining:
    """What the oracle did to fairseq's model: every dropout / layer-drop probability to 0, train mode."""
    p = model.pcfg
    p.dropout_input = p.dropout_features = p.encoder_layerdrop = 0.0
    model.cfg.dropout = 0.0
    for layer in model.model.encoder.layers:
        layer.dropout = layer.act_dropout = layer.attention.dropout = 0.0
    return model.train()


def batch(dump):
    wav = dump["wav_int16"].float() / 32768 if "wav_int16" in dump else dump["wav"]
    return wav, dump["wav_len"]


def replay(model, dump):
    wav, wav_len = batch(dump)
    model.set_num_updates(dump["num_updates"])
    return model(wav, wav_len, mask_indices=dump["mask_indices"], mask_channel_indices=dump["mask_channel_indices"],
                 neg_idxs=dump["neg_idxs"], gumbel_noise=dump["gumbel_noise"])


def prepared(name):
    ckpt, dump = load(name)
    model = no_dropout(from_fairseq(ckpt, f"w2v_loss_{name}_ckpt.pt"))
    if dump["task_normalize"]:  # fairseq's dataset normalized each whole utterance before cropping the batch
        assert model.cfg.normalize_waveform
        model.cfg.normalize_waveform = False
    return model, dump


@pytest.mark.parametrize("name", SCENARIOS)
def test_logits_and_loss_terms_equal_fairseq(name):
    model, dump = prepared(name)
    out = replay(model, dump)
    res = wav2vec2_loss(out, model.pcfg.loss_weights)
    ref = dump["logits"]
    assert res.logits.shape == ref.shape
    assert torch.equal(torch.isinf(res.logits), torch.isinf(ref))  # the same negatives dropped as == positive
    finite = torch.isfinite(ref)
    assert (res.logits[finite] - ref[finite]).abs().max() <= 1e-5
    assert res.sample_size == dump["sample_size"]
    assert list(model.pcfg.loss_weights) == dump["loss_weights"]
    assert set(res.terms) == set(dump["loss_terms"])
    for key, value in dump["loss_terms"].items():
        assert math.isclose(float(res.terms[key].detach()), value, rel_tol=1e-5, abs_tol=1e-5), key
    for key, value in dump["extra_losses"].items():
        assert math.isclose(float(res.extra_losses[key].detach()), value, rel_tol=1e-5, abs_tol=1e-6), key
    assert math.isclose(float(res.loss.detach()), dump["loss"], rel_tol=1e-5)
    log, ref_log = res.log, dump["logging_output"]
    assert set(log) == set(ref_log)
    for key in ("sample_size", "ntokens", "nsentences", "correct", "count"):
        assert log[key] == ref_log[key], key
    for key in ("loss", "loss_0", "loss_1", "loss_2", "prob_perplexity", "code_perplexity", "temp"):
        if key in ref_log:
            assert math.isclose(log[key], ref_log[key], rel_tol=1e-5, abs_tol=1e-6), key


@pytest.mark.parametrize("name", SCENARIOS)
def test_gradients_equal_fairseq(name):
    model, dump = prepared(name)
    wav, wav_len = batch(dump)
    res = train_step(model, wav, wav_len, num_updates=dump["num_updates"], mask_indices=dump["mask_indices"],
                     mask_channel_indices=dump["mask_channel_indices"], neg_idxs=dump["neg_idxs"],
                     gumbel_noise=dump["gumbel_noise"])
    grads = fairseq_state_dict(model, {n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    ref = dump["grads"]
    assert set(grads) == set(ref) and not dump["grads_none"]
    scale = res.sample_size  # train_step divides by sample_size, as fairseq's trainer does before the step
    for key, value in ref.items():
        expected = value / scale
        tol = 1e-5 * max(1.0, float(expected.abs().max()))
        assert (grads[key] - expected).abs().max() <= tol, key


def test_feature_grad_mult_scales_only_the_extractor():
    model, dump = prepared("base")
    wav, wav_len = batch(dump)
    replayed = dict(mask_indices=dump["mask_indices"], neg_idxs=dump["neg_idxs"], gumbel_noise=dump["gumbel_noise"])
    assert model.pcfg.feature_grad_mult == 0.1
    train_step(model, wav, wav_len, num_updates=dump["num_updates"], **replayed)
    scaled = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.pcfg.feature_grad_mult = 1.0
    train_step(model, wav, wav_len, num_updates=dump["num_updates"], **replayed)
    for n, p in model.named_parameters():
        factor = 0.1 if n.startswith("model.feature_extractor.") else 1.0
        assert torch.allclose(scaled[n], p.grad * factor, rtol=1e-4, atol=1e-7), n
    model.zero_grad()
    model.pcfg.feature_grad_mult = 0.0  # fairseq: extractor under no_grad
    train_step(model, wav, wav_len, num_updates=dump["num_updates"], **replayed)
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("model.feature_extractor."))


@pytest.mark.parametrize("name", SCENARIOS)
def test_fairseq_names_round_trip(name):
    ckpt, _ = load(name)
    model = from_fairseq(ckpt, name)
    back = fairseq_state_dict(model)
    assert set(back) == set(ckpt["model"])
    for key, value in ckpt["model"].items():  # the fixture stores the (float16-exact) weights as float16
        assert torch.equal(back[key], value.to(back[key].dtype)), key


def test_temperature_schedule_matches_fairseq_step_by_step():
    stats = torch.load(FIX / "w2v_loss_stats.pt", weights_only=True)
    for sched in stats["temperatures"]:
        start, end, decay = sched["temp"]
        q = GumbelVectorQuantizer(8, 4, tuple(sched["temp"]), 2, 8)
        for n, fairseq_value in zip(sched["steps"], sched["values"]):
            derived = start * decay**n if start * decay**n > end else end  # exponential decay, floored
            q.set_num_updates(n)
            assert q.curr_temp == pytest.approx(fairseq_value, rel=1e-12)
            assert q.curr_temp == pytest.approx(derived, rel=1e-12)
            assert gumbel_temperature(start, end, decay, n) == q.curr_temp
    # and through the model, every update of a short run
    ckpt, _ = load("base")
    model = from_fairseq(ckpt, "base")
    start, end, decay = model.pcfg.latent_temp
    for n in range(0, 50):
        model.set_num_updates(n)
        assert model.quantizer.curr_temp == pytest.approx(max(start * decay**n, end), rel=1e-12)


def test_mask_statistics_match_fairseq():
    stats = torch.load(FIX / "w2v_loss_stats.pt", weights_only=True)["masks"]
    gen = torch.Generator().manual_seed(0)
    draws = 800
    for name, ref in stats.items():
        B, T = ref["shape"]
        kw = dict(ref["kwargs"])
        lengths = None if ref["lengths"] is None else torch.tensor(ref["lengths"])
        freq = torch.zeros(B, T, dtype=torch.float64)
        counts = torch.zeros(B, T + 1, dtype=torch.float64)
        for _ in range(draws):
            m = compute_span_mask((B, T), lengths, kw["mask_prob"], kw["mask_length"], kw["mask_type"],
                                  kw.get("mask_other", 0.0), kw["min_masks"], kw["require_same_masks"],
                                  kw.get("mask_dropout", 0.0), generator=gen)
            if lengths is not None:  # never inside padding
                assert not (m & (torch.arange(T)[None] >= lengths[:, None])).any(), name
            if kw["require_same_masks"]:
                assert len(set(m.sum(1).tolist())) == 1, name
            freq += m
            counts[torch.arange(B), m.sum(1)] += 1
        freq, counts = freq / draws, counts / draws
        p = ref["frequency"]
        sigma = torch.sqrt(p * (1 - p) * (1 / draws + 1 / ref["draws"]))
        assert ((freq - p).abs() <= 5 * sigma + 0.01).all(), name
        grid = torch.arange(T + 1, dtype=torch.float64)
        ours_mean, ref_mean = (counts * grid).sum(1), (ref["count_hist"] * grid).sum(1)
        assert ((ours_mean - ref_mean).abs() <= 0.03 * ref_mean + 0.2).all(), (name, ours_mean, ref_mean)
        # whole count distributions: two-sample Kolmogorov-Smirnov bound (alpha ~ 1e-3 per row)
        ks = (counts.cumsum(1) - ref["count_hist"].cumsum(1)).abs().max(1).values
        assert (ks <= 2.0 * math.sqrt(1 / draws + 1 / ref["draws"])).all(), (name, ks)


def test_negatives_exclude_the_positive_and_are_uniform():
    gen = torch.Generator().manual_seed(1)
    B, M, K, X = 3, 5, 4, 2
    hits = torch.zeros(B * M, B * M)
    for _ in range(400):
        idx = sample_negatives(B, M, K, X, gen)
        assert idx.shape == (K + X, B, M)
        own = torch.arange(B * M).view(B, M)
        assert not (idx == own[None]).any()  # never the positive itself
        assert torch.equal(idx[:K] // M, torch.arange(B).view(1, B, 1).expand(K, B, M))  # same utterance
        for k in range(K + X):
            hits[own.reshape(-1), idx[k].reshape(-1)] += 1
    same = hits.view(B, M, B, M)
    for b in range(B):
        block = same[b, :, b, :]
        off = block[~torch.eye(M, dtype=torch.bool)]
        # within an utterance: 400 * (K / (M-1) + X / (B*M-1)) expected hits per (target, other frame)
        expected = 400 * (K / (M - 1) + X / (B * M - 1))
        assert (off - expected).abs().max() < 6 * math.sqrt(expected)


def test_generator_makes_a_step_reproducible_and_replayable():
    model, dump = prepared("base")
    wav, wav_len = batch(dump)
    a = model(wav, wav_len, generator=torch.Generator().manual_seed(5))
    b = model(wav, wav_len, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.logits, b.logits) and torch.equal(a.mask_indices, b.mask_indices)
    c = model(wav, wav_len, mask_indices=a.mask_indices, neg_idxs=a.neg_idxs, gumbel_noise=a.quantizer.noise)
    assert torch.equal(a.logits, c.logits)
    d = model(wav, wav_len, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a.mask_indices, d.mask_indices) or not torch.equal(a.neg_idxs, d.neg_idxs)
    noise = model.quantizer.draw_noise((20000,), torch.Generator().manual_seed(0))
    assert abs(float(noise.mean()) - 0.5772156649) < 0.03  # Gumbel(0, 1) mean: Euler's constant


def test_bad_replay_inputs_and_options_are_named():
    model, dump = prepared("base")
    wav, wav_len = batch(dump)
    with pytest.raises(ValueError, match="negative indices have shape"):
        model(wav, wav_len, mask_indices=dump["mask_indices"], neg_idxs=dump["neg_idxs"][:3])
    with pytest.raises(ValueError, match="gumbel noise has shape"):
        model(wav, wav_len, mask_indices=dump["mask_indices"], gumbel_noise=dump["gumbel_noise"][:5])
    uneven = dump["mask_indices"].clone()
    uneven[0, ~uneven[0]] = True
    with pytest.raises(ValueError, match="require_same_masks"):
        model(wav, wav_len, mask_indices=uneven)
    ckpt, _ = load("base")
    ckpt["cfg"]["model"]["codebook_negatives"] = 2
    with pytest.raises(CheckpointFormatError, match="codebook_negatives"):
        from_fairseq(ckpt, "x.pt")
    with pytest.raises(ValueError, match="no_mask_overlap"):
        compute_span_mask((2, 10), None, 0.5, 2, no_overlap=True)


def test_objective_for_the_training_loop_advances_the_temperature():
    from s3prl.wav2vec2.criterion import Wav2Vec2Batch, Wav2Vec2Objective

    model, dump = prepared("base")
    wav, wav_len = batch(dump)
    objective = Wav2Vec2Objective(model)
    class Hooks:  # what attach() uses of an optimizer (building a real one imports torch._dynamo: ~5 s here)
        def __init__(self):
            self.hooks = []

        def register_step_post_hook(self, hook):
            self.hooks.append(hook)

        def step(self):
            for hook in self.hooks:
                hook(self, (), {})

    optimizer = objective.attach(Hooks())
    torch.manual_seed(0)
    for step in range(3):
        loss = objective(Wav2Vec2Batch(wav, wav_len))
        start, end, decay = model.pcfg.latent_temp
        assert objective.last_log["temp"] == pytest.approx(max(start * decay**step, end), rel=1e-12)
        assert float(loss.detach()) * objective.last_log["sample_size"] == pytest.approx(objective.last_log["loss"],
                                                                                        rel=1e-6)
        objective.zero_grad()
        loss.backward()
        optimizer.step()
    assert int(objective.num_updates) == 3 and "num_updates" in objective.state_dict()


# ---------------------------------------------------------------------------------------------
# wav2vec (1.0) and vq-wav2vec
# ---------------------------------------------------------------------------------------------

V1 = ["wav2vec", "vq_gumbel", "vq_kmeans"]


def v1_run(name):
    from s3prl.wav2vec2 import wav2vec1_pretraining as w2v1

    ckpt, dump = load(name)
    model = w2v1.from_fairseq(ckpt, f"w2v_loss_{name}_ckpt.pt").train()  # the recipes' dropouts are all 0
    model.set_num_updates(dump["num_updates"])
    wav, _ = batch(dump)
    out = model(wav, neg_idxs=dump["neg_idxs"], gumbel_noise=dump["gumbel_noise"])
    res = w2v1.wav2vec_loss(out, model.pcfg)
    res.loss.backward()
    return model, out, res, ckpt, dump


@pytest.mark.parametrize("name", V1)
def test_wav2vec1_and_vq_wav2vec_losses_equal_fairseq(name):
    model, out, res, _, dump = v1_run(name)
    ref = dump["logits"]
    assert res.logits.shape == ref.shape
    assert (res.logits - ref).abs().max() <= 1e-5 * max(1.0, float(ref.abs().max()))
    assert torch.equal(out.targets, dump["targets"]) and out.weights is None and dump["target_weights"] is None
    assert res.sample_size == dump["sample_size"]
    assert set(res.terms) == set(dump["loss_terms"])
    for key, value in dump["loss_terms"].items():
        assert math.isclose(float(res.terms[key].detach()), value, rel_tol=1e-5), key
    for key, value in dump["extra_losses"].items():
        assert math.isclose(float(res.extra_losses[key].detach()), value, rel_tol=1e-5, abs_tol=1e-6), key
    assert set(res.log) == set(dump["logging_output"])
    for key, value in dump["logging_output"].items():
        assert math.isclose(res.log[key], value, rel_tol=1e-5), key


@pytest.mark.parametrize("name", V1)
def test_wav2vec1_and_vq_wav2vec_gradients_equal_fairseq(name):
    from s3prl.wav2vec2.wav2vec1_pretraining import fairseq_state_dict

    model, _, _, ckpt, dump = v1_run(name)
    grads = fairseq_state_dict(model, {n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert set(grads) == set(dump["grad_norms"]) and not dump["grads_none"]
    for key, norm in dump["grad_norms"].items():  # every tensor: its L2 norm
        assert abs(float(grads[key].double().norm()) - norm) <= 1e-5 * max(1.0, norm), key
    assert len(dump["grads"]) >= 10
    for key, value in dump["grads"].items():  # small tensors and the heads: element by element
        assert (grads[key] - value).abs().max() <= 1e-5 * max(1.0, float(value.abs().max())), key
    back = fairseq_state_dict(model)
    assert set(back) == set(ckpt["model"])
    assert all(torch.equal(back[k], v.to(back[k].dtype)) for k, v in ckpt["model"].items())


def test_wav2vec1_offset_is_the_receptive_field_in_frames():
    from s3prl.wav2vec2.wav2vec1_pretraining import auto_offset

    model, out, res, _, dump = v1_run("wav2vec")
    B, T = dump["neg_idxs"].shape[1:]
    steps = model.pcfg.prediction_steps
    # fairseq counted B * sum_i (T - offset - i) positives; that pins its offset down independently of ours
    assert res.sample_size == B * sum(T - model.pcfg.offset - i for i in range(steps))
    # receptive field of the seed's encoder: 10 + 7*5 + 3*20 + 3*40 + 3*80 = 465 samples, hop 160 -> 3 frames
    convs = [(512, 10, 5), (512, 8, 4)] + [(512, 4, 2)] * 3 + [(512, 1, 1)] * 2
    assert auto_offset(convs) == math.ceil(465 / 160) == 3
    assert auto_offset([(1, 3, 1), (1, 3, 1)]) == 5


def test_kmeans_quantizer_straight_through_and_codebook_loss():
    from s3prl.wav2vec2.quantizer import KmeansVectorQuantizer

    torch.manual_seed(0)
    q = KmeansVectorQuantizer(8, 5, 2, 8, gamma=0.25)
    x = torch.randn(2, 8, 7, requires_grad=True)
    out = q(x)
    ze = q.projection(x)
    book = q.codebook()
    # nearest codeword per group, computed here by brute force
    frames = ze.detach().view(2, 2, 4, 7).permute(0, 3, 1, 2)  # (B, T, G, d)
    dist = ((frames[:, :, :, None, :] - book.permute(1, 0, 2)[None, None]) ** 2).sum(-1)  # (B, T, G, V)
    assert torch.equal(out.indices, dist.argmin(-1))
    assert torch.allclose(out.x, torch.stack([book[out.indices[..., g], g] for g in range(2)], -2)
                          .view(2, 7, 8).permute(0, 2, 1))
    out.x.sum().backward(retain_graph=True)  # straight-through: d out / d ze = identity
    g_ref = torch.autograd.grad(ze.sum(), x)[0]
    assert torch.allclose(x.grad, g_ref)
    zq = out.x.detach()
    expected = torch.mean((zq - ze.detach()) ** 2) * 1.25
    assert torch.allclose(out.kmeans_loss, expected)


def test_objective_runs_wav2vec1_models_too():
    from s3prl.wav2vec2 import wav2vec1_pretraining as w2v1
    from s3prl.wav2vec2.criterion import Wav2Vec2Batch, Wav2Vec2Objective

    ckpt, dump = load("vq_gumbel")
    model = w2v1.from_fairseq(ckpt, "vq_gumbel").train()
    wav, wav_len = batch(dump)
    objective = Wav2Vec2Objective(model)
    objective.num_updates.fill_(dump["num_updates"])
    torch.manual_seed(0)
    loss = objective(Wav2Vec2Batch(wav, wav_len))
    assert objective.last_log["temp"] == pytest.approx(dump["logging_output"]["temp"], rel=1e-12)
    assert float(loss.detach()) * objective.last_log["sample_size"] == pytest.approx(objective.last_log["loss"],
                                                                                    rel=1e-6)
    assert objective.last_log["sample_size"] == dump["sample_size"]  # same crop length, same positives


def test_exact_padding_gives_each_utterance_its_own_features():
    model, dump = prepared("base")
    wav, wav_len = batch(dump)
    fairseq_feats, lengths = model.features(wav, wav_len)
    model.pcfg.exact_padding = True
    exact, exact_lengths = model.features(wav, wav_len)
    assert torch.equal(lengths, exact_lengths)
    for b, (n, t) in enumerate(zip(wav_len.tolist(), lengths.tolist())):
        alone, _ = model.features(wav[b:b + 1, :n], wav_len[b:b + 1])
        assert torch.allclose(exact[b, :t], alone[0, :t], atol=1e-6)
        if n == wav.size(1):  # the longest utterance sees no padding: both modes agree
            assert torch.allclose(fairseq_feats[b, :t], alone[0, :t], atol=1e-6)
    shortest = int(wav_len.argmin())  # fairseq's group norm sees the shortest one's padding
    t = int(lengths[shortest])
    assert not torch.allclose(fairseq_feats[shortest, :t], exact[shortest, :t], atol=1e-4)


def test_collapse_warning_fires_on_a_collapsed_codebook():
    from s3prl.wav2vec2.criterion import collapse_warning

    model, dump = prepared("base")
    wav, wav_len = batch(dump)
    replayed = dict(mask_indices=dump["mask_indices"], neg_idxs=dump["neg_idxs"], gumbel_noise=dump["gumbel_noise"])
    healthy = wav2vec2_loss(replay(model, dump), model.pcfg.loss_weights).log
    assert collapse_warning(healthy, model.quantizer.groups) is None
    with torch.no_grad():  # every frame picks codeword 0 of each group: a collapsed quantizer
        model.quantizer.weight_proj.weight.zero_()
        model.quantizer.weight_proj.bias.copy_(torch.tensor([50.0 if i % 8 == 0 else 0.0 for i in range(16)]))
    collapsed = wav2vec2_loss(model(wav, wav_len, **replayed), model.pcfg.loss_weights)
    assert collapsed.log["code_perplexity"] == pytest.approx(2.0, rel=1e-5)
    assert torch.isinf(collapsed.logits[:, 1:]).all()  # every negative equals its positive
    assert collapsed.log["correct"] == collapsed.log["count"] == 33  # ... so the "accuracy" is 1
    message = collapse_warning(dict(collapsed.log, count=60.0, correct=60), model.quantizer.groups)  # >= 50 frames
    assert "code perplexity 2.00" in message and "accuracy 1.000" in message


def test_a_fresh_base_preset_model_learns_and_files_load_by_path():
    from s3prl.upstream.wav2vec2 import Wav2Vec2Config
    from s3prl.wav2vec2.pretraining import preset

    # by path (the safe loader), the same weights as the dict
    a = from_fairseq(str(FIX / "w2v_loss_base_ckpt.pt"))
    b = from_fairseq(load("base")[0], "base")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(conv_layers=((16, 10, 5),) + ((16, 3, 2),) * 4 + ((16, 2, 2),) * 2, embed_dim=24,
                         ffn_dim=48, num_layers=2, num_heads=4, conv_pos=8, conv_pos_groups=4, dropout=0.0,
                         attention_dropout=0.0)
    pcfg = preset("base", final_dim=16, latent_vars=8, num_negatives=10)
    assert pcfg.quantize_targets and pcfg.loss_weights == (0.1, 10.0) and pcfg.feature_grad_mult == 0.1
    pcfg = preset("base", final_dim=16, latent_vars=8, num_negatives=10, dropout_input=0.0, dropout_features=0.0,
                  encoder_layerdrop=0.0)  # no dropout: the same draws every step, so the loss must fall
    model = Wav2Vec2PreTraining(cfg, pcfg).train()
    wav, wav_len = batch(load("base")[1])
    losses = []
    for step in range(30):  # plain SGD on one batch with fixed draws
        model.zero_grad()
        res = train_step(model, wav, wav_len, generator=torch.Generator().manual_seed(1), num_updates=step)
        losses.append(res.loss.item() / res.sample_size)
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.2 * p.grad
    assert min(losses[-5:]) < 0.8 * losses[0], losses  # 2.66 -> 1.37 here (SGD overshoots now and then)
    with pytest.raises(ValueError, match="unknown wav2vec 2.0 pre-training preset"):
        preset("huge")
