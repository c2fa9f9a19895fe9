"""Seeded random checkpoints for BYOL-A, BYOL-S and VGGish in the ORIGINAL on-disk formats.

    # in the oracle venv: build the ORIGINAL class, fill it, check it loads through the original loader
    python make_byol_vggish_ckpt.py MODEL OUT.pth [--spec OUT.spec.json] [--pca OUT_PCA.pth] [--seed 0]
    MODEL: byol_a_512 | byol_a_1024 | byol_a_2048 | byol_s_default | byol_s_cvt | byol_s_resnetish34 | vggish
    # the original S3PRLUpstream's outputs on a local file (the oracle's dump.py, see below)
    python make_byol_vggish_ckpt.py dump CKPT [--pca PCA.pth] -- --name ENTRY --ckpt CKPT --out OUT.pt ...

These entries take no local file in the original: ``byol_a_*`` raise on ``ckpt=`` (passed twice), ``byol_s_*``
and ``vggish`` overwrite it with their download. ``dump`` therefore runs dump.py with the hubconfs'
``_urls_to_filepaths`` pointed at the local files and the hub entries called without ``ckpt``; nothing
else of the original code changes.

The released files are plain state dicts (``torch.save(model.state_dict())``: BYOL-A, serab-byols, the
torchvggish weights) and, for VGGish, a second file ``{'pca_eigen_vectors': (128, 128), 'pca_means': (128,)}``.
The torchvggish loader converts those with ``torch.as_tensor`` (a "TODO: convert to torch" says they are not
tensors); they are written here as numpy float64 arrays, the layout of Google's ``vggish_pca_params.npz``
(assumed: the released file could not be read offline).

The checkpoints are too big to commit (BYOL-A d512 2.4 MB, VGGish 290 MB), so every tensor is drawn from
a generator seeded by ``(seed, key name)`` with a per-tensor recipe written to a small JSON spec. The test
suite rebuilds the same file from the spec with ``build_state`` below (pure torch, importable anywhere)
and checks the checksum recorded here; it compares against the original's outputs dumped from this file.

Recipes (every tensor is random, so a dropped, swapped or re-initialised tensor changes the outputs):
conv / linear weights N(0, 2 / fan_in); biases N(0, 0.1^2); norm weights 1 + N(0, 0.1^2), norm biases
N(0, 0.1^2); BatchNorm running statistics calibrated per layer on the original front-end's output for
synthetic clips (mean m and variance v over channels and positions; running means m + N(0, 0.01 v),
variances v exp(N(0, 0.2^2))), so that activations keep a trained model's scale; PCA vectors N(0, 1/1152)
and means 2.2 + N(0, 1) (see ``main``), so that few values are clipped by the quantiser.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zlib

import torch

NORM_SUFFIXES = (".g", ".b")  # the CvT channel LayerNorm's parameter names


def _generator(seed: int, key: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))


def make_tensor(key: str, shape: list[int], kind: str, scale: float, center: float, seed: int) -> torch.Tensor:
    """One tensor of the recipe ``kind``: ``center + scale * N(0, 1)``, running variances ``scale *
    exp(0.2 * N(0, 1))``, counters a constant; float32 unless it is a counter."""
    if kind == "count":
        return torch.tensor(12345, dtype=torch.int64)
    noise = torch.randn(shape, generator=_generator(seed, key), dtype=torch.float32)
    if kind == "running_var":
        return scale * torch.exp(0.2 * noise)
    return center + scale * noise


def build_state(spec: dict) -> dict[str, torch.Tensor]:
    """The state dict described by a spec (``{'seed', 'tensors': [[key, shape, kind, scale, center], ...]}``)."""
    return {key: make_tensor(key, shape, kind, scale, center, spec["seed"])
            for key, shape, kind, scale, center in spec["tensors"]}


def checksum(state: dict) -> str:
    h = hashlib.sha256()
    for key, value in state.items():
        h.update(key.encode())
        h.update(value.contiguous().numpy().tobytes())
    return h.hexdigest()


def save_pca(state: dict, path: str) -> None:
    """The torchvggish PCA file: numpy float64 arrays, means as a flat vector."""
    torch.save({"pca_eigen_vectors": state["pca_eigen_vectors"].double().numpy(),
                "pca_means": state["pca_means"].double().reshape(-1).numpy()}, path)


# ----------------------------------------------------------------------------------- oracle side
def _kind(key: str, module, tensor: torch.Tensor) -> str:
    import torch.nn as nn

    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return "count"
    if leaf in ("running_mean", "running_var"):
        return leaf
    norm = isinstance(module, nn.modules.batchnorm._BatchNorm) or type(module).__name__ == "LayerNorm"
    if norm:
        return "norm_weight" if leaf in ("weight", "g") else "norm_bias"
    return "bias" if leaf == "bias" else "weight"


def _recipe(kind: str, tensor: torch.Tensor, gain: float) -> tuple[float, float]:
    """(scale, center) of a tensor before calibration."""
    if kind == "weight":
        return gain / tensor[0].numel() ** 0.5, 0.0
    if kind in ("norm_weight", "running_var"):
        return 0.1 if kind == "norm_weight" else 1.0, 1.0 if kind == "norm_weight" else 0.0
    return 0.1, 0.0


def spec_of(model, seed: int, gain: float) -> dict:
    modules = dict(model.named_modules())
    tensors = []
    for key, tensor in model.state_dict().items():
        owner = modules[key.rsplit(".", 1)[0]] if "." in key else model
        kind = _kind(key, owner, tensor)
        tensors.append([key, list(tensor.shape), kind, *_recipe(kind, tensor, gain)])
    return {"seed": seed, "tensors": tensors}


def encoder_inputs(name: str, model, path: str) -> torch.Tensor:
    """What the original front-end feeds the encoder for a few synthetic clips (each clip alone)."""
    import dump as oracle_dump

    gen = torch.Generator().manual_seed(1234)
    wavs = [oracle_dump.synth_wav(n, gen) for n in (8000, 16000, 27000)]
    seen = []
    hook = model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    with torch.no_grad():
        if name.startswith("byol_a_"):
            from s3prl.upstream.byol_a.expert import UpstreamExpert
            from s3prl.upstream.byol_a.hubconf import DEFAULT_CONFIG_PATH

            expert = UpstreamExpert(path, DEFAULT_CONFIG_PATH, model.d)
            expert.model = model
            for wav in wavs:
                expert([wav])
        else:
            import s3prl.upstream.byol_s.serab_byols.serab as serab

            for wav in wavs:
                serab.get_timestamp_embeddings(wav[None], model, 1000, 50)
    hook.remove()
    return torch.cat(seen)


def calibrate(spec: dict, model, inputs: torch.Tensor) -> None:
    """Set each BatchNorm's running statistics near what it sees on real front-end output: per layer the
    mean and the variance over all channels and positions, measured with the earlier layers normalised."""
    import torch.nn as nn

    stats = {}

    def measure(name):
        def hook(module, args):
            x = args[0].detach().double()
            stats[name] = (float(x.mean()), float(x.var()))
        return hook

    hooks = [m.register_forward_pre_hook(measure(n)) for n, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.train()
    with torch.no_grad():
        model(inputs)
    model.eval()
    for h in hooks:
        h.remove()
    for entry in spec["tensors"]:
        owner, leaf = entry[0].rsplit(".", 1)
        if leaf == "running_mean":
            mean, var = stats[owner]
            entry[3], entry[4] = 0.1 * var ** 0.5, mean
        elif leaf == "running_var":
            entry[3] = stats[owner][1]


def original_model(name: str):
    """The ORIGINAL class of s3prl 0.4.18 with the hub entry's configuration."""
    if name.startswith("byol_a_"):
        from s3prl.upstream.byol_a.byol_a import AudioNTT2020

        return AudioNTT2020(d=int(name.rsplit("_", 1)[1]))
    if name.startswith("byol_s_"):
        from pathlib import Path

        import s3prl.upstream.byol_s.serab_byols.serab as serab
        from s3prl.upstream.byol_s.byol_a.common import load_yaml_config

        cfg = load_yaml_config(Path(serab.__file__).parent / "config.yaml")
        return serab.get_model(name[len("byol_s_"):], cfg)
    if name == "vggish":
        from s3prl.upstream.vggish.vggish import VGGish

        return VGGish(None, pretrained=False, postprocess=True)
    raise SystemExit(f"unknown model {name}")


