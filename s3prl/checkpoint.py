"""Safe checkpoint loading: tensors and plain data, never arbitrary code.

``load_checkpoint(path)`` reads a ``torch.save`` file (zip or legacy format), a ``.safetensors`` file
or a model folder, and returns only dict / list / tuple / str / number / bool / None / tensor.

Pickled checkpoints are read with torch's weights-only unpickler. The pickle is first scanned
(without running it) for the globals it references; each one must be

* allowed by torch itself (tensors, storages, ``OrderedDict``, ...), or
* on this module's explicit allow-list, which maps the pickled name onto an inert stand-in:
  ``argparse.Namespace``, omegaconf containers / nodes / metadata, ``typing`` names, builtin types,
  ``Ellipsis``, ``collections.defaultdict``, ``operator.getitem`` (typing subscripts), ``pathlib``
  paths, numpy scalars / dtypes / numeric arrays, ``torch.__version__`` (a str subclass), or
* from a package whose objects appear in speech checkpoints as *data*: ``fairseq``, ``fairseq_cli``,
  ``omegaconf``, ``hydra``, ``s3prl`` and the original s3prl's top-level ``optimizers`` /
  ``schedulers`` modules (``BAG_PACKAGES``). Such a global becomes a generic attribute bag: the real
  class is never imported, so nothing of it runs; the bag only records the constructor arguments
  and the pickled state (an Enum member keeps its value, a dataclass or ``Dictionary`` its fields).
  The rule is by package, not by name, because fairseq's config dataclasses and enums are many and
  change between versions; the only risk of a bag is accepting data, never executing it.

Anything else (``os.system``, ``builtins.eval``, a pickled ``nn.Module`` ...) raises
``UnsafeCheckpointError`` before the file is unpickled. ``S3PRL_TRUST_CHECKPOINTS=1`` allows full
unpickling of files you trust (off by default; a warning is emitted each time it is used).

The stand-ins are then turned into plain Python by ``to_plain``: DictConfig -> dict (interpolations
such as ``${task.label_rate}`` resolved where they point to a value in the same config),
ListConfig -> list, Namespace -> dict, Enum -> its value, numpy scalar -> number,
numpy array -> tensor (string arrays -> lists).
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import pickletools
import re
import threading
import warnings
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch

__all__ = [
    "BAG_PACKAGES",
    "CheckpointError",
    "CorruptCheckpointError",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "pickled_globals",
    "to_plain",
]

BAG_PACKAGES = ("fairseq", "fairseq_cli", "omegaconf", "hydra", "s3prl", "optimizers", "schedulers")
TRUST_ENV = "S3PRL_TRUST_CHECKPOINTS"
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of torch's legacy (non-zip) format
_LOCK = threading.Lock()  # torch's safe-globals list is process-wide


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be loaded."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The pickle references globals that are not safe to load."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, damaged, or not a checkpoint at all."""


# --------------------------------------------------------------------------------------------
# stand-ins
class Stub:
    """Inert stand-in for an object of a pickled class: records constructor args and state."""

    pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self.__dict__.update(_args=args, _state=None)
        return self

    def __init__(self, *args, **kwargs):  # REDUCE calls cls(*args): nothing to do
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state

    def __repr__(self):
        return f"<stand-in for {self.pickled_name} args={self._args!r} state={self._state!r}>"


class DictConfigStub(Stub):
    """omegaconf DictConfig: state ``{'_content': {key: node}, '_metadata', '_parent', ...}``."""


class ListConfigStub(Stub):
    """omegaconf ListConfig: ``_content`` is a list of nodes."""


class TupleConfigStub(ListConfigStub):
    """omegaconf TupleConfig (omegaconf >= 2.4): like ListConfig, converted to a tuple."""


class NodeStub(Stub):
    """omegaconf value node (AnyNode, StringNode, ..., EnumNode): the value is ``_val``."""


class MetadataStub(Stub):
    """omegaconf Metadata / ContainerMetadata: type information only, dropped by ``to_plain``."""


