"""DiscreteBERT: a RoBERTa encoder over the discrete units of vq-wav2vec (k-means).

Per utterance, as the original: vq-wav2vec k-means code ids (T, 2) -> one token per frame, the string
``"i-j"`` looked up in the fairseq dictionary stored in the checkpoint (unknown pairs -> ``<unk>``), framed
by ``<s>`` ... ``</s>`` -> RoBERTa on chunks of ``max_positions`` tokens (positions restart in every chunk),
chunk outputs concatenated over time. Hidden states: the embedding output, then every layer's output
(``return_all_hiddens``); the final LayerNorm of pre-LN models is not among them, as in the original.

Lengths: an utterance with T code frames gives T + 2 states (``<s>`` first, ``</s>`` last), and that is
what this module returns; ``S3PRLUpstream`` then crops or repeats to ceil(len / 160) frames like the
original, so frame t of the result is the state of token t (``<s>`` at t = 0). The original keeps
``round(len / 160)`` code frames of its padded batch; at batch size 1 that is every frame the model
produced (fewer than round(len / 160)), which is what each utterance gets here whatever the batch.

The tokenizer front end is the ``vq_wav2vec_kmeans`` model: its registry checkpoint, as the original, unless
the option ``frontend_ckpt`` names another file or URL.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .. import checkpoint as ckpt_io
from ..convert import config as config_io
from ..convert import fairseq as fairseq_convert
from ..convert.errors import CheckpointConfigError, CheckpointFormatError
from . import wav2vec
from .wav2vec2 import Packing, TransformerLayer, Wav2Vec2Config

# fairseq RoBERTa ``base_architecture`` defaults for keys that shape the encoder.
DEFAULTS = {
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "encoder_normalize_before": False,
    "encoder_learned_pos": True,
    "no_token_positional_embeddings": False,
    "layernorm_embedding": True,
    "no_scale_embedding": True,
    "max_positions": 512,
}
UNSUPPORTED = {"quant_noise_pq": 0, "adaptive_input": False, "encoder_layers_to_keep": None}
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_accurate": "gelu_accurate", "gelu_fast": "gelu_accurate"}

PREFIX = r"encoder\.sentence_encoder\."
# Stored tensors that never reach an inner state.
DROP = [
    r"encoder\.lm_head\..+",  # masked-LM head
    r"classification_heads\..+",
    PREFIX + r"version",  # only decides whether the final LayerNorm exists (below)
    PREFIX + r"layer_norm\.(weight|bias)",  # final LayerNorm of pre-LN models: applied after the last inner state
    PREFIX + r"embed_positions\._float_tensor",  # sinusoidal positions: a dtype/device marker
    PREFIX + r"embed_positions\.weights",  # old cache of the sinusoidal table (recomputed)
]
KEY_MAP = [
    (PREFIX + r"embed_tokens\.weight", "embed_tokens.weight"),
    (PREFIX + r"embed_positions\.weight", "embed_positions.weight"),
    (PREFIX + r"layernorm_embedding\.(weight|bias)", r"embed_norm.\1"),
    (PREFIX + r"layers\.(\d+)\.self_attn\.in_proj_(weight|bias)", r"layers.\1.attention.qkv.\2"),
    (PREFIX + r"layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)", r"layers.\1.attention.out_proj.\2"),
    (PREFIX + r"layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"layers.\1.attention_norm.\2"),
    (PREFIX + r"layers\.(\d+)\.fc([12])\.(weight|bias)", r"layers.\1.fc\2.\3"),
    (PREFIX + r"layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"layers.\1.final_norm.\2"),
]
QKV = re.compile(PREFIX + r"layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)")
# Older fairseq names, upgraded by fairseq at load time: applied in this order before the key map.
RENAMES = [
    (r"^decoder\.", "encoder."),
    (r"\.emb_layer_norm\.", ".layernorm_embedding."),
    (r"\.layer_norms\.0\.", ".self_attn_layer_norm."),
    (r"\.layer_norms\.1\.", ".final_layer_norm."),
]


@dataclass
class RobertaConfig:
    """Architecture of the RoBERTa encoder (shapes and structural switches only)."""

    vocab_size: int
    padding_idx: int = 1
    num_layers: int = 12
    embed_dim: int = 768
    ffn_dim: int = 3072
    num_heads: int = 12
    activation: str = "gelu"
    normalize_before: bool = False
    positions: str = "learned"  # "learned", "sinusoidal" or "none"
    layernorm_embedding: bool = True
    scale_embedding: bool = False  # multiply token embeddings by sqrt(embed_dim)
    max_positions: int = 512  # tokens per chunk
    extra: dict = field(default_factory=dict)

    def layer_config(self) -> Wav2Vec2Config:
        """The wav2vec 2.0 transformer layer is the same block: reuse it."""
        return Wav2Vec2Config(embed_dim=self.embed_dim, ffn_dim=self.ffn_dim, num_heads=self.num_heads,
                              activation=self.activation, layer_norm_first=self.normalize_before)


def sinusoidal_table(rows: int, dim: int, padding_idx: int) -> torch.Tensor:
    """fairseq's sinusoidal position table (sin half, then cos half; the padding row is zero)."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    angles = torch.arange(rows, dtype=torch.float)[:, None] * freq[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(rows, 1)], dim=1)
    table[padding_idx] = 0
    return table


