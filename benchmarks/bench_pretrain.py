"""Pre-training speed: ours vs the original s3prl 0.4.18 on the same files, same model sizes, 1 CPU thread.

Two parts of a training step, each timed in its own interpreter:
* data: the original's APC / TERA datasets extract features from the audio for every batch of every epoch
  (torchaudio.load + Kaldi fbank + CMVN, or level normalisation + STFT mel); ours reads the cached features
  (computed once, the first epoch's cost is reported separately);
* model: forward + backward + optimizer step of the original's APC (``upstream.apc.apc.APC``) and
  TransformerForMaskedAcousticModel vs ours, on the same random batch (B=8, 200 frames, 80-d).

    .venv/bin/python benchmarks/bench_pretrain.py ours FILELIST
    ~/.cache/s3prl-oracle/venv/bin/python benchmarks/bench_pretrain.py original FILELIST   # from / (not the checkout)
"""

import os
import sys
import time

import torch

torch.set_num_threads(1)
REPEAT = 3


def timed(fn, repeat=REPEAT):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def apc_config():
    return {"num_layers": 3, "hidden_size": 512, "dropout": 0.1, "residual": True}


TRANSFORMER = {"input_dim": -1, "hidden_size": 768, "num_hidden_layers": 3, "num_attention_heads": 12,
               "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
               "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
               "share_layer": False, "pre_layer_norm": False}


def batch():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(8, 200, 80, generator=g)
    lengths = torch.tensor([200 - 10 * i for i in range(8)])
    for b, n in enumerate(lengths.tolist()):
        feats[b, n:] = 0
    label = torch.zeros_like(feats, dtype=torch.bool)
    label[:, 20:60] = True
    attn = (torch.arange(200)[None] < lengths[:, None]).float()
    return feats, lengths, label, attn


def ours(files):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from s3prl.audio import load_audio
    from s3prl.pretrain import config, mam
    from s3prl.pretrain.apc import APCObjective, Batch
    from s3prl.upstream.apc import KaldiFbank, fbank_config

    front = KaldiFbank(fbank_config(dict(config.FBANK_AUDIO), "bench"))
    start = time.perf_counter()
    cache = [front.extract(load_audio(f)) for f in files]
    first = time.perf_counter() - start
    import tempfile
    folder = tempfile.mkdtemp()
    for i, f in enumerate(cache):
        torch.save(f, f"{folder}/{i}.pt")
    read = timed(lambda: [torch.load(f"{folder}/{i}.pt", weights_only=True) for i in range(len(files))])
    feats, lengths, label, attn = batch()
    apc = APCObjective({"model": {"paras": apc_config()}, "task": {"n_future": 5}, "data": {"audio": {"feat_dim": 80}}})
    opt = torch.optim.Adam(apc.parameters(), 1e-4)
    apc_step = timed(lambda: step(opt, apc(Batch(feats, lengths, []))))
    model = {"transformer": TRANSFORMER, "task": dict(config.MAM_TASK), "audio": dict(config.LOG_MEL)}
    tera = mam.MAMObjective(model)
    opt2 = mam.AdamWWithSchedule(tera, tera.parameters(), 2e-4, 1000, 0.07)
    tera_step = timed(lambda: step(opt2, tera(mam.MAMBatch(feats, label, attn, feats, []))))
    report("ours", len(files), first, read, apc_step, tera_step)


def original(files):
    import types
    import oracle_env  # noqa: F401  (threads, shims)
    import s3prl
    import torch._dynamo  # noqa: F401
    sys.path.insert(0, os.path.dirname(s3prl.__file__))
    sys.modules.setdefault("pandas", types.ModuleType("pandas"))
    plots = types.ModuleType("utility.audio")
    plots.plot_spectrogram_to_numpy = None
    sys.modules["utility.audio"] = plots
    import torchaudio  # noqa: F401
    from optimizers import get_optimizer
    from pretrain.mockingjay.pretrain_expert import TransformerForMaskedAcousticModel
    from upstream.apc.apc import APC
    from upstream.apc.audio import create_transform
    from upstream.mockingjay.model import TransformerConfig
    import soundfile as sf

    extracter, _ = create_transform({"feat_type": "fbank", "feat_dim": 80, "frame_length": 25, "frame_shift": 10,
                                     "decode_wav": False, "cmvn": True})

    def load(f):  # torchaudio.load's result, read with soundfile (the oracle's torchaudio has no I/O backend)
        wav, sr = sf.read(f, dtype="float32")
        wav = torch.from_numpy(wav)[None]
        return torchaudio.functional.resample(wav, sr, 16000) if sr != 16000 else wav

    start = time.perf_counter()
    [extracter(load(f)) for f in files]
    first = time.perf_counter() - start
    feats, lengths, label, attn = batch()
    apc = APC(80, **apc_config())
    loss_fn = torch.nn.L1Loss()
    opt = torch.optim.Adam(apc.parameters(), 1e-4)
    n = 5
    apc_step = timed(lambda: step(opt, loss_fn(apc(feats[:, :-n], (lengths - n).tolist(), testing=False)[0],
                                               feats[:, n:])))
    cfg = TransformerConfig(TRANSFORMER)
    cfg.loss = "L1"
    tera = TransformerForMaskedAcousticModel(cfg, 80, output_dim=None)
    opt2 = get_optimizer([tera], 1000, {"name": "AdamW_with_schedule", "lr": 2e-4, "warmup_proportion": 0.07})
    from pretrain.mockingjay.task import fast_position_encoding
    pos_enc = fast_position_encoding(200, 768).expand(8, -1, -1)
    tera_step = timed(lambda: step(opt2, tera(feats, pos_enc, label, attn, feats)[0]))
    report("original", len(files), first, first, apc_step, tera_step)


def step(optimizer, loss):
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def report(who, n, first, later, apc_step, tera_step):
    print(f"{who}: {n} files; features first epoch {first:.2f} s, later epochs {later:.3f} s; "
          f"APC step {apc_step * 1000:.0f} ms; TERA step {tera_step * 1000:.0f} ms")


if __name__ == "__main__":
    mode, listing = sys.argv[1], sys.argv[2]
    paths = [line.strip() for line in open(listing) if line.strip()]
    if mode == "original":
        sys.path.insert(0, os.environ.get("S3PRL_ORACLE_DIR", "/work/shared/tools/s3prl-oracle"))
        original(paths)
    else:
        ours(paths)
