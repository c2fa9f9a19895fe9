"""Random-weight checkpoints rebuilt byte for byte from a small JSON spec (imported by both venvs).

The audio-domain models have sizes the original code hard-codes (AST: 768-d, 1212 patches), so their
checkpoints are far too big to commit. The oracle generator therefore writes, next to the checkpoint it
saves and loads through the ORIGINAL code, a spec: the nested structure of the file with, for every tensor,
its shape, dtype and the mean/std of its random values (integer tensors: their exact values). ``materialize``
turns the spec back into the same objects, and ``torch.save`` into the same bytes (same torch version; the
tests check the sha256 the oracle recorded).

Values come from a counter-based generator (splitmix64, sum of four uniforms, scaled to unit variance):
integer arithmetic and float additions only, so they do not depend on the numpy version or the CPU.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _M64


def unit_noise(n: int, stream: str) -> np.ndarray:
    """n deterministic float64 values with mean 0 and variance 1 (Irwin-Hall of 4 uniforms)."""
    key = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "little")
    with np.errstate(over="ignore"):
        counters = np.arange(4 * n, dtype=np.uint64) + np.uint64(key)
    u = (_splitmix64(counters) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53  # [0, 1)
    return (u.reshape(n, 4).sum(axis=1) - 2.0) * np.sqrt(3.0)


def tensor_spec(t: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> dict:
    """Spec of one tensor: random float values, or the exact values of an integer tensor."""
    if t.is_floating_point():
        return {"__tensor__": {"shape": list(t.shape), "dtype": str(t.dtype)[6:], "mean": mean, "std": std}}
    return {"__tensor__": {"shape": list(t.shape), "dtype": str(t.dtype)[6:], "values": t.flatten().tolist()}}


def spec_of(tree, tensor_rule, path: str = "") -> object:
    """JSON spec of a nested dict/list of tensors; ``tensor_rule(path, tensor) -> tensor_spec(...)``."""
    if isinstance(tree, torch.Tensor):
        return tensor_rule(path, tree)
    if isinstance(tree, dict):
        return {"__dict__": [[k, spec_of(v, tensor_rule, f"{path}.{k}" if path else str(k))] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return [spec_of(v, tensor_rule, f"{path}[{i}]") for i, v in enumerate(tree)]
    if tree is None or isinstance(tree, (str, int, float, bool)):
        return tree
    raise TypeError(f"cannot describe {type(tree).__name__} at {path}")


def materialize(spec, seed: int, path: str = ""):
    """The objects described by ``spec`` (inverse of ``spec_of`` with the values drawn for ``seed``)."""
    if isinstance(spec, dict) and "__tensor__" in spec:
        t = spec["__tensor__"]
        dtype = getattr(torch, t["dtype"])
        if "values" in t:
            return torch.tensor(t["values"], dtype=dtype).reshape(t["shape"])
        n = int(np.prod(t["shape"], dtype=np.int64))
        values = t["mean"] + t["std"] * unit_noise(n, f"{seed}:{path}")
        return torch.from_numpy(values.astype(np.float32)).reshape(t["shape"]).to(dtype)
    if isinstance(spec, dict) and "__dict__" in spec:
        return {k: materialize(v, seed, f"{path}.{k}" if path else str(k)) for k, v in spec["__dict__"]}
    if isinstance(spec, list):
        return [materialize(v, seed, f"{path}[{i}]") for i, v in enumerate(spec)]
    return spec


def write(spec_file: dict, ckpt_path: str) -> str:
    """Rebuild the checkpoint of a spec file ``{"seed", "root", ...}`` at ``ckpt_path``; returns its sha256."""
    torch.save(materialize(spec_file["root"], int(spec_file["seed"])), ckpt_path)
    with open(ckpt_path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_spec(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
