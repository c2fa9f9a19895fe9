"""Fine-tuned wav2vec 2.0 CTC models (fairseq ``Wav2VecCtc``, HuggingFace ``Wav2Vec2ForCTC``) for inference.

The acoustic model is the upstream's :class:`~s3prl.upstream.wav2vec2.Wav2Vec2` (same modules, same key maps);
fine-tuning adds one linear projection of the encoder output onto the output symbols:

* fairseq (``cfg.model._name == "wav2vec_ctc"``): ``w2v_encoder.w2v_model.*`` (the pre-trained model, its
  configuration in ``cfg.model.w2v_args``, or in the ``w2v_path`` file when ``w2v_args`` was not saved) and
  ``w2v_encoder.proj``; output row ``i`` is symbol ``i`` of fairseq's target dictionary (``<s> <pad> </s> <unk>``
  then ``dict.ltr.txt``), the blank is ``<s>`` (or ``<ctc_blank>``). The emissions are fairseq's
  ``Wav2VecCtc.get_logits``: raw logits, ``blank_weight`` applied, frames past an utterance's end forced to blank.
* HuggingFace folders (``config.json`` + weights + ``vocab.json``): the base model through
  ``convert.huggingface`` and ``lm_head``; the blank is ``pad_token_id``, the word boundary ``|``.

Each utterance of a batch gets its batch-size-1 emissions (fairseq's padded batches do not: its first GroupNorm
sees the padding).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert import huggingface as hf_convert
from ..convert.errors import CheckpointFormatError
from ..upstream.wav2vec2 import Wav2Vec2, lengths_to_mask

ENCODER_PREFIX = "w2v_encoder.w2v_model."
PROJ_KEYS = ("w2v_encoder.proj.weight", "w2v_encoder.proj.bias")
NOT_FINE_TUNED = ("{source} is a pre-trained wav2vec 2.0-family checkpoint without a CTC output layer "
                  "({what}): it cannot transcribe. Pass a fine-tuned model (fairseq's *_960h.pt, a checkpoint of "
                  "`s3prl wav2vec2 train --arch wav2vec_ctc`, or a HuggingFace Wav2Vec2ForCTC folder)")


@dataclass
class Vocabulary:
    """Output symbols of a CTC model: ``symbols[i]`` is output row ``i``."""

    symbols: list[str]
    blank: int = 0
    hidden: set[int] = field(default_factory=set)  # ids never shown (fairseq's bos/eos, HF's <s> </s>)
    boundary: str = "|"

    @classmethod
    def fairseq(cls, symbols: list[str]) -> "Vocabulary":
        """fairseq ``Dictionary`` order (``<s> <pad> </s> <unk>`` first): blank ``<ctc_blank>`` else ``<s>``."""
        blank = symbols.index("<ctc_blank>") if "<ctc_blank>" in symbols else 0
        return cls(list(symbols), blank, {0, 2})

    @classmethod
    def load_fairseq(cls, path: str) -> "Vocabulary":
        """A ``dict.ltr.txt`` (``SYMBOL COUNT`` lines) behind fairseq's four specials."""
        from ..text.dictionary import CharDictionary

        if not os.path.isfile(path):
            raise FileNotFoundError(f"dictionary {path!r} not found: fairseq's infer.py reads the output symbols "
                                    "from DATA/dict.ltr.txt (write it with `s3prl wav2vec2 labels "
                                    "DATA/train.tsv --output-dir DATA --output-name train`)")
        try:
            return cls.fairseq(CharDictionary.load(path).symbols)
        except ValueError as err:
            raise CheckpointFormatError(f"{err} (a fairseq dictionary file)") from None

    @property
    def unk(self) -> int:
        return self.symbols.index("<unk>") if "<unk>" in self.symbols else -1

    def index(self, symbol: str) -> int:
        """fairseq ``Dictionary.index``: unknown symbols give ``<unk>``."""
        return self.symbols.index(symbol) if symbol in self.symbols else self.unk

    def string(self, ids) -> str:
        """fairseq ``Dictionary.string``: space-separated symbols, hidden ids left out."""
        return " ".join(self.symbols[i] if 0 <= i < len(self.symbols) else "<unk>" for i in map(int, ids)
                        if i not in self.hidden)

    def words(self, pieces: str) -> str:
        """fairseq's ``post_process(pieces, "letter")``: spaces removed, ``|`` becomes a space."""
        return pieces.replace(" ", "").replace(self.boundary, " ").strip()