class TypeRef:
    """A type annotation referenced by omegaconf metadata (``typing.Any``, ``List[int]``, ...)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return self.name


def _subscript(base, item):
    """``operator.getitem`` as pickled for ``typing.List[int]``-style annotations only."""
    if not isinstance(base, TypeRef):
        raise pickle.UnpicklingError(f"operator.getitem is only allowed on typing names, not on {type(base)}")
    items = item if isinstance(item, tuple) else (item,)
    return TypeRef(f"{base.name}[{', '.join(_type_name(i) for i in items)}]")


def _type_name(obj) -> str:
    if isinstance(obj, TypeRef):
        return obj.name
    if isinstance(obj, type):
        return getattr(obj, "pickled_name", obj.__qualname__)
    return "..." if obj is Ellipsis else repr(obj)


def _type_call(*args):
    """``builtins.type`` is pickled only as ``type(None)`` (NoneType); nothing else is allowed."""
    if args != (None,):
        raise pickle.UnpicklingError("builtins.type may only be called as type(None) in a checkpoint")
    return TypeRef("NoneType")


def _defaultdict(default_factory=None, *rest):
    """``collections.defaultdict`` -> a plain dict (the factory is dropped; items follow by SETITEMS)."""
    return {}


def _posix_path(*parts):
    return str(PurePosixPath(*(str(p) for p in parts)))


def _windows_path(*parts):
    return str(PureWindowsPath(*(str(p) for p in parts)))


class NpDType:
    """numpy dtype, pickled as ``dtype('f8', False, True)`` + BUILD ``(3, '<', ...)``."""

    def __init__(self, spec="f8", align=False, copy=True):
        self.spec, self.byteorder = str(spec), "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]

    def numpy(self):
        import numpy as np

        try:
            dt = np.dtype(self.spec)
        except (TypeError, ValueError):
            raise pickle.UnpicklingError(f"unknown numpy dtype {self.spec!r}") from None
        if dt.kind not in "biufcUS":  # object / void / datetime dtypes could carry pickled objects
            raise pickle.UnpicklingError(f"numpy dtype {self.spec!r} is not allowed in a checkpoint")
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" else dt


def _np_scalar(dtype, data=None):
    """numpy scalar -> python number (decoded from its raw bytes)."""
    import numpy as np

    if not isinstance(dtype, NpDType) or not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("unexpected arguments for numpy scalar")
    return np.frombuffer(bytes(data), dtype=dtype.numpy(), count=1)[0].item()


class NpArray:
    """numpy array, pickled as ``_reconstruct(ndarray, (0,), b'b')`` + BUILD ``(1, shape, dtype, fortran, raw)``."""

    def __new__(cls, *args):
        return object.__new__(cls)

    def __setstate__(self, state):
        import numpy as np

        try:
            _, shape, dtype, fortran, raw = state
        except (TypeError, ValueError):
            raise pickle.UnpicklingError("unexpected numpy array state") from None
        if not isinstance(dtype, NpDType) or not isinstance(raw, (bytes, bytearray)):
            raise pickle.UnpicklingError("numpy object arrays are not allowed in a checkpoint")
        arr = np.frombuffer(bytes(raw), dtype=dtype.numpy())
        self.value = arr.reshape(tuple(shape), order="F" if fortran else "C")


def _np_reconstruct(cls, shape=(0,), typecode=b"b"):
    if cls is not NpArray:
        raise pickle.UnpicklingError("numpy _reconstruct is only allowed for numpy.ndarray")
    return NpArray()


_OMEGACONF = {
    "omegaconf.dictconfig.DictConfig": DictConfigStub,
    "omegaconf.listconfig.ListConfig": ListConfigStub,
    "omegaconf.tupleconfig.TupleConfig": TupleConfigStub,
    "omegaconf.base.Metadata": MetadataStub,
    "omegaconf.base.ContainerMetadata": MetadataStub,
    **{
        f"omegaconf.nodes.{n}": NodeStub
        for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "EnumNode",
                  "BytesNode", "PathNode", "ValueNode", "InterpolationResultNode")
    },
}

_TYPING = ("Any", "List", "Dict", "Tuple", "Set", "FrozenSet", "Optional", "Union", "Sequence",
           "Mapping", "MutableMapping", "Callable", "Type", "Iterable")

_EXACT: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,
    "collections.defaultdict": _defaultdict,
    "_operator.getitem": _subscript,
    "operator.getitem": _subscript,
    "builtins.type": _type_call,
    "builtins.Ellipsis": Ellipsis,  # in typing subscripts such as Tuple[Any, ...]
    "torch.torch_version.TorchVersion": str,  # torch.__version__ saved as metadata: a str subclass
    **{f"builtins.{t.__name__}": t for t in (int, float, str, bool, bytes, list, dict, tuple, frozenset, object)},
    **{f"typing.{n}": TypeRef(f"typing.{n}") for n in _TYPING},
    **{f"pathlib.{n}": _posix_path for n in ("PosixPath", "PurePosixPath", "Path")},
    **{f"pathlib.{n}": _windows_path for n in ("WindowsPath", "PureWindowsPath")},
    "numpy.dtype": NpDType,
    "numpy.ndarray": NpArray,
    **{f"numpy.{m}.multiarray.scalar": _np_scalar for m in ("core", "_core")},
    **{f"numpy.{m}.multiarray._reconstruct": _np_reconstruct for m in ("core", "_core")},
}

_STUB_CLASSES: dict[str, type] = {}


def _stub_class(name: str) -> type:
    """One stand-in class per pickled name (so ``to_plain`` knows what each bag was)."""
    cls = _STUB_CLASSES.get(name)
    if cls is None:
        base = _OMEGACONF.get(name, Stub)
        cls = type(f"StandIn[{name}]", (base,), {"pickled_name": name, "__module__": __name__})
        _STUB_CLASSES[name] = cls
    return cls


_TORCH_BASICS = {"collections.OrderedDict", "collections.Counter", "_codecs.encode", "builtins.set",
                 "builtins.bytearray", "builtins.complex"}


def _torch_allowed() -> set[str] | None:
    """The globals torch's weights-only unpickler accepts by itself (None if its private API moved)."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return set(_get_allowed_globals())
    except Exception:
        return None


