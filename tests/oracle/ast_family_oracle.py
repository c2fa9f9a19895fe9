"""Oracle side of the audio-domain families (AST, SSAST, MAE-AST, PaSST): run IN THE ORACLE VENV.

    python ast_family_oracle.py make FAMILY OUT.pth [options]     # checkpoint + OUT.pth.spec.json
    python ast_family_oracle.py dump --spec SPEC --ckpt CKPT --name ENTRY --out OUT.dump.pt [options]

``make`` builds the ORIGINAL model class of s3prl 0.4.18 (``s3prl.upstream.{ast,ssast,mae_ast,passt}``),
gives every stored tensor random values from ``seeded_ckpt`` (norm weights 1 + N(0, 0.1), biases N(0, 0.1),
matrices N(0, 1 / fan_in), embeddings N(0, 0.25); integer tensors kept), saves it in the on-disk format the
original loader reads, and checks that the original hub entry loads every tensor it should (printing
``"ok": true``). The spec file lets the tests rebuild the same bytes without the original code.

``dump`` runs the original ``s3prl.nn.S3PRLUpstream(ENTRY)`` at batch size 1 on each clip (and on the padded
batch) and saves the hidden states in ``dump.py``'s ``single`` / ``single_lengths`` / ``meta`` layout; the clips
live in one shared ``--wavs-file`` (made with ``dump.py``'s synthetic signals on first use) and
``--feature-stride K`` keeps every K-th feature of each frame, to keep fixtures small.

What is stubbed, and why (nothing here changes any model's numerics):
* timm 0.4.5 (installed in the oracle venv with ``pip install --no-deps timm==0.4.5``) imports PIL through its
  image pipeline ``timm.data``; the models only need that package's constants, so ``timm.data`` is replaced by
  a module holding ``timm/data/constants.py``.
* Model sizes: the original entries hard-code their model sizes (``timm.create_model("vit_deit_base_...")``,
  hear21passt's ``passt_s_swa_p16_128_ap476``); ``--dim/--depth`` swap in the same timm / PaSST classes with
  other widths and depths (AST must stay 768-d: its loader hard-codes 1212 x 768 position embeddings).
* Downloads: the entries download their checkpoint from a fixed URL; s3prl's download cache is pointed at a
  temporary folder where that URL's file name is a link to our checkpoint.
* ``--ast-trained-head``: the original AST entry classifies with a freshly initialised random head (see
  ``s3prl/upstream/ast.py``); this loads the checkpoint's trained ``mlp_head`` into it instead.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(HERE, "../../../shared/tools/s3prl-oracle"))
sys.path.insert(0, os.path.abspath(ORACLE))
sys.path.insert(0, HERE)

import oracle_env  # noqa: E402,F401  (threads, seeds, torchaudio shims; before s3prl)
import seeded_ckpt  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

AST_URL = "https://www.dropbox.com/s/ca0b1v2nlxzyeb4/audioset_10_10_0.4593.pth?dl=1"
SSAST_URLS = {"f": "https://www.dropbox.com/s/nx6nl4d4bl71sm8/SSAST-Base-Frame-400.pth?dl=1",
              "p": "https://www.dropbox.com/s/ewrzpco95n9jdz6/SSAST-Base-Patch-400.pth?dl=1"}
PASST = "https://github.com/kkoutini/PaSST/releases/download"
PASST_ARCHS = {  # hear21passt module -> (get_model arch, default_cfgs variant, input_tdim, URL)
    "base": ("passt_s_swa_p16_128_ap476", "passt_s_swa_p16_128_ap476", 998,
             f"{PASST}/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt"),
    "hop100base": ("stfthop100", "passt_s_swa_f128_stfthop100_p16_s10_ap473", 3200,
                   f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop100-p16-s10-ap.473-swa.pt"),
    "hop160base": ("stfthop160", "passt_s_swa_f128_stfthop160_p16_s10_ap473", 2000,
                   f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop160-p16-s10-ap.473-swa.pt"),
    "base20sec": ("passt_20sec", "passt-s-f128-20sec-p16-s10-ap474-swa", 2000,
                  f"{PASST}/v0.0.5/passt-s-f128-20sec-p16-s10-ap.474-swa.pt"),
    "base30sec": ("passt_30sec", "passt-s-f128-30sec-p16-s10-ap473-swa", 3000,
                  f"{PASST}/v0.0.5/passt-s-f128-30sec-p16-s10-ap.473-swa.pt"),
}
PASST_FUNCS = {"passt_s_swa_p16_128_ap476": "passt_s_swa_p16_128_ap476",
               "stfthop100": "passt_s_swa_f128_stfthop100_p16_s10_ap473",
               "stfthop160": "passt_s_swa_f128_stfthop160_p16_s10_ap473",
               "passt_20sec": "passt_s_f128_20sec_p16_s10_ap474_swa",
               "passt_30sec": "passt_s_f128_30sec_p16_s10_ap473_swa"}


# --------------------------------------------------------------------------- stubs
def install_timm_data_stub() -> None:
    spec = importlib.util.find_spec("timm")
    if spec is None:
        raise SystemExit("timm is missing: pip install --no-deps timm==0.4.5 into the oracle venv")
    mod = types.ModuleType("timm.data")
    with open(os.path.join(os.path.dirname(spec.origin), "data", "constants.py")) as f:
        exec(f.read(), mod.__dict__)
    sys.modules["timm.data"] = mod


def install_size_stub(stub: dict) -> None:
    """Same classes, other sizes (see the module docstring)."""
    if stub.get("timm"):
        import timm
        from timm.models.vision_transformer import DistilledVisionTransformer

        s = stub["timm"]

        def create_model(name, pretrained=False, **kwargs):
            assert not pretrained and "distilled" in name, name
            return DistilledVisionTransformer(
                img_size=224 if name.endswith("224") else 384, patch_size=16, embed_dim=s["dim"], depth=s["depth"],
                num_heads=s["dim"] // 64, mlp_ratio=s["mlp_ratio"], qkv_bias=True, num_classes=s["classes"],
                norm_layer=functools.partial(nn.LayerNorm, eps=1e-6))

        timm.create_model = create_model
    if stub.get("passt"):
        import s3prl.upstream.passt.hear21passt.models.passt as P

        s = stub["passt"]
        for arch, func in PASST_FUNCS.items():
            variant = next(v[1] for v in PASST_ARCHS.values() if v[0] == arch)

            def model_func(pretrained=False, _variant=variant, **kwargs):
                return P._create_vision_transformer(_variant, pretrained=pretrained, distilled=True, patch_size=16,
                                                    embed_dim=s["dim"], depth=s["depth"], num_heads=s["dim"] // 64,
                                                    **kwargs)

            setattr(P, func, model_func)


def redirect_downloads(urls, ckpt: str) -> str:
    """Point s3prl's download cache at a temporary folder where every URL's cached file is ``ckpt``."""
    from s3prl.util import download

    folder = tempfile.mkdtemp(prefix="ast_family_cache_")
    atexit.register(shutil.rmtree, folder, True)
    download.set_dir(folder)
    for url in urls:
        name = f"{hashlib.sha256(url.encode()).hexdigest()}.{Path(url).name}"
        os.symlink(os.path.abspath(ckpt), os.path.join(folder, name))
    return folder


def install_ast_trained_head() -> None:
    from s3prl.upstream.ast import ast_models

    original_init = ast_models.ASTModel.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if kwargs.get("audioset_pretrain") and kwargs.get("pretrained_ckpt"):
            sd = torch.load(kwargs["pretrained_ckpt"], map_location="cpu")
            self.mlp_head.load_state_dict({k[len("module.mlp_head."):]: v for k, v in sd.items()
                                           if k.startswith("module.mlp_head.")})

    ast_models.ASTModel.__init__ = init


# --------------------------------------------------------------------------- random values
def value_rule(norm_weights: set, norm_biases: set, strip: str = ""):
    def rule(path: str, t: torch.Tensor) -> dict:
        key = path[len(strip):] if path.startswith(strip) else path
        name = key.rsplit(".", 1)[-1]
        if not t.is_floating_point():
            return seeded_ckpt.tensor_spec(t)
        if key in norm_weights:
            return seeded_ckpt.tensor_spec(t, 1.0, 0.1)
        if key in norm_biases or name == "bias":
            return seeded_ckpt.tensor_spec(t, 0.0, 0.1)
        if name == "running_mean":
            return seeded_ckpt.tensor_spec(t, -6.0, 1.0)
        if name == "running_var":
            return seeded_ckpt.tensor_spec(t, 12.0, 1.0)
        if name == "weight_g":
            return seeded_ckpt.tensor_spec(t, 1.0, 0.1)
        if t.dim() >= 2 and name in ("weight", "weight_v"):
            return seeded_ckpt.tensor_spec(t, 0.0, 1.0 / math.sqrt(math.prod(t.shape[1:])))
        return seeded_ckpt.tensor_spec(t, 0.0, 0.5)  # tokens, position tables, mask embeddings

    return rule


def norm_names(model: nn.Module, prefix: str = "") -> tuple[set, set]:
    weights, biases = set(), set()
    for name, m in model.named_modules():
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)) and m.weight is not None:
            weights.add(f"{prefix}{name}.weight")
            biases.add(f"{prefix}{name}.bias")
    return weights, biases


def write_spec_and_ckpt(tree_like, rule, out: str, seed: int, family: str, stub: dict, urls) -> dict:
    spec = {"seed": seed, "family": family, "stub": stub, "urls": list(urls),
            "root": seeded_ckpt.spec_of(tree_like, rule)}
    spec = json.loads(json.dumps(spec))  # as the tests will read it (pickle memoises shared objects)
    sha = seeded_ckpt.write(spec, out)
    spec["sha256"] = sha
    with open(out + ".spec.json", "w") as f:
        json.dump(spec, f)
    return spec


# --------------------------------------------------------------------------- make
def make_ast(out, seed, depth, mlp_ratio):
    from s3prl.upstream.ast.ast_models import ASTModel

    stub = {"timm": {"dim": 768, "depth": depth, "mlp_ratio": mlp_ratio, "classes": 8}}
    install_size_stub(stub)
    # what the original loader builds before reading the file: AudioSet AST, 12 x 101 patches
    model = torch.nn.DataParallel(ASTModel(label_dim=527, fstride=10, tstride=10, input_fdim=128, input_tdim=1024,
                                           imagenet_pretrain=False, audioset_pretrain=False, model_size="base384",
                                           verbose=False))
    spec = write_spec_and_ckpt(model.state_dict(), value_rule(*norm_names(model)), out, seed, "ast", stub, [AST_URL])
    redirect_downloads(spec["urls"], out)
    import s3prl.hub as hub

    expert = hub.ast()
    return verify(torch.load(out), expert.model, "module.", skip=("mlp_head.",))


def make_ssast(out, seed, kind, dim, depth, p_tdim):
    from s3prl.upstream.ssast.ast_models import ASTModel

    stub = {"timm": {"dim": dim, "depth": depth, "mlp_ratio": 2.0, "classes": 8}}
    install_size_stub(stub)
    shape = (128, 2) if kind == "f" else (16, 16)
    model = torch.nn.DataParallel(ASTModel(fshape=shape[0], tshape=shape[1], fstride=shape[0], tstride=shape[1],
                                           input_fdim=128, input_tdim=p_tdim, model_size="base", pretrain_stage=True))
    spec = write_spec_and_ckpt(model.state_dict(), value_rule(*norm_names(model)), out, seed, "ssast", stub,
                               [SSAST_URLS[kind]])
    redirect_downloads(spec["urls"], out)
    import s3prl.hub as hub

    expert = getattr(hub, "ssast_frame_base" if kind == "f" else "ssast_patch_base")()
    return verify(torch.load(out), expert.model, "module.", skip=("v.pos_embed",))


def make_mae_ast(out, seed, kind, dim, depth):
    from types import SimpleNamespace

    from s3prl.upstream.mae_ast.mae_ast import MAE_AST, MAE_AST_Config
    from s3prl.upstream.mae_ast.load_model import MAE_AST_Pretraining_Config
    import dataclasses

    cfg = dataclasses.asdict(MAE_AST_Config())
    if kind == "frame":  # frame patches, post-LN, sinusoidal positions (the MAE-AST Frame setup)
        cfg.update(ast_kernel_size_chan=128, ast_kernel_size_time=2, ast_kernel_stride_chan=128,
                   ast_kernel_stride_time=2, enc_sine_pos=True, dec_sine_pos=True, layer_norm_first=False)
    else:  # square patches; pre-LN and both positional encodings to cover those code paths
        cfg.update(ast_kernel_size_chan=16, ast_kernel_size_time=16, ast_kernel_stride_chan=16,
                   ast_kernel_stride_time=16, enc_sine_pos=True, enc_conv_pos=True, dec_sine_pos=True,
                   layer_norm_first=True, conv_pos=16, conv_pos_groups=4)
    cfg.update(encoder_layers=depth, encoder_embed_dim=dim, encoder_ffn_embed_dim=4 * dim,
               encoder_attention_heads=dim // 64, decoder_embed_dim=dim, decoder_layers=1, max_token_length=800,
               dropout=0.0, attention_dropout=0.0)
    task = dataclasses.asdict(MAE_AST_Pretraining_Config(data="/path/to/manifest"))
    task.update(feature_type="fbank", feature_dim=128, feature_rate=100, sample_rate=16000,
                mask_type="random_mask" if kind == "frame" else "chunk_mask")
    model = MAE_AST(SimpleNamespace(**cfg), SimpleNamespace(**task))
    tree = {"cfg": {"model": cfg, "task": task}, "model": model.state_dict()}
    w, b = norm_names(model, "model.")
    spec = write_spec_and_ckpt(tree, value_rule(w, b), out, seed, "mae_ast", {}, [])
    import s3prl.hub as hub

    expert = hub.mae_ast_local(ckpt=out)
    return verify(torch.load(out)["model"], expert.model, "")


def make_passt(out, seed, arch, dim, depth):
    import s3prl.upstream.passt.hear21passt.models.passt as P

    stub = {"passt": {"dim": dim, "depth": depth}}
    install_size_stub(stub)
    get_arch, _, tdim, url = PASST_ARCHS[arch]
    model = P.get_model(arch=get_arch, pretrained=False, input_tdim=tdim)
    spec = write_spec_and_ckpt(model.state_dict(), value_rule(*norm_names(model)), out, seed, "passt", stub, [url])
    redirect_downloads(spec["urls"], out)
    import s3prl.hub as hub

    expert = getattr(hub, f"passt_{arch}")()
    return verify(torch.load(out), expert.model.net, "")


def verify(saved: dict, loaded: nn.Module, strip: str, skip=()) -> dict:
    """Every saved tensor that the loaded model holds under the same name must be equal."""
    own = {**dict(loaded.named_parameters()), **dict(loaded.named_buffers())}
    compared, mismatched = 0, []
    for key, value in saved.items():
        name = key[len(strip):] if key.startswith(strip) else key
        if name not in own or any(name.startswith(s) for s in skip):
            continue
        compared += 1
        if own[name].shape != value.shape or not torch.equal(own[name].to(value.dtype), value):
            mismatched.append(name)
    return {"ok": not mismatched and compared > 0, "compared": compared, "mismatched": mismatched[:5]}


# --------------------------------------------------------------------------- dump
def dump(args) -> None:
    import dump as oracle_dump  # the oracle's dump.py (wavs)
    from torch.nn.utils.rnn import pad_sequence

    spec = seeded_ckpt.load_spec(args.spec)
    install_size_stub(spec.get("stub") or {})
    if spec.get("urls"):
        redirect_downloads(spec["urls"], args.ckpt)
    if args.ast_trained_head:
        install_ast_trained_head()
    from s3prl.nn import S3PRLUpstream

    if not os.path.exists(args.wavs_file):  # the clips shared by every dump of these families
        torch.save([w.clone() for w in oracle_dump.collect_wavs(args)[0]], args.wavs_file)
    all_wavs = torch.load(args.wavs_file)
    index = [int(i) for i in args.wav_index.split(",")] if args.wav_index else list(range(len(all_wavs)))
    wavs = [all_wavs[i] for i in index]
    extra = json.loads(args.extra_conf) if args.extra_conf else None
    upstream = S3PRLUpstream(args.name, path_or_url=args.ckpt if args.ckpt_arg else None, extra_conf=extra).eval()
    k, errors = args.feature_stride, {}
    sub = lambda h: h[..., ::k].contiguous().clone()  # noqa: E731
    single, single_len = [], []
    for i, w in enumerate(wavs):
        try:
            with torch.no_grad():
                hs, lens = upstream(w[None], torch.LongTensor([len(w)]))
            single.append([sub(h) for h in hs])
            single_len.append([l.clone() for l in lens])
        except Exception as e:  # the original's answer for this input
            errors[f"single[{i}]"] = f"{type(e).__name__}: {e}"
            single.append(None)
            single_len.append(None)
    consistency = None
    try:
        with torch.no_grad():
            bh, bl = upstream(pad_sequence(wavs, batch_first=True), torch.LongTensor([len(w) for w in wavs]))
        consistency = max(float((bh[li][b, : int(bl[li][b])][..., ::k] - single[b][li][0]).abs().max())
                          for li in range(len(bh)) for b in range(len(wavs)) if single[b] is not None)
    except Exception as e:
        errors["batch"] = f"{type(e).__name__}: {e}"
    with open(args.ckpt, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    meta = {"entry": args.name, "extra_conf": extra or {}, "num_layers": int(upstream.num_layers),
            "hidden_sizes": [int(x) for x in upstream.hidden_sizes],
            "downsample_rates": [int(x) for x in upstream.downsample_rates], "feature_stride": k,
            "ckpt_sha256": sha, "wav_lengths": [len(w) for w in wavs], "wav_index": index, "errors": errors,
            "ast_trained_head": bool(args.ast_trained_head), "threads": torch.get_num_threads(),
            "original_batch_vs_single_max_abs_diff": consistency}
    torch.save({"single": single, "single_lengths": single_len, "meta": meta}, args.out)
    print(json.dumps({k: meta[k] for k in ("entry", "num_layers", "hidden_sizes", "downsample_rates", "errors",
                                           "original_batch_vs_single_max_abs_diff")}))


def main() -> None:
    install_timm_data_stub()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("family", choices=["ast", "ssast_f", "ssast_p", "mae_ast_frame", "mae_ast_patch",
                                       *[f"passt_{a}" for a in PASST_ARCHS]])
    mk.add_argument("out")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--dim", type=int, default=128)
    mk.add_argument("--depth", type=int, default=2)
    mk.add_argument("--mlp-ratio", type=float, default=0.25, help="AST only")
    mk.add_argument("--p-tdim", type=int, default=200, help="SSAST pretraining frames")
    dp = sub.add_parser("dump")
    for name in ("--spec", "--ckpt", "--name", "--out"):
        dp.add_argument(name, required=True)
    dp.add_argument("--ckpt-arg", action="store_true", help="pass the checkpoint as path_or_url (mae_ast_local)")
    dp.add_argument("--extra-conf", default=None)
    dp.add_argument("--ast-trained-head", action="store_true")
    dp.add_argument("--feature-stride", type=int, default=1)
    dp.add_argument("--wavs-file", required=True, help="clips shared by the dumps (written on first use)")
    dp.add_argument("--wav-index", default="", help="comma-separated indices into --wavs-file (default: all)")
    dp.add_argument("--wav", nargs="*", default=[])
    dp.add_argument("--random-wavs", type=int, default=0)
    dp.add_argument("--seed", type=int, default=0)
    dp.add_argument("--min-sec", type=float, default=0.6)
    dp.add_argument("--max-sec", type=float, default=1.2)
    dp.add_argument("--lengths", default="")
    args = ap.parse_args()
    if args.cmd == "dump":
        return dump(args)
    fam = args.family
    if fam == "ast":
        result = make_ast(args.out, args.seed, args.depth, args.mlp_ratio)
    elif fam.startswith("ssast"):
        result = make_ssast(args.out, args.seed, fam[-1], args.dim, args.depth, args.p_tdim)
    elif fam.startswith("mae_ast"):
        result = make_mae_ast(args.out, args.seed, fam.split("_")[-1], args.dim, args.depth)
    else:
        result = make_passt(args.out, args.seed, fam[len("passt_"):], args.dim, args.depth)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