class Wav2Vec2Ctc(nn.Module):
    """``encoder`` (the upstream model) + ``proj``: waveforms -> CTC emissions (B, T, V)."""

    def __init__(self, encoder: Wav2Vec2, num_outputs: int, vocabulary: Vocabulary | None = None,
                 blank_weight: float = 0.0, blank_mode: str = "add"):
        super().__init__()
        if blank_mode not in ("add", "set"):
            raise CheckpointFormatError(f"blank_mode must be 'add' or 'set', got {blank_mode!r}")
        self.encoder = encoder
        self.proj = nn.Linear(encoder.cfg.embed_dim, num_outputs)
        self.vocabulary = vocabulary
        self.blank_weight, self.blank_mode = float(blank_weight), blank_mode

    @property
    def downsample_rate(self) -> int:
        return self.encoder.cfg.downsample_rate

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wavs (B, T) zero-padded, wavs_len (B,) -> (emissions (B, T', V), frame lengths (B,))."""
        states, lengths = self.encoder(wavs, wavs_len)
        logits = self.proj(states[-1])  # (B, T', V): fairseq's encoder output is the last state
        if self.blank_weight != 0:
            if self.blank_mode == "add":
                logits[..., 0] += self.blank_weight
            else:
                logits[..., 0] = self.blank_weight
        pad = ~lengths_to_mask(lengths[-1], logits.size(1))  # (B, T')
        if bool(pad.any()):  # as fairseq's get_logits: padded frames are certain blanks
            forced = torch.full_like(logits[0, 0], float("-inf"))
            forced[0] = 0.0
            logits[pad] = forced
        return logits, lengths[-1]


# ---------------------------------------------------------------------------------------------
# fairseq fine-tuned checkpoints
# ---------------------------------------------------------------------------------------------


def _section(cfg: dict, name: str, source: str) -> dict:
    value = cfg.get(name)
    return config_io.as_mapping(value, f"cfg.{name}", source) if value is not None else {}


def _pretraining_cfg(model_cfg: dict, path: str, source: str) -> tuple[dict, dict]:
    """(model cfg, task cfg) of the pre-trained wav2vec 2.0 inside a fine-tuned file (``w2v_args``, else the
    file named by ``w2v_path``, also looked up next to the checkpoint)."""
    args = model_cfg.get("w2v_args")
    if args is None:
        w2v_path = str(model_cfg.get("w2v_path") or "")
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.basename(w2v_path))
        found = next((p for p in (w2v_path, beside) if p and os.path.isfile(p)), None)
        if found is None:
            raise CheckpointFormatError(
                f"{source}: the fine-tuned model keeps no copy of its pre-training configuration (w2v_args is "
                f"None) and its w2v_path {w2v_path!r} was not found (nor {beside!r}): put the pre-trained "
                "checkpoint there")
        outer = config_io.as_mapping(ckpt_io.load_checkpoint(found), "checkpoint", found)
        args = outer.get("cfg") if outer.get("cfg") is not None else outer.get("args")
    args = config_io.as_mapping(args, "cfg.model.w2v_args", source)
    if isinstance(args.get("model"), dict) or hasattr(args.get("model"), "__dict__"):  # hydra layout
        return (config_io.as_mapping(args["model"], "w2v_args.model", source),
                _section(args, "task", source))
    return args, args  # old fairseq: one flat Namespace


def _split_state(state: dict, source: str) -> tuple[dict, dict]:
    encoder, head, other = {}, {}, []
    for key, value in state.items():
        if key.startswith(ENCODER_PREFIX):
            encoder[key[len(ENCODER_PREFIX):]] = value
        elif key in PROJ_KEYS:
            head[key.rsplit(".", 1)[1]] = value
        else:
            other.append(key)
    if other:
        raise CheckpointFormatError(f"{source}: unexpected keys for a wav2vec 2.0 CTC model (not "
                                    f"w2v_encoder.w2v_model.* / w2v_encoder.proj.*): {other[:8]}")
    if set(head) != {"weight", "bias"} or not all(isinstance(v, torch.Tensor) for v in head.values()):
        raise CheckpointFormatError(f"{source}: the CTC output layer w2v_encoder.proj.weight/bias is missing")
    return encoder, head


def _checkpoint_vocabulary(obj: dict) -> Vocabulary | None:
    """The target dictionary fairseq 0.12 pickles into ``task_state`` (None for older files)."""
    state = obj.get("task_state")
    target = state.get("target_dictionary") if isinstance(state, dict) else None
    if target is not None and not isinstance(target, dict):
        target = vars(target) if hasattr(target, "__dict__") else None
    symbols = target.get("symbols") if isinstance(target, dict) else None
    if isinstance(symbols, list) and all(isinstance(s, str) for s in symbols) and len(symbols) > 4:
        return Vocabulary.fairseq(symbols)
    return None


def from_fairseq(obj, path: str) -> Wav2Vec2Ctc:
    """A loaded fairseq fine-tuned checkpoint (``cfg`` or old ``args`` layout) -> our CTC model (eval mode)."""
    source = str(path)
    if isinstance(obj, dict) and {"model_cfg", "model_weight"} <= set(obj):  # s3prl-converted: pre-trained only
        raise CheckpointFormatError(NOT_FINE_TUNED.format(source=source, what="an s3prl-converted upstream"))
    if not isinstance(obj, dict) or "model" not in obj or not ({"cfg", "args"} & set(obj)):
        raise CheckpointFormatError(f"{source} is {fairseq_convert.describe_format(obj)}, not a fairseq "
                                    "fine-tuned wav2vec 2.0 checkpoint")
    cfg = config_io.as_mapping(obj["cfg"] if obj.get("cfg") is not None else obj["args"], "cfg", source)
    layered = isinstance(cfg.get("model"), dict) or hasattr(cfg.get("model"), "__dict__")
    model_cfg = _section(cfg, "model", source) if layered else cfg
    task_cfg = _section(cfg, "task", source) if layered else cfg
    state = fairseq_convert._state_dict(obj["model"], "model", source)
    fine_tuned = "w2v_args" in model_cfg or "w2v_path" in model_cfg or any(k.startswith("w2v_encoder.") for k in state)
    if not fine_tuned:
        raise CheckpointFormatError(NOT_FINE_TUNED.format(source=source, what="no w2v_encoder.proj"))
    if any(k.startswith(("encoder.w2v_encoder.", "decoder.")) for k in state):
        raise CheckpointFormatError(f"{source} is a fairseq wav2vec 2.0 sequence-to-sequence model "
                                    "(Wav2Vec2Seq2SeqModel): only CTC models (wav2vec_ctc) are supported")
    pre_model, pre_task = _pretraining_cfg(model_cfg, source, source)
    normalize = task_cfg.get("normalize", pre_task.get("normalize", False))
    cfg_arch = fairseq_convert.config_from_fairseq(pre_model, normalize, source)
    encoder_state, head = _split_state(state, source)
    encoder = Wav2Vec2(cfg_arch)
    fairseq_convert.load_state(encoder, encoder_state, source)
    conf = config_io.Settings(model_cfg, {"blank_weight": 0.0, "blank_mode": "add"}, source)
    model = Wav2Vec2Ctc(encoder, head["weight"].size(0), _checkpoint_vocabulary(obj),
                        conf.float("blank_weight", -1e9, 1e9), conf.str("blank_mode", ("add", "set")))
    _load_head(model, head, source)
    return model.eval()


def _load_head(model: Wav2Vec2Ctc, head: dict, source: str) -> None:
    shape = tuple(model.proj.weight.shape)
    if tuple(head["weight"].shape) != shape or tuple(head["bias"].shape) != shape[:1]:
        raise CheckpointFormatError(f"{source}: the CTC output layer has shape {tuple(head['weight'].shape)}, "
                                    f"expected {shape} (outputs x encoder dim)")
    model.proj.load_state_dict({k: v.float() for k, v in head.items()})


# ---------------------------------------------------------------------------------------------
# HuggingFace Wav2Vec2ForCTC folders
# ---------------------------------------------------------------------------------------------


def hf_vocabulary(folder: str, hf: dict, outputs: int) -> Vocabulary | None:
    """``vocab.json`` (token -> id) and the blank ``pad_token_id``; None when the folder has no vocabulary."""
    path = os.path.join(folder, "vocab.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
    except (OSError, ValueError) as err:
        raise CheckpointFormatError(f"{path}: not a readable JSON file ({err})") from None
    if isinstance(vocab, dict) and vocab and all(isinstance(v, dict) for v in vocab.values()):
        vocab = next(iter(vocab.values()))  # multilingual tokenizers: {language: {token: id}}
    if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
        raise CheckpointFormatError(f"{path}: expected a JSON object of token -> id")
    symbols = ["<unk>"] * outputs
    for token, i in vocab.items():
        if 0 <= i < outputs:
            symbols[i] = token
    delimiter = "|"
    tok_cfg = os.path.join(folder, "tokenizer_config.json")
    if os.path.isfile(tok_cfg):
        with open(tok_cfg, encoding="utf-8") as f:
            delimiter = json.load(f).get("word_delimiter_token") or "|"
    blank = hf.get("pad_token_id", 0)
    blank = blank if isinstance(blank, int) and 0 <= blank < outputs else 0
    hidden = {i for i, s in enumerate(symbols) if s in ("<s>", "</s>")} | {blank}
    return Vocabulary(symbols, blank, hidden, delimiter)


def from_huggingface(folder: str) -> Wav2Vec2Ctc:
    """A ``Wav2Vec2ForCTC`` (or HuBERT / WavLM / ... ``ForCTC``) folder -> our CTC model (eval mode)."""
    source = str(folder)
    weights = hf_convert.read_weights(folder)
    head = {k.split(".", 1)[1]: v for k, v in weights.items() if k.startswith("lm_head.")}
    if set(head) != {"weight", "bias"}:
        raise CheckpointFormatError(NOT_FINE_TUNED.format(source=source, what="no lm_head.weight/bias"))
    cfg_arch, state = hf_convert.load_folder(folder, weights)
    encoder = Wav2Vec2(cfg_arch)
    fairseq_convert.load_state(encoder, state, source)
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        hf = json.load(f)
    outputs = head["weight"].size(0)
    model = Wav2Vec2Ctc(encoder, outputs, hf_vocabulary(folder, hf, outputs))
    _load_head(model, head, source)
    return model.eval()


def load_ctc(path: str) -> Wav2Vec2Ctc:
    """A fine-tuned CTC model from a fairseq file or a HuggingFace folder (see module docstring)."""
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        return from_huggingface(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} not found (a fine-tuned fairseq .pt file or a HuggingFace "
                                "Wav2Vec2ForCTC folder)")
    return from_fairseq(ckpt_io.load_checkpoint(path), path)