def _stand_in(name: str, torch_allowed: set[str] | None):
    """The object the pickled global ``name`` is loaded as; ``None``: torch handles it; KeyError: unsafe."""
    if torch_allowed is not None and name in torch_allowed:
        return None
    if torch_allowed is None and (name in _TORCH_BASICS or name.startswith("torch.")):
        return None  # torch's own unpickler still rejects what it does not know
    if name in _EXACT:
        return _EXACT[name]
    if name.split(".", 1)[0] in BAG_PACKAGES:
        return _stub_class(name)
    raise KeyError(name)


# --------------------------------------------------------------------------------------------
# scanning (never executes the pickle)
def _map_name(module: str, name: str) -> str:
    """Python 2 names as torch's unpickler maps them (``__builtin__.unicode`` -> ``builtins.str``)."""
    try:
        from torch._utils import IMPORT_MAPPING, NAME_MAPPING
    except ImportError:  # pragma: no cover
        from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
    if (module, name) in NAME_MAPPING:
        module, name = NAME_MAPPING[(module, name)]
    elif module in IMPORT_MAPPING:
        module = IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _scan(stream) -> set[str]:
    found = set()
    for op, arg, _ in pickletools.genops(stream):
        if op.name in ("GLOBAL", "INST"):
            module, name = arg.split(" ", 1)
            found.add(_map_name(module, name))
        elif op.name == "STACK_GLOBAL":  # protocol 4: not produced by torch.save, not loadable safely
            found.add("<STACK_GLOBAL of pickle protocol 4>")
    return found


def _corrupt(path, what: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"{path} {what}. If it was downloaded, the copy is probably incomplete: delete it or load it again "
        "with refresh=True (e.g. S3PRLUpstream(name, refresh=True)); if it is your own file, re-save it."
    )