def verify(name: str, path: str, pca: str | None, state: dict) -> None:
    """Load the file through the original loader and compare every tensor that ended up in the model."""
    if name.startswith("byol_a_"):
        model = original_model(name).load_weight(path, device="cpu")
        loaded = model.state_dict()
    elif name.startswith("byol_s_"):
        import s3prl.upstream.byol_s.serab_byols.serab as serab

        loaded = serab.load_model(path, name[len("byol_s_"):]).state_dict()
    else:
        from s3prl.upstream.vggish.vggish import VGGish

        ckpt = {"vggish": torch.load(path, map_location="cpu"),
                "pca": torch.load(pca, map_location="cpu", weights_only=False)}  # numpy arrays: our own file
        loaded = VGGish(ckpt).state_dict()
        loaded = {k.replace("pproc.", ""): v for k, v in loaded.items()}
        loaded["pca_means"] = loaded["pca_means"].reshape(-1)
    for key, value in state.items():
        if not torch.equal(loaded[key].to(value.dtype), value):
            raise SystemExit(f"{key} did not reach the original model unchanged")


def dump(argv) -> int:
    """dump.py with the hub entries' downloads redirected to local files."""
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(prog="make_byol_vggish_ckpt.py dump")
    ap.add_argument("ckpt")
    ap.add_argument("--pca")
    args = ap.parse_args(argv[:split])
    import dump as oracle_dump
    import s3prl.hub as hub
    import s3prl.upstream.byol_a.hubconf as byol_a_hub
    import s3prl.upstream.byol_s.hubconf as byol_s_hub
    import s3prl.upstream.vggish.hubconf as vggish_hub

    def local_file(url, refresh=False):
        return args.pca if "pca" in url else os.path.abspath(args.ckpt)

    def without_ckpt(entry):
        return lambda ckpt=None, **kwargs: entry(**kwargs)

    for module in (byol_a_hub, byol_s_hub, vggish_hub):
        module._urls_to_filepaths = local_file
    for name in ("byol_a_512", "byol_a_1024", "byol_a_2048", "byol_s_default", "byol_s_cvt",
                 "byol_s_resnetish34", "vggish"):
        setattr(hub, name, without_ckpt(getattr(hub, name)))
    consistency = oracle_dump.max_abs_diff_valid
    # dump.py's "without the last 3 frames" statistic slices a[:n - 3], which goes negative for these
    # one-frame-per-second models; such a comparison has no frames left and counts as 0
    oracle_dump.max_abs_diff_valid = lambda a, b, n: consistency(a, b, n) if n > 0 else 0.0
    return oracle_dump.main(argv[split + 1:])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--spec", help="write the JSON spec here (default: OUT with .spec.json)")
    ap.add_argument("--pca", help="VGGish only: the PCA parameters file (default: OUT with .pca.pth)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    stem = os.path.splitext(args.out)[0]
    model = original_model(args.model)
    spec = spec_of(model, args.seed, gain=2 ** 0.5)
    if args.model != "vggish":  # BatchNorm statistics
        state = build_state(spec)
        model.load_state_dict(state)
        torch.save(state, args.out)
        calibrate(spec, model, encoder_inputs(args.model, model, args.out))
    pca_path = None
    if args.model == "vggish":  # the Postprocessor's tensors go to their own file
        spec["tensors"] = [t for t in spec["tensors"] if not t[0].startswith("pproc.")]
        # embeddings of this model on synthetic clips: mean ~2.2, std ~3 (ReLU outputs); PCA outputs ~N(0, 1)
        spec["tensors"] += [["pca_eigen_vectors", [128, 128], "pca_vectors", 128 ** -0.5 / 3, 0.0],
                            ["pca_means", [128], "pca_means", 1.0, 2.2]]
        pca_path = args.pca or stem + ".pca.pth"
    state = build_state(spec)
    spec["model"], spec["checksum"] = args.model, checksum(state)
    if pca_path:
        weights = {k: v for k, v in state.items() if not k.startswith("pca_")}
        torch.save(weights, args.out)
        save_pca(state, pca_path)
    else:
        torch.save(state, args.out)
    verify(args.model, args.out, pca_path, state)
    with open(args.spec or stem + ".spec.json", "w") as f:
        json.dump(spec, f, indent=0)
    n = sum(v.numel() for v in state.values())
    print(json.dumps({"model": args.model, "out": args.out, "pca": pca_path, "params": n, "ok": True}))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    oracle = os.environ.get("S3PRL_ORACLE_DIR", os.path.join(here, "../../../shared/tools/s3prl-oracle"))
    sys.path.insert(0, os.path.abspath(oracle))
    if sys.argv[1:2] == ["dump"]:
        os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # the PCA file holds numpy arrays
    import oracle_env  # noqa: F401,E402  (threads, seeds, torchaudio shims; before s3prl)

    sys.exit(dump(sys.argv[2:])) if sys.argv[1:2] == ["dump"] else main()