class Dictionary:
    """The fairseq dictionary: ``<s> <pad> </s> <unk>``, then the file's symbols, then ``<mask>``."""

    def __init__(self, text: str, source: str):
        self.symbols = ["<s>", "<pad>", "</s>", "<unk>"]
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        for n, line in enumerate(text.replace("\r\n", "\n").split("\n")):
            if not line.strip():
                continue
            parts = line.rstrip().rsplit(" ", 1)
            overwrite = len(parts) == 2 and parts[1] == "#fairseq:overwrite"
            if overwrite:
                parts = parts[0].rsplit(" ", 1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise CheckpointFormatError(
                    f"{source}: text_dictionary line {n + 1} is not '<token> <count>': {line!r}")
            word = parts[0]
            if word in self.indices and not overwrite:
                raise CheckpointFormatError(f"{source}: text_dictionary has {word!r} twice (line {n + 1})")
            self.add(word, new=True)
        self.add("<mask>", new=False)

    def add(self, word: str, new: bool) -> None:
        if word in self.indices and not new:
            return
        self.indices[word] = len(self.symbols)
        self.symbols.append(word)

    def index(self, word: str) -> int:
        return self.indices.get(word, self.indices["<unk>"])


def code_table(dictionary: Dictionary, num_vars: int, groups: int) -> torch.Tensor:
    """(num_vars ** groups,) token index of every code tuple, flattened in row-major order."""
    table = torch.full((num_vars**groups,), dictionary.index("<unk>"), dtype=torch.long)
    for word, idx in dictionary.indices.items():
        parts = word.split("-")
        if len(parts) != groups or not all(p.isdigit() and str(int(p)) == p for p in parts):
            continue
        codes = [int(p) for p in parts]
        if all(c < num_vars for c in codes):
            table[sum(c * num_vars ** (groups - 1 - g) for g, c in enumerate(codes))] = idx
    return table


class DiscreteBert(nn.Module):
    """Waveform -> vq-wav2vec k-means units -> RoBERTa inner states [(B, T + 2, D)]."""

    def __init__(self, cfg: RobertaConfig, dictionary: Dictionary, frontend: wav2vec.Wav2Vec):
        super().__init__()
        if frontend.cfg.vq_type != "kmeans":
            raise CheckpointFormatError("the DiscreteBERT front end must be a vq-wav2vec k-means checkpoint")
        self.cfg, self.frontend = cfg, frontend
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        if cfg.positions == "learned":  # rows: padding_idx + 1 + max_positions
            self.embed_positions = nn.Embedding(cfg.max_positions + cfg.padding_idx + 1, cfg.embed_dim)
        self.embed_norm = nn.LayerNorm(cfg.embed_dim) if cfg.layernorm_embedding else None
        self.layers = nn.ModuleList(TransformerLayer(cfg.layer_config()) for _ in range(cfg.num_layers))
        self.embed_scale = math.sqrt(cfg.embed_dim) if cfg.scale_embedding else 1.0
        fcfg = frontend.cfg
        self.register_buffer("code_to_token", code_table(dictionary, fcfg.vq_vars, fcfg.vq_groups), persistent=False)
        self.bos, self.eos = dictionary.index("<s>"), dictionary.index("</s>")

    @property
    def num_layers(self) -> int:
        return self.cfg.num_layers + 1

    @property
    def hidden_sizes(self) -> list[int]:
        return [self.cfg.embed_dim] * self.num_layers

    @property
    def downsample_rates(self) -> list[int]:
        return [self.frontend.cfg.downsample_rate] * self.num_layers

    def tokens(self, wav: torch.Tensor) -> torch.Tensor:
        """One unpadded utterance (1, samples) -> its token ids (T + 2,)."""
        vq, n = self.frontend.cfg, wav.size(1)
        frames = int(self.frontend.frame_lengths(torch.tensor([n]))[0])
        keep = min(frames, round(n / vq.downsample_rate))  # the original keeps round(len / 160) code frames
        frame_tokens = torch.zeros(0, dtype=torch.long, device=wav.device)
        if keep > 0:
            ids = self.frontend.quantize(self.frontend.feature_extractor(wav))[1][0, :keep]  # (T, G)
            flat = sum(ids[:, g] * vq.vq_vars ** (vq.vq_groups - 1 - g) for g in range(vq.vq_groups))
            frame_tokens = self.code_to_token[flat]
        return torch.cat([frame_tokens.new_tensor([self.bos]), frame_tokens, frame_tokens.new_tensor([self.eos])])

    def encode(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """One chunk of at most max_positions tokens (T,) -> [embedding, layer 1, ..., layer L], each (T, D)."""
        T, pad = tokens.size(0), self.cfg.padding_idx
        x = self.embed_scale * self.embed_tokens(tokens)  # (T, D)
        positions = torch.arange(pad + 1, pad + 1 + T, device=tokens.device)  # fairseq make_positions
        if self.cfg.positions == "learned":
            x = x + self.embed_positions(positions)
        elif self.cfg.positions == "sinusoidal":
            x = x + sinusoidal_table(pad + 1 + T, self.cfg.embed_dim, pad).to(x)[positions]
        if self.embed_norm is not None:
            x = self.embed_norm(x)
        pack = Packing(torch.tensor([T], device=x.device), T)  # one full sequence: no padding
        states = [x]
        for layer in self.layers:
            x, _ = layer(x, pack, None)
            states.append(x)
        return states

    def single(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """(1, samples) -> hidden states, each (T + 2, D): chunks of max_positions tokens, concatenated."""
        tokens = self.tokens(wav)
        chunks = [self.encode(c) for c in tokens.split(self.cfg.max_positions)]
        return [torch.cat(layer, dim=0) for layer in zip(*chunks)]

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        """wavs (B, T) zero-padded, wavs_len (B,) -> (hidden states [(B, T', D)], token counts [(B,)])."""
        wavs_len = wavs_len.to(wavs.device)
        per_utt = [self.single(wavs[b : b + 1, :n]) for b, n in enumerate(wavs_len.tolist())]
        lengths = torch.tensor([u[0].size(0) for u in per_utt], device=wavs.device)
        states = []
        for layer in range(self.num_layers):
            states.append(nn.utils.rnn.pad_sequence([u[layer] for u in per_utt], batch_first=True))
        return states, [lengths] * len(states)


# ---------------------------------------------------------------------------------------------
# Checkpoint import
# ---------------------------------------------------------------------------------------------


def config_from_dict(conf: dict, vocab_size: int, source: str) -> RobertaConfig:
    """RoBERTa ``args`` (a dict) -> RobertaConfig. As fairseq's ``base_architecture`` on an argparse
    Namespace, only absent keys take the defaults (a stored None stays None, i.e. off); None where a
    number is needed falls back to the default."""

    def get(key):
        value = conf.get(key, DEFAULTS[key])
        if type(DEFAULTS[key]) is int:
            hi = config_io.MAX_LAYERS if key == "encoder_layers" else config_io.MAX_SIZE
            return config_io.as_int(DEFAULTS[key] if value is None else value, key, source, 1, hi)
        if type(DEFAULTS[key]) is bool:
            return False if value is None else config_io.as_bool(value, key, source)
        return value

    for key, ok in UNSUPPORTED.items():
        if conf.get(key, ok) not in (ok, None, "", False, 0):
            raise CheckpointFormatError(f"{source}: RoBERTa option {key}={conf[key]!r} is not supported")
    act = get("activation_fn")
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise CheckpointFormatError(f"{source}: activation_fn {act!r} is not supported ({', '.join(ACTIVATIONS)})")
    positions = "none" if get("no_token_positional_embeddings") else (
        "learned" if get("encoder_learned_pos") else "sinusoidal")
    embed, heads = get("encoder_embed_dim"), get("encoder_attention_heads")
    if embed % heads:
        raise CheckpointConfigError(source, "encoder_attention_heads", heads, f"a divisor of encoder_embed_dim={embed}")
    return RobertaConfig(
        vocab_size=vocab_size, num_layers=get("encoder_layers"), embed_dim=embed,
        ffn_dim=get("encoder_ffn_embed_dim"), num_heads=heads,
        activation=ACTIVATIONS[act], normalize_before=get("encoder_normalize_before"), positions=positions,
        layernorm_embedding=get("layernorm_embedding"), scale_embedding=not get("no_scale_embedding"),
        max_positions=get("max_positions"), extra={"source": source},
    )


def estimated_parameters(cfg: RobertaConfig) -> int:
    """A lower bound of the transformer's weights (token embeddings, attention, FFN)."""
    d = cfg.embed_dim
    return cfg.vocab_size * d + cfg.num_layers * (4 * d * d + 2 * d * cfg.ffn_dim)


def map_state(state: dict, source: str) -> dict:
    """fairseq RoBERTa key names (old or new) -> ours; q/k/v fused into one projection."""
    out, qkv, unknown = {}, {}, []
    for key, value in state.items():
        for pattern, repl in RENAMES:
            key = re.sub(pattern, repl, key)
        match = QKV.fullmatch(key)
        if match:
            layer, which, kind = match.groups()
            qkv.setdefault((layer, kind), {})[which] = value
            continue
        for pattern, repl in KEY_MAP:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            if not any(re.fullmatch(p, key) for p in DROP):
                unknown.append(key)
    if unknown:
        raise CheckpointFormatError(f"{source}: unexpected checkpoint keys (not mapped, not known to be unused): "
                                    f"{unknown[:10]}")
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise CheckpointFormatError(f"{source}: layer {layer}: incomplete q/k/v {kind} ({sorted(parts)})")
        out[f"layers.{layer}.attention.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def load_roberta(obj, source: str) -> tuple[RobertaConfig, Dictionary, dict]:
    """The s3prl-converted DiscreteBERT file ``{task_cfg, model_cfg, model_weight, text_dictionary}``."""
    keys = {"task_cfg", "model_cfg", "model_weight", "text_dictionary"}
    if not isinstance(obj, dict) or not keys <= set(obj):
        raise CheckpointFormatError(
            f"{source} is {fairseq_convert.describe_format(obj)}, not an s3prl-converted DiscreteBERT checkpoint "
            f"(needs {sorted(keys)}; the fairseq bert_kmeans.tar is not read directly)")
    dictionary = Dictionary(str(obj["text_dictionary"]), source)
    cfg = config_from_dict(config_io.as_mapping(obj["model_cfg"], "model_cfg", source), len(dictionary.symbols),
                           source)
    weights = obj["model_weight"]
    if not isinstance(weights, dict):
        raise CheckpointFormatError(f"{source}: model_weight is a {type(weights).__name__}, expected a dict of tensors")
    config_io.require_tensors(weights, source)
    config_io.check_model_size(estimated_parameters(cfg), weights, source)
    return cfg, dictionary, map_state(dict(weights), source)


def default_frontend() -> str:
    """The local copy of the ``vq_wav2vec_kmeans`` registry checkpoint (downloaded and cached once)."""
    from .. import registry
    from ..nn.upstream import resolve_source

    from ..download import DownloadError, OfflineError

    name, entry = registry.resolve("vq_wav2vec_kmeans")
    try:
        return resolve_source(name, entry, None, refresh=False)
    except (DownloadError, OfflineError) as e:  # same error, with the way out for DiscreteBERT
        e.args = (f"{e.args[0] if e.args else e}\nDiscreteBERT tokenizes with the vq_wav2vec_kmeans checkpoint: "
                  "pass extra_conf={'frontend_ckpt': '/path/to/vq-wav2vec_kmeans.pt'} to use a local copy.",
                  *e.args[1:])
        raise


def build(ckpt: str | None, frontend_ckpt: str | None = None, legacy: bool = False, **options) -> DiscreteBert:
    """DiscreteBERT from the s3prl-converted RoBERTa file and a vq-wav2vec k-means checkpoint."""
    if options:
        raise TypeError(f"unknown option(s) for DiscreteBERT: {', '.join(sorted(options))} "
                        "(supported: frontend_ckpt)")
    if ckpt is None:
        raise ValueError("DiscreteBERT needs a checkpoint: pass path_or_url / ckpt")
    if legacy:
        raise ValueError("legacy=True (fairseq's bert_kmeans.tar) is not supported: use the s3prl-converted file")
    cfg, dictionary, state = load_roberta(ckpt_io.load_checkpoint(ckpt), ckpt)
    if frontend_ckpt is not None:
        from ..download import resolve_checkpoint

        frontend_ckpt = resolve_checkpoint(frontend_ckpt)
    frontend = wav2vec.load_model(frontend_ckpt or default_frontend())
    model = DiscreteBert(cfg, dictionary, frontend)
    state.update({f"frontend.{k}": v for k, v in frontend.state_dict().items()})
    fairseq_convert.load_state(model, state, ckpt, mapped=True)
    return model.eval()