def pickled_globals(path: str | os.PathLike) -> set[str]:
    """The global names (``module.qualname``) the pickle of a ``torch.save`` file references.

    The file is only disassembled, never unpickled. Raises ``CorruptCheckpointError`` for files that are
    truncated or not ``torch.save`` output.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise _corrupt(path, "is empty")
    try:
        if head.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
                    raise CheckpointError(f"{path} is a TorchScript archive (torch.jit.save), not a checkpoint")
                pkls = sorted((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), key=len)
                if not pkls:
                    raise _corrupt(path, "is a zip file without data.pkl, so not a torch.save checkpoint")
                return _scan(io.BytesIO(zf.read(pkls[0])))
        if head[:1] == b"\x80":  # legacy format: magic, protocol, sys info, then the object pickle
            found: set[str] = set()
            with open(path, "rb") as f:
                if _TORCH_MAGIC not in [arg for op, arg, _ in pickletools.genops(f) if op.name.startswith("LONG")]:
                    raise CheckpointError(
                        f"{path} is a plain pickle, not a torch.save checkpoint; s3prl does not unpickle it"
                    )
                for _ in range(3):
                    found |= _scan(f)
            return found
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, pickle.UnpicklingError, OSError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise _corrupt(path, f"is truncated or damaged ({type(e).__name__}: {e})") from None
    preview = head.lstrip()[:15]
    hint = " (it looks like an HTML page: the download returned an error page)" if preview[:1] == b"<" else ""
    raise _corrupt(path, f"is not a PyTorch checkpoint: it starts with {preview!r}{hint}")


# --------------------------------------------------------------------------------------------
# loading
def load_checkpoint(path: str | os.PathLike) -> Any:
    """Load a checkpoint file or model folder onto the CPU as plain data, without running pickled code.

    * ``*.safetensors`` file: ``safetensors.torch.load_file``.
    * folder: all its ``*.safetensors`` files merged, else its ``pytorch_model.bin``.
    * anything else: a ``torch.save`` file, read with torch's weights-only unpickler and the allow-list
      described in this module's docstring; the result goes through ``to_plain``.

    Raises ``FileNotFoundError``, ``UnsafeCheckpointError`` (names the offending globals and what to
    do), ``CorruptCheckpointError`` (truncated/damaged file) or ``CheckpointError``.
    """
    path = Path(os.path.expanduser(str(path)))
    if path.is_dir():
        return _load_folder(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    return _load_pickled(path)


def _load_folder(path: Path) -> dict:
    files = sorted(path.glob("*.safetensors"))
    if files:
        merged: dict = {}
        for f in files:
            merged.update(_load_safetensors(f))
        return merged
    for name in ("pytorch_model.bin", "model.pt"):
        if (path / name).is_file():
            return _load_pickled(path / name)
    raise CheckpointError(f"{path} is a folder without *.safetensors or pytorch_model.bin weights")


def _load_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise _corrupt(path, f"is not a readable safetensors file ({e})") from None


def _load_pickled(path: Path) -> Any:
    names = pickled_globals(path)
    allowed = _torch_allowed()
    mapping, unsafe = {}, []
    for name in sorted(names):
        try:
            obj = _stand_in(name, allowed)
        except KeyError:
            unsafe.append(name)
            continue
        if obj is not None:
            mapping[name] = obj
    if unsafe:
        if _trusted():
            return _load_trusted(path, unsafe)
        raise UnsafeCheckpointError(
            f"{path} pickles Python objects that s3prl will not load, because unpickling them can run "
            f"arbitrary code: {', '.join(unsafe)}. If you trust the file, convert it once with the tool "
            "that wrote it into plain tensors and dicts (e.g. torch.save(model.state_dict(), ...) or "
            f"safetensors), or set {TRUST_ENV}=1 to unpickle it fully (this runs code from the file)."
        )
    try:
        with _LOCK, torch.serialization.safe_globals([(obj, name) for name, obj in mapping.items()]):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise UnsafeCheckpointError(
            f"{path} could not be loaded safely: {detail}. If you trust the file, set {TRUST_ENV}=1 to "
            "unpickle it fully, or convert it into plain tensors and dicts with the tool that wrote it."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise _corrupt(path, f"is truncated or damaged ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    return to_plain(obj)


def _trusted() -> bool:
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _load_trusted(path: Path, unsafe: list[str]) -> Any:
    warnings.warn(
        f"{TRUST_ENV}=1: fully unpickling {path} (it references {', '.join(unsafe)}); this runs any code "
        "the file contains. Only do this for files you trust.",
        stacklevel=3,
    )
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except ModuleNotFoundError as e:
        raise CheckpointError(f"{path} needs module {e.name!r} to be unpickled fully: {e}") from None
    return to_plain(obj)


# --------------------------------------------------------------------------------------------
# stand-ins -> plain python
_INTERP = re.compile(r"^\$\{(\.*)([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\}$")


def to_plain(obj: Any) -> Any:
    """Replace the stand-ins (and Namespace, Enum, omegaconf objects) by dicts, lists and scalars."""
    return _plain(obj, set())


def _plain(obj, active: set[int]):
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, torch.Tensor)):
        return obj
    key = id(obj)
    if key in active:  # a reference cycle (e.g. an object that points to its parent)
        return None
    active.add(key)
    try:
        return _plain_container(obj, active)
    finally:
        active.discard(key)


def _plain_container(obj, active):
    if isinstance(obj, dict):
        out = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[_plain(k, active)] = _plain(v, active)
        if hasattr(obj, "_metadata"):  # state dicts keep torch's per-module version metadata
            out._metadata = obj._metadata
        return out
    if type(obj) is list:
        return [_plain(v, active) for v in obj]
    if type(obj) is tuple:
        return tuple(_plain(v, active) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return {_plain(v, active) for v in obj}
    if isinstance(obj, argparse.Namespace):
        return {k: _plain(v, active) for k, v in vars(obj).items()}
    if isinstance(obj, Stub):
        return _plain_stub(obj, active)
    if isinstance(obj, NpArray):
        arr = obj.value
        return arr.tolist() if arr.dtype.kind in "US" else torch.from_numpy(arr.copy())
    if isinstance(obj, TypeRef):
        return obj.name
    if isinstance(obj, type):
        return getattr(obj, "pickled_name", f"{obj.__module__}.{obj.__qualname__}")
    return _plain_foreign(obj, active)


def _plain_stub(obj: Stub, active):
    state = obj._state
    if isinstance(obj, (DictConfigStub, ListConfigStub)):
        st = state if isinstance(state, dict) else {}
        content = _plain(st.get("_content"), active)
        if isinstance(obj, TupleConfigStub) and isinstance(content, list):
            content = tuple(content)
        if st.get("_parent") is None and isinstance(content, dict):
            content = _resolve(content)
        return content
    if isinstance(obj, NodeStub):
        return _plain((state or {}).get("_val") if isinstance(state, dict) else None, active)
    if isinstance(obj, MetadataStub):
        return None
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], (dict, type(None))):
        state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
    if isinstance(state, dict):
        return {k: _plain(v, active) for k, v in state.items()}
    if state is not None:
        return _plain(state, active)
    if len(obj._args) == 1:  # an Enum member: its value
        return _plain(obj._args[0], active)
    return [_plain(a, active) for a in obj._args]


def _plain_foreign(obj, active):
    """Real objects, only met after a trusted full unpickling."""
    import enum

    if isinstance(obj, enum.Enum):
        return _plain(obj.value, active)
    if type(obj).__module__.split(".")[0] == "omegaconf":
        from omegaconf import OmegaConf

        return OmegaConf.to_container(obj, resolve=True, enum_to_str=True)
    if type(obj).__module__.split(".")[0] == "numpy":
        return obj.item() if getattr(obj, "ndim", 1) == 0 else torch.from_numpy(obj.copy())
    return obj


def _resolve(root: dict, max_depth: int = 10) -> dict:
    """Resolve ``${a.b}`` / relative ``${.b}`` interpolations that point to a value in ``root``."""

    def lookup(parents: list, dots: int, dotted: str):
        node = root if not dots else (parents[-dots] if dots <= len(parents) else None)
        for part in dotted.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise LookupError(dotted)
        return node

    def value(v, parents: list, depth: int = 0):
        m = _INTERP.match(v) if isinstance(v, str) else None
        if m is None or depth >= max_depth:
            return v
        try:
            target = lookup(parents, len(m.group(1)), m.group(2))
        except LookupError:
            return v
        return value(target, parents, depth + 1)

    def walk(node, parents: list):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in list(items):
            if isinstance(v, (dict, list)):
                walk(v, parents + [node])
            elif isinstance(v, str):
                node[k] = value(v, parents + [node])

    walk(root, [])
    return root
