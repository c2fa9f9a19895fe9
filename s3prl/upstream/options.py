"""What each family's ``extra_conf`` options mean and which values they take (shown by ``s3prl info``).

The option names and defaults are read from each family's ``build`` signature, so they cannot drift from
the code; this table only adds the allowed values. A test checks that every option of every builder has
a line here.
"""

from __future__ import annotations

import inspect

from . import FAMILIES

_MODEL_CONFIG = "a YAML/JSON file in the original's format (the entry's own file when not given)"
_WINDOW = "seconds > 0: the sliding window the original runs the model on"

# family -> option -> allowed values; "*" holds the texts shared by every family
ALLOWED: dict[str, dict[str, str]] = {
    "*": {
        "fairseq": "true | false: read the checkpoint as a raw fairseq file (detected without it)",
        "legacy": "false only (true loaded through fairseq in the original: pass fairseq=true instead)",
        "model_config": _MODEL_CONFIG,
        "window_secs": _WINDOW,
        "stride_secs": "seconds > 0: the hop between windows",
    },
    "wav2vec2": {"feature_selection": "null (every layer's output) | fairseq_layers | "
                                      "fairseq_layers_before_residual"},
    "ast": {"feature_selection": "cls (default: the utterance embedding) | hidden_states"},
    "lighthubert": {"subnet": "a dict of the searched sub-network (layer_num, embed_dim, heads_num, atten_dim, "
                              "ffn_embed); null: the checkpoint's full network"},
    "espnet_hubert": {"config": "the ESPnet config.yaml beside the .pth (found next to it when not given)"},
    "mos_prediction": {"upstream": "apc | tera | wav2vec2: the upstream the MOS head was trained on",
                       "upstream_ckpt": "that upstream's checkpoint (the registered one when not given)"},
    "ssast": {"model_size": "<size>_f (frame patches) | <size>_p (16x16 patches), e.g. base_f, base_p; the "
                        "checkpoint must have been pre-trained with that patch kind"},
    "passt": {"arch": "base | base2level | base2levelmel | base20sec | base30sec | hop100base | hop100base2lvl | "
                      "hop100base2lvlmel | hop160base | hop160base2lvl | hop160base2lvlmel (null: the entry's)"},
    "byol_a": {"feature_d": "an int (512 and 2048 released): the embedding size (null: read from the checkpoint)"},
    "byol_s": {"model_name": "default | resnetish34 | cvt", "hop_secs": "seconds > 0: the hop between windows"},
    "vggish": {"pca": "the PCA parameters file (.pth) of the second checkpoint (null: the registered one)",
               "postprocess": "true | false: PCA, clipping and 8-bit quantisation as the original"},
    "baseline": {"feature": "fbank | fbank_no_cmvn | mfcc | mel | linear | spectrogram"},
    "mockingjay": {"options_config": "a YAML of the original's options (load_pretrain, no_grad, dropout, "
                                     "spec_aug, spec_aug_prev, output_hidden_states, select_layer)"},
    "roberta": {"frontend_ckpt": "the vq-wav2vec checkpoint that tokenizes the audio (the registered one "
                                 "when not given)"},
}


def _builder_family(family: str) -> str:
    """The first family name in FAMILIES that shares ``family``'s builder (e.g. hubert -> wav2vec2)."""
    builder = FAMILIES[family]
    return next(name for name, fn in FAMILIES.items() if fn is builder)


def family_options(family: str) -> list[tuple[str, object, str]]:
    """``(option, default, allowed values)`` of every keyword option of ``family``'s builder."""
    builder = FAMILIES[family]
    table = {**ALLOWED["*"], **ALLOWED.get(_builder_family(family), {})}
    out = []
    for name, param in inspect.signature(builder).parameters.items():
        if name == "ckpt" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        default = None if param.default is inspect.Parameter.empty else param.default
        out.append((name, default, table.get(name, "")))
    return out
