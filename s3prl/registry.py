"""The one table of upstream names.

Every name of the original s3prl registry (aliases, ``*_local``, ``*_url`` and ``*_custom`` included)
is a row of ``REGISTRY``. A row says which family builds it, where its checkpoint lives, what
``extra_conf`` defaults the original entry passes, and what the model is (its card). Families that
are not implemented yet are listed all the same: building them raises a clear error.

197 rows: the 192 names of the original ``s3prl/hub.py`` (HEAD 0.4.18) plus five names its hubconfs
define but ``hub.py`` does not import (``timit_posteriorgram_local``/``_url``, ``spec_augment``,
``spec_augment_local``/``_url``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

HF = "https://huggingface.co"
FB = "https://dl.fbaipublicfiles.com"
CONVERTED = f"{HF}/s3prl/converted_ckpts/resolve/main"
DBX = "https://www.dropbox.com/s"  # Dropbox share links: f"{DBX}/<id>/<file>?dl=1"
APC_SERIES = f"{HF}/leo19941227/apc_series/resolve/main"
BYOL_A = "https://github.com/nttcslab/byol-a/raw/master/pretrained_weights"
BYOL_S = "https://github.com/GasserElbanna/serab-byols/raw/main/checkpoints"
TORCHVGGISH = "https://github.com/harritaylor/torchvggish/releases/download/v0.1"
PASST = "https://github.com/kkoutini/PaSST/releases/download"


# sha256 digests published by the host, with the page each was read from (Hugging Face shows an LFS file's
# digest on its page; pages at a fixed revision, of files no later commit rewrote). Rows whose URL is here are
# verified against it on download; the others are trusted on first use (see `s3prl info NAME`).
PUBLISHED_SHA256: dict[str, tuple[str, str]] = {
    f"{APC_SERIES}/apc_360hr.ckpt": (
        "cee536c2c06f25e6348ba1330cca114c46c62a4fc692d0cbe6470c68ae2e6260",
        f"{HF}/leo19941227/apc_series/commit/e539bde29714108651296642ad94681a9594f149"),
    f"{APC_SERIES}/apc_960hr.ckpt": (
        "e6d1146560e81f8082387311aa2ad0907b04ca374660e4fbe0f0627792d78539",
        f"{HF}/leo19941227/apc_series/commit/e539bde29714108651296642ad94681a9594f149"),
    f"{APC_SERIES}/npc_360hr.ckpt": (
        "803709e379d6ba98dfab8f317b191c694f34c6418e7cefccbe4b9902ab01dcab",
        f"{HF}/leo19941227/apc_series/commit/e539bde29714108651296642ad94681a9594f149"),
    f"{APC_SERIES}/npc_960hr.ckpt": (
        "52f2a6a7c089c0df9a2cc48cffbcb24bdab9cda3024087dfb467c0fdaa590ba4",
        f"{HF}/leo19941227/apc_series/commit/e539bde29714108651296642ad94681a9594f149"),
    f"{APC_SERIES}/vq_apc_360hr.ckpt": (
        "0641964b801f1687630c7bcd16ff61a6ca5d7e185ea8ebda4634f00e805acb00",
        f"{HF}/leo19941227/apc_series/commit/e539bde29714108651296642ad94681a9594f149"),
    f"{APC_SERIES}/vq_apc_960hr.ckpt": (
        "eff61824a217a070bb4817345c4fdc086b946f9cbb8b308af9c49ab5ae123e7d",
        f"{HF}/leo19941227/apc_series/blob/e539bde29714108651296642ad94681a9594f149/vq_apc_960hr.ckpt"),
    f"{CONVERTED}/HuBERT_base_robust_mgr_best_loss_2.7821.pt": (
        "bd8d21254e2157c86a72f9f64e4d1164c594bc12e97acb59cdac1433afa7957b",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/HuBERT_base_robust_mgr_best_loss_2.7821.pt"),
    f"{CONVERTED}/LL_relpos_PT_no_FT.pt": (
        "fa7cee992cf03b48c3f1fb06e1b20f470c77ac3669cd868e72c21c55f37f6990",
        f"{HF}/s3prl/converted_ckpts/blob/ca0bf7a15ca57c277d530df7788711d6f0c51b8b/LL_relpos_PT_no_FT.pt"),
    f"{CONVERTED}/audio_base_ls.pt": (
        "47e207a4836c3a621fa3bca5745a722cea14ff0ca3e2e42fa4cad0593f0f1a74",
        f"{HF}/s3prl/converted_ckpts/blob/main/audio_base_ls.pt"),
    f"{CONVERTED}/checkpoint_decoar.pt": (
        "951dc991708a5758daea5827caa38b9b793bf5d8685410ef9ea276ba9d18125c",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/checkpoint_decoar.pt"),
    f"{CONVERTED}/hubert_base_ls960.pt": (
        "efe234bab3e77f0e10277f82094a24ad51fd7e8678b01f36cb0afef5527d3eb9",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/hubert_base_ls960.pt"),
    f"{CONVERTED}/hubert_large_ll60k.pt": (
        "89b400e65445b47f3db1956c62332d569f0136ac25987d2bf1eb9bc6581ff400",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/hubert_large_ll60k.pt"),
    f"{CONVERTED}/mhubert_base_vp_en_es_fr_it3.pt": (
        "12c49f764affb6b4c475ace9fa2ad17ba60b3b9912f4065e9b38ce5bbe10a5ab",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/mhubert_base_vp_en_es_fr_it3.pt"),
    f"{CONVERTED}/unispeech_sat_base.pt": (
        "06f8c2850146fbe739b8a4e4d1ae63ffb0557b78bea0dc3874f059af6205c982",
        f"{HF}/s3prl/converted_ckpts/blob/7bc66aee7c4a8c287923bf853afb702a5f8bf08e/unispeech_sat_base.pt"),
    f"{CONVERTED}/unispeech_sat_base_plus.pt": (
        "ef44ab470ad7182e4fd8575a0bd7c0804b646107737b7ae4a7606c8b4fd42e92",
        f"{HF}/s3prl/converted_ckpts/blob/main/unispeech_sat_base_plus.pt"),
    f"{CONVERTED}/unispeech_sat_large.pt": (
        "5b2139cc20b0a649cc597cfa7f3872a6890a5ed23cd0163761da7c0ea408554e",
        f"{HF}/s3prl/converted_ckpts/blob/main/unispeech_sat_large.pt"),
    f"{CONVERTED}/vox_pretrained.pt": (
        "c71e80b856e5be86ed04cf10aad0107d53b6624d9527dfb0d4925ba4d7ad9aa8",
        f"{HF}/s3prl/converted_ckpts/blob/main/vox_pretrained.pt"),
    f"{CONVERTED}/wav2vec2_base_s2st_es_voxpopuli.pt": (
        "c00fd68965900f268e30fa1694c9549cc674ccd5a0088ab913f0ec928a5a6eec",
        f"{HF}/s3prl/converted_ckpts/commit/8138395e2fa48d988b6f0253fc91d187e9f1e746"),
    f"{CONVERTED}/wav2vec_large.pt": (
        "39029a3736c478a44a023a83f6423c5aed1ff036b9c0d7828f7e76c3ced1bd28",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/wav2vec_large.pt"),
    f"{CONVERTED}/wav2vec_small.pt": (
        "1f1e77f1acedacbaee9bc0b5dabcba7b97907869c478567632a73e978f5dc7c8",
        f"{HF}/s3prl/converted_ckpts/blob/7bc66aee7c4a8c287923bf853afb702a5f8bf08e/wav2vec_small.pt"),
    f"{CONVERTED}/wav2vec_vox_new.pt": (
        "ba1dd46c4bfc9588b6679b66fa5a1e217d285f260117771dc19e1208fa2421cb",
        f"{HF}/s3prl/converted_ckpts/blob/7bc66aee7c4a8c287923bf853afb702a5f8bf08e/wav2vec_vox_new.pt"),
    f"{CONVERTED}/wavlm_base.pt": (
        "ba4523e6bdfc56d17e496ac7af1987af94bb7df07968a7d0c4662560f3ca5279",
        f"{HF}/s3prl/converted_ckpts/blob/main/wavlm_base.pt"),
    f"{CONVERTED}/wavlm_base_plus.pt": (
        "fcbcf2a94def92e90e086bb0727275d53b75a9c0e483e2abfa560ac951986b6d",
        f"{HF}/s3prl/converted_ckpts/commit/ca0bf7a15ca57c277d530df7788711d6f0c51b8b"),
    f"{CONVERTED}/wavlm_large.pt": (
        "6fb4b3c3e6aa567f0a997b30855859cb81528ee8078802af439f7b2da0bf100f",
        f"{HF}/s3prl/converted_ckpts/blob/main/wavlm_large.pt"),
    f"{CONVERTED}/xlsr2_300m.pt": (
        "9e998d92419b8b7d6c6768853e14a37ca1b159352801c8cd92afb02e2cef87ea",
        f"{HF}/s3prl/converted_ckpts/blob/8138395e2fa48d988b6f0253fc91d187e9f1e746/xlsr2_300m.pt"),
    f"{CONVERTED}/xlsr2_960m_1000k.pt": (
        "84a264522df25949dd42fd04045e2f6eec5d2bd1fe1497e370bf42f9bf3c7049",
        f"{HF}/s3prl/converted_ckpts/blob/main/xlsr2_960m_1000k.pt"),
    f"{HF}/s3prl/mr_hubert/resolve/main/mrhubert_mono_large.pt": (
        "c5676f16db286bf0c67396a8e941ca425bb14014c529f3942cfa8d159d3a4d28",
        f"{HF}/s3prl/mr_hubert/blob/main/mrhubert_mono_large.pt"),
    f"{HF}/s3prl/mr_hubert/resolve/main/multi_base.pt": (
        "0eba288b73c7ee2d316fb9eb94aec1e794586f564ed96274ad588d1e3e205d89",
        f"{HF}/s3prl/mr_hubert/blob/6c683eed3af020823c2c69dd4818f46a0c01d73e/multi_base.pt"),
    f"{HF}/s3prl/mr_hubert/resolve/main/multi_large_600k.pt": (
        "67ffd1cd6ebe38238eb19a82f332dcf7877d2cf9df17051074627b2c80098207",
        f"{HF}/s3prl/mr_hubert/blob/6c683eed3af020823c2c69dd4818f46a0c01d73e/multi_large_600k.pt"),
}


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint is: where it comes from and what it was trained on."""

    paper: str
    citation: str
    data: str
    architecture: str


@dataclass(frozen=True)
class Entry:
    """One registry row.

    family:      key of ``s3prl.upstream.FAMILIES`` that builds the model.
    urls:        checkpoint file(s) the entry loads by default (s3prl-converted files where they exist).
    original_urls: the original release (e.g. the raw fairseq ``.pt``), loadable with ``fairseq=True``.
    sha256:      one hex digest per url in ``urls`` (None where unknown); downloads are checked against it.
    sha256_sources: where each digest was published (None: not published, e.g. computed from the file).
    extra_conf:  keyword options the original entry passes to its builder (users may override them).
    alias_of:    this name only forwards to another row.
    user_ckpt:   the entry needs a checkpoint from the user (``*_local``, ``*_url``, ``*_custom``).
    card:        the model card, shared by the rows of one release.
    """

    family: str
    urls: tuple[str, ...] = ()
    original_urls: tuple[str, ...] = ()
    sha256: tuple[str | None, ...] = ()
    sha256_sources: tuple[str | None, ...] = ()
    extra_conf: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    alias_of: str | None = None
    user_ckpt: bool = False
    card: ModelCard | None = None

    def __post_init__(self):
        object.__setattr__(self, "extra_conf", MappingProxyType(dict(self.extra_conf)))


def alias(target: str) -> Entry:
    """A row that forwards to ``target`` (the family is filled in by ``resolve``)."""
    return Entry(family="", alias_of=target)


def user(family: str, **extra_conf) -> Entry:
    """A ``*_local`` / ``*_url`` / ``*_custom`` row: the user gives the checkpoint."""
    return Entry(family=family, user_ckpt=True, extra_conf=extra_conf)


def named(family: str, *urls: str, original: tuple[str, ...] = (), sha256=(), card=None, **extra_conf) -> Entry:
    """A row with its own checkpoint URL(s); digests not given are taken from ``PUBLISHED_SHA256``."""
    published = [PUBLISHED_SHA256.get(url, (None, None)) for url in urls]
    digests = tuple(sha256) or tuple(sha for sha, _ in published)
    sources = tuple(source for _, source in published) if not sha256 else ()
    return Entry(family=family, urls=tuple(urls), original_urls=tuple(original), sha256=digests,
                 sha256_sources=sources, extra_conf=extra_conf, card=card)


def builtin(family: str, card=None, **extra_conf) -> Entry:
    """A row that needs no checkpoint file (feature front-ends)."""
    return Entry(family=family, extra_conf=extra_conf, card=card)


# ----------------------------------------------------------------------------------------------
# Model cards (one per release; shared by the rows of that release)
# ----------------------------------------------------------------------------------------------

FBANK_CARD = ModelCard(
    paper="Kaldi-compatible filterbank / cepstral features (no learned weights)",
    citation="Povey et al., The Kaldi Speech Recognition Toolkit, ASRU 2011",
    data="none",
    architecture="STFT -> mel filterbank / DCT, optional deltas and utterance CMVN",
)

# --- wav2vec 2.0 and its multilingual / conformer descendants
_W2V2_PAPER = "wav2vec 2.0: A Framework for Self-Supervised Learning of Speech Representations"
_W2V2_CITE = "Baevski, Zhou, Mohamed, Auli, NeurIPS 2020, arXiv:2006.11477"
W2V2_BASE_CARD = ModelCard(
    paper=_W2V2_PAPER,
    citation=_W2V2_CITE,
    data="LibriSpeech 960 h (unlabelled)",
    architecture="7-layer conv feature encoder (stride 320) + 12-layer 768-d post-LN Transformer, ~95M params",
)
W2V2_LARGE_LS960_CARD = ModelCard(
    paper=_W2V2_PAPER,
    citation=_W2V2_CITE,
    data="LibriSpeech 960 h (unlabelled)",
    architecture="7-layer conv feature encoder + 24-layer 1024-d Transformer, ~317M params",
)
W2V2_LARGE_LV60_CARD = ModelCard(
    paper=_W2V2_PAPER,
    citation=_W2V2_CITE,
    data="Libri-Light 60k h (unlabelled)",
    architecture="7-layer conv feature encoder (layer-norm mode) + 24-layer 1024-d pre-LN Transformer, ~317M params",
)
W2V2_ROBUST_CARD = ModelCard(
    paper="Robust wav2vec 2.0: Analyzing Domain Shift in Self-Supervised Pre-Training",
    citation="Hsu et al., Interspeech 2021, arXiv:2104.01027",
    data="Libri-Light 60k h + CommonVoice + Switchboard + Fisher (unlabelled)",
    architecture="wav2vec 2.0 Large: 24-layer 1024-d pre-LN Transformer",
)
XLSR53_CARD = ModelCard(
    paper="Unsupervised Cross-lingual Representation Learning for Speech Recognition (XLSR)",
    citation="Conneau, Baevski, Collobert, Mohamed, Auli, Interspeech 2021, arXiv:2006.13979",
    data="56k h in 53 languages (MLS, CommonVoice, BABEL)",
    architecture="wav2vec 2.0 Large: 24-layer 1024-d pre-LN Transformer",
)
_XLSR_PAPER = "XLS-R: Self-supervised Cross-lingual Speech Representation Learning at Scale"
_XLSR_CITE = "Babu et al., Interspeech 2022, arXiv:2111.09296"
_XLSR_DATA = "436k h in 128 languages (VoxPopuli, MLS, CommonVoice, VoxLingua107, BABEL)"
XLSR_300M_CARD = ModelCard(_XLSR_PAPER, _XLSR_CITE, _XLSR_DATA, "wav2vec 2.0, 24 layers, 1024-d, ~300M params")
XLSR_1B_CARD = ModelCard(_XLSR_PAPER, _XLSR_CITE, _XLSR_DATA, "wav2vec 2.0, 48 layers, 1280-d, ~1B params")
XLSR_2B_CARD = ModelCard(_XLSR_PAPER, _XLSR_CITE, _XLSR_DATA, "wav2vec 2.0, 48 layers, 1920-d, ~2B params")
W2V2_CONFORMER_CARD = ModelCard(
    paper="wav2vec 2.0 with a Conformer encoder (fairseq release; relative-position or rotary embeddings)",
    citation="fairseq wav2vec 2.0 Conformer checkpoints; see Popuri et al., Interspeech 2022, arXiv:2204.02967",
    data="Libri-Light 60k h (unlabelled)",
    architecture="7-layer conv feature encoder + Large Conformer encoder (rel_pos or rope)",
)
W2V2_VOXPOPULI_CARD = ModelCard(
    paper="VoxPopuli: A Large-Scale Multilingual Speech Corpus for Representation Learning, "
    "Semi-Supervised Learning and Interpretation",
    citation="Wang et al., ACL 2021, arXiv:2101.00390",
    data="VoxPopuli 100k h unlabelled speech, 23 languages",
    architecture="wav2vec 2.0 Large: 24-layer 1024-d Transformer",
)
_S2ST_PAPER = "Enhanced Direct Speech-to-Speech Translation Using Self-supervised Pre-training and Data Augmentation"
_S2ST_CITE = "Popuri et al., Interspeech 2022, arXiv:2204.02967"
W2V2_S2ST_ES_BASE_CARD = ModelCard(_S2ST_PAPER, _S2ST_CITE, "VoxPopuli Spanish (unlabelled)",
                                   "wav2vec 2.0 Base: 12-layer 768-d Transformer")
W2V2_S2ST_ES_CONFORMER_CARD = ModelCard(_S2ST_PAPER, _S2ST_CITE, "VoxPopuli Spanish (unlabelled)",
                                        "wav2vec 2.0 with a Large Conformer encoder")
W2V2_S2ST_EN_BASE_CARD = ModelCard(_S2ST_PAPER, _S2ST_CITE, "Libri-Light English (unlabelled)",
                                   "wav2vec 2.0 Base: 12-layer 768-d Transformer")
W2V2_S2ST_EN_CONFORMER_CARD = ModelCard(_S2ST_PAPER, _S2ST_CITE, "Libri-Light English (unlabelled)",
                                        "wav2vec 2.0 with a Large Conformer encoder")

# --- HuBERT and its descendants
_HUBERT_PAPER = "HuBERT: Self-Supervised Speech Representation Learning by Masked Prediction of Hidden Units"
_HUBERT_CITE = "Hsu, Bolte, Tsai, Lakhotia, Salakhutdinov, Mohamed, IEEE/ACM TASLP 2021, arXiv:2106.07447"
HUBERT_BASE_CARD = ModelCard(
    paper=_HUBERT_PAPER,
    citation=_HUBERT_CITE,
    data="LibriSpeech 960 h (unlabelled)",
    architecture="7-layer conv feature encoder (stride 320) + 12-layer 768-d post-LN Transformer, ~95M params",
)
HUBERT_LARGE_CARD = ModelCard(
    paper=_HUBERT_PAPER,
    citation=_HUBERT_CITE,
    data="Libri-Light 60k h (unlabelled)",
    architecture="7-layer conv feature encoder + 24-layer 1024-d pre-LN Transformer, ~317M params",
)
HUBERT_MGR_CARD = ModelCard(
    paper="Improving Distortion Robustness of Self-supervised Speech Processing Tasks with Domain Adaptation "
    "(HuBERT-MGR)",
    citation="Huang et al., Interspeech 2022, arXiv:2203.16104",
    data="LibriSpeech 960 h with MUSAN noise, Gaussian noise and reverberation (continued from HuBERT Base)",
    architecture="HuBERT Base: 12-layer 768-d Transformer",
)
MHUBERT_CARD = ModelCard(
    paper="Textless Speech-to-Speech Translation on Real Data (mHuBERT)",
    citation="Lee et al., NAACL 2022, arXiv:2112.08352",
    data="VoxPopuli unlabelled speech in English, Spanish and French (3rd HuBERT iteration)",
    architecture="HuBERT Base: 12-layer 768-d Transformer",
)
_CONTENTVEC_PAPER = "ContentVec: An Improved Self-Supervised Speech Representation by Disentangling Speakers"
_CONTENTVEC_CITE = "Qian et al., ICML 2022, arXiv:2204.09224"
CONTENTVEC_KM100_CARD = ModelCard(_CONTENTVEC_PAPER, _CONTENTVEC_CITE, "LibriSpeech 960 h (unlabelled)",
                                  "HuBERT Base (12-layer 768-d Transformer), 100 k-means target classes")
CONTENTVEC_KM500_CARD = ModelCard(_CONTENTVEC_PAPER, _CONTENTVEC_CITE, "LibriSpeech 960 h (unlabelled)",
                                  "HuBERT Base (12-layer 768-d Transformer), 500 k-means target classes")
MS_HUBERT_CARD = ModelCard(
    paper="MS-HuBERT: Mitigating Pre-training and Inference Mismatch in Masked Language Modelling for Speech",
    citation="Yadav et al., 2024 (arXiv)",
    data="LibriSpeech 960 h (unlabelled)",
    architecture="HuBERT Base-size Transformer (12 layers, 768-d); 3rd training iteration",
)
_MRHUBERT_PAPER = ("Multi-resolution HuBERT: Multi-resolution Speech Self-Supervised Learning "
                   "with Masked Unit Prediction")
_MRHUBERT_CITE = "Shi, Inaguma, Ma, Kulikov, Sun, ICLR 2024, arXiv:2310.02720"
MRHUBERT_MONO_CARD = ModelCard(_MRHUBERT_PAPER, _MRHUBERT_CITE, "English unlabelled speech (LibriSpeech / Libri-Light)",
                               "HuBERT-style encoder processing speech at several frame rates (hierarchical)")
MRHUBERT_MULTI_CARD = ModelCard(_MRHUBERT_PAPER, _MRHUBERT_CITE, "multilingual unlabelled speech",
                                "HuBERT-style encoder processing speech at several frame rates (hierarchical)")
ESPNET_HUBERT_CARD = ModelCard(
    paper="HuBERT pre-trained with the ESPnet self-supervised-learning recipe",
    citation="ESPnet (Watanabe et al., Interspeech 2018); models released on huggingface.co/espnet",
    data="see each model repository (LibriSpeech 960 h for base iter0/iter1; Libri-Light 60k h for large_gs_ll60k)",
    architecture="torchaudio-style HuBERT (Base 12x768 or Large 24x1024); checkpoint + ESPnet config.yaml",
)
WAVLABLM_CARD = ModelCard(
    paper="Joint Prediction and Denoising for Large-scale Multilingual Self-supervised Learning (WavLabLM)",
    citation="Chen et al., ASRU 2023, arXiv:2309.15317",
    data="about 40k h of multilingual speech",
    architecture="ESPnet / torchaudio-style HuBERT Large-size encoder; checkpoint + ESPnet config.yaml",
)
LIGHTHUBERT_CARD = ModelCard(
    paper="LightHuBERT: Lightweight and Configurable Speech Representation Learning with Once-for-All Hidden-Unit BERT",
    citation="Wang et al., Interspeech 2022, arXiv:2203.15610",
    data="LibriSpeech 960 h (unlabelled); distilled from HuBERT",
    architecture="once-for-all Transformer supernet; small / base subnets or the stage-1 model",
)
DISTILHUBERT_CARD = ModelCard(
    paper="DistilHuBERT: Speech Representation Learning by Layer-wise Distillation of Hidden-Unit BERT",
    citation="Chang, Yang, Lee, ICASSP 2022, arXiv:2110.01900",
    data="LibriSpeech 960 h (unlabelled); teacher HuBERT Base",
    architecture="conv feature encoder + 2-layer 768-d Transformer + 3 heads predicting HuBERT layers 4/8/12, ~24M",
)

# --- WavLM / UniSpeech-SAT
_WAVLM_PAPER = "WavLM: Large-Scale Self-Supervised Pre-Training for Full Stack Speech Processing"
_WAVLM_CITE = "Chen et al., IEEE JSTSP 2022, arXiv:2110.13900"
_MIX94K = "94k h: Libri-Light 60k + GigaSpeech 10k + VoxPopuli 24k (unlabelled)"
WAVLM_BASE_CARD = ModelCard(_WAVLM_PAPER, _WAVLM_CITE, "LibriSpeech 960 h (unlabelled)",
                            "12-layer 768-d Transformer with gated relative position bias, ~95M params")
WAVLM_BASE_PLUS_CARD = ModelCard(_WAVLM_PAPER, _WAVLM_CITE, _MIX94K,
                                 "12-layer 768-d Transformer with gated relative position bias, ~95M params")
WAVLM_LARGE_CARD = ModelCard(_WAVLM_PAPER, _WAVLM_CITE, _MIX94K,
                             "24-layer 1024-d Transformer with gated relative position bias, ~317M params")
_USAT_PAPER = "UniSpeech-SAT: Universal Speech Representation Learning with Speaker Aware Pre-Training"
_USAT_CITE = "Chen et al., ICASSP 2022, arXiv:2110.05752"
UNISPEECH_SAT_BASE_CARD = ModelCard(_USAT_PAPER, _USAT_CITE, "LibriSpeech 960 h (unlabelled)",
                                    "12-layer 768-d Transformer (stored in WavLM format)")
UNISPEECH_SAT_BASE_PLUS_CARD = ModelCard(_USAT_PAPER, _USAT_CITE, _MIX94K,
                                         "12-layer 768-d Transformer (stored in WavLM format)")
UNISPEECH_SAT_LARGE_CARD = ModelCard(_USAT_PAPER, _USAT_CITE, _MIX94K,
                                     "24-layer 1024-d Transformer (stored in WavLM format)")

# --- data2vec
_D2V_PAPER = "data2vec: A General Framework for Self-supervised Learning in Speech, Vision and Language"
_D2V_CITE = "Baevski, Hsu, Xu, Babu, Gu, Auli, ICML 2022, arXiv:2202.03555"
DATA2VEC_BASE_CARD = ModelCard(_D2V_PAPER, _D2V_CITE, "LibriSpeech 960 h (unlabelled)",
                               "conv feature encoder + 5-layer conv positional encoder + 12-layer 768-d Transformer")
DATA2VEC_LARGE_CARD = ModelCard(_D2V_PAPER, _D2V_CITE, "Libri-Light 60k h (unlabelled)",
                                "conv feature encoder + 5-layer conv positional encoder + 24-layer 1024-d Transformer")

# --- wav2vec (v1), vq-wav2vec, DiscreteBERT
WAV2VEC_CARD = ModelCard(
    paper="wav2vec: Unsupervised Pre-training for Speech Recognition",
    citation="Schneider, Baevski, Collobert, Auli, Interspeech 2019, arXiv:1904.05862",
    data="LibriSpeech 960 h (unlabelled)",
    architecture="wav2vec Large: conv feature encoder (stride 160) + 12-layer 512-d conv context network",
)
_VQW2V_PAPER = "vq-wav2vec: Self-Supervised Learning of Discrete Speech Representations"
_VQW2V_CITE = "Baevski, Schneider, Auli, ICLR 2020, arXiv:1910.05453"
VQ_WAV2VEC_GUMBEL_CARD = ModelCard(_VQW2V_PAPER, _VQW2V_CITE, "LibriSpeech 960 h (unlabelled)",
                                   "wav2vec conv encoder + Gumbel-softmax quantizer + conv context network")
VQ_WAV2VEC_KMEANS_CARD = ModelCard(_VQW2V_PAPER, _VQW2V_CITE, "LibriSpeech 960 h (unlabelled)",
                                   "wav2vec conv encoder + k-means quantizer + conv context network")
DISCRETEBERT_CARD = ModelCard(
    paper="Effectiveness of self-supervised pre-training for speech recognition (DiscreteBERT)",
    citation="Baevski, Auli, Mohamed, 2019, arXiv:1911.03912",
    data="LibriSpeech 960 h (unlabelled)",
    architecture="BERT/RoBERTa Base over vq-wav2vec k-means unit tokens (needs vq_wav2vec_kmeans as its tokenizer)",
)

# --- s3prl's own Transformer family (Mockingjay / TERA / Audio ALBERT)
_MJ_PAPER = "Mockingjay: Unsupervised Speech Representation Learning with Deep Bidirectional Transformer Encoders"
_MJ_CITE = "Liu, Yang, Chi, Hsu, Lee, ICASSP 2020, arXiv:1910.12638"
MOCKINGJAY_LARGE_CARD = ModelCard(_MJ_PAPER, _MJ_CITE, "LibriSpeech train-clean-360",
                                  "12-layer 768-d Transformer encoder on 80-d log-mel, linear-spectrogram target")
MOCKINGJAY_BASE_100_CARD = ModelCard(_MJ_PAPER, _MJ_CITE, "LibriSpeech train-clean-100",
                                     "3-layer 768-d Transformer encoder on 80-d log-mel")
MOCKINGJAY_BASE_960_CARD = ModelCard(_MJ_PAPER, _MJ_CITE, "LibriSpeech 960 h",
                                     "3-layer 768-d Transformer encoder on 80-d log-mel")
_TERA_PAPER = "TERA: Self-Supervised Learning of Transformer Encoder Representation for Speech"
_TERA_CITE = "Liu, Li, Lee, IEEE/ACM TASLP 2021, arXiv:2007.06028"
TERA_100_CARD = ModelCard(_TERA_PAPER, _TERA_CITE, "LibriSpeech train-clean-100",
                          "3-layer 768-d Transformer encoder on 80-d log-mel (time/freq/magnitude alteration)")
TERA_960_CARD = ModelCard(_TERA_PAPER, _TERA_CITE, "LibriSpeech 960 h",
                          "3-layer 768-d Transformer encoder on 80-d log-mel (time/freq/magnitude alteration)")
TERA_FBANK_CARD = ModelCard(_TERA_PAPER, _TERA_CITE, "LibriSpeech train-clean-100",
                            "3-layer 768-d Transformer encoder on 240-d fbank (80 + deltas)")
AUDIO_ALBERT_CARD = ModelCard(
    paper="Audio ALBERT: A Lite BERT for Self-supervised Learning of Audio Representation",
    citation="Chi, Huang, Yang, Tsai, Lin, Lee, SLT 2021, arXiv:2005.08575",
    data="LibriSpeech 960 h",
    architecture="3-layer 768-d Transformer encoder with parameters shared across layers, on 80-d log-mel",
)
SPEC_AUGMENT_CARD = ModelCard(
    paper="S3PRL SpecAugment-style Transformer baseline (pre-trained with `run_pretrain.py -u spec_augment`)",
    citation="S3PRL toolkit (no separate paper)",
    data="LibriSpeech (s3prl pre-training recipe)",
    architecture="Mockingjay-style Transformer encoder on log-mel features",
)

# --- autoregressive / predictive coding
APC_360_CARD = ModelCard(
    paper="An Unsupervised Autoregressive Model for Speech Representation Learning (APC)",
    citation="Chung, Hsu, Tang, Glass, Interspeech 2019, arXiv:1904.03240",
    data="LibriSpeech train-clean-360",
    architecture="3-layer 512-d unidirectional GRU on 80-d log-mel fbank",
)
APC_960_CARD = ModelCard(APC_360_CARD.paper, APC_360_CARD.citation, "LibriSpeech 960 h", APC_360_CARD.architecture)
VQ_APC_360_CARD = ModelCard(
    paper="Vector-Quantized Autoregressive Predictive Coding (VQ-APC)",
    citation="Chung, Tang, Glass, Interspeech 2020, arXiv:2005.08392",
    data="LibriSpeech train-clean-360",
    architecture="3-layer 512-d unidirectional GRU + Gumbel vector quantizer on the last layer, 80-d log-mel fbank",
)
VQ_APC_960_CARD = ModelCard(VQ_APC_360_CARD.paper, VQ_APC_360_CARD.citation, "LibriSpeech 960 h",
                            VQ_APC_360_CARD.architecture)
NPC_360_CARD = ModelCard(
    paper="Non-Autoregressive Predictive Coding for Learning Speech Representations from Local Dependencies (NPC)",
    citation="Liu, Chung, Glass, Interspeech 2021, arXiv:2011.00406",
    data="LibriSpeech train-clean-360",
    architecture="4 conv blocks (512-d) with masked convolutions + vector quantizer, on 80-d log-mel fbank",
)
NPC_960_CARD = ModelCard(NPC_360_CARD.paper, NPC_360_CARD.citation, "LibriSpeech 960 h", NPC_360_CARD.architecture)
MODIFIED_CPC_CARD = ModelCard(
    paper="Unsupervised Pretraining Transfers Well Across Languages (modified CPC)",
    citation="Riviere, Joulin, Mazare, Dupoux, ICASSP 2020, arXiv:2002.02848",
    data="Libri-Light 60k h (unlabelled)",
    architecture="5-layer 256-d conv encoder (stride 160) + LSTM autoregressive context network",
)

# --- DeCoAR
DECOAR_CARD = ModelCard(
    paper="Deep Contextualized Acoustic Representations for Semi-Supervised Speech Recognition (DeCoAR)",
    citation="Ling, Liu, Salazar, Kirchhoff, ICASSP 2020, arXiv:1912.01679",
    data="LibriSpeech 960 h (unlabelled)",
    architecture="4-layer forward + 4-layer backward LSTM (1024 each, 2048-d per layer) on 80-d fbank",
)
DECOAR2_CARD = ModelCard(
    paper="DeCoAR 2.0: Deep Contextualized Acoustic Representations with Vector Quantization",
    citation="Ling, Liu, 2020, arXiv:2012.06659",
    data="LibriSpeech 960 h (unlabelled)",
    architecture="12-layer 768-d Transformer on 80-d fbank (every second frame)",
)

# --- audio-domain models
AST_CARD = ModelCard(
    paper="AST: Audio Spectrogram Transformer",
    citation="Gong, Chung, Glass, Interspeech 2021, arXiv:2104.01778",
    data="AudioSet (ImageNet-pretrained DeiT initialisation); this checkpoint: 10/10 patch stride, mAP 0.4593",
    architecture="ViT/DeiT-Base (12 layers, 768-d) on 16x16 patches of a 128-bin fbank",
)
_SSAST_PAPER = "SSAST: Self-Supervised Audio Spectrogram Transformer"
_SSAST_CITE = "Gong, Lai, Chung, Glass, AAAI 2022, arXiv:2110.09784"
_SSAST_DATA = "AudioSet-2M + LibriSpeech 960 h (unlabelled)"
SSAST_FRAME_CARD = ModelCard(_SSAST_PAPER, _SSAST_CITE, _SSAST_DATA,
                             "12-layer 768-d Transformer on frame-shaped (128x2) patches of a 128-bin fbank")
SSAST_PATCH_CARD = ModelCard(_SSAST_PAPER, _SSAST_CITE, _SSAST_DATA,
                             "12-layer 768-d Transformer on 16x16 patches of a 128-bin fbank")
_MAEAST_PAPER = "MAE-AST: Masked Autoencoding Audio Spectrogram Transformer"
_MAEAST_CITE = "Baade, Peng, Harwath, Interspeech 2022, arXiv:2203.16691"
MAE_AST_FRAME_CARD = ModelCard(_MAEAST_PAPER, _MAEAST_CITE, "AudioSet + LibriSpeech (unlabelled)",
                               "12-layer Transformer encoder, frame patches, random masking (75%)")
MAE_AST_PATCH_CARD = ModelCard(_MAEAST_PAPER, _MAEAST_CITE, "AudioSet + LibriSpeech (unlabelled)",
                               "12-layer Transformer encoder, square patches, chunked masking (75%)")
_BYOLA_PAPER = "BYOL for Audio: Self-Supervised Learning for General-Purpose Audio Representation"
_BYOLA_CITE = "Niizumi, Takeuchi, Ohishi, Harada, Kashino, IJCNN 2021, arXiv:2103.06695"
_BYOLA_DATA = "AudioSet (unlabelled)"
BYOL_A_2048_CARD = ModelCard(_BYOLA_PAPER, _BYOLA_CITE, _BYOLA_DATA, "CNN encoder on 64-bin log-mel, 2048-d")
BYOL_A_1024_CARD = ModelCard(_BYOLA_PAPER, _BYOLA_CITE, _BYOLA_DATA, "CNN encoder on 64-bin log-mel, 1024-d")
BYOL_A_512_CARD = ModelCard(_BYOLA_PAPER, _BYOLA_CITE, _BYOLA_DATA, "CNN encoder on 64-bin log-mel, 512-d")
_BYOLS_PAPER = "BYOL-S: Learning Self-supervised Speech Representations by Bootstrapping"
_BYOLS_CITE = "Elbanna et al., HEAR 2021 (PMLR 166), arXiv:2206.12038"
_BYOLS_DATA = "speech subset of AudioSet (unlabelled)"
BYOL_S_DEFAULT_CARD = ModelCard(_BYOLS_PAPER, _BYOLS_CITE, _BYOLS_DATA, "BYOL-A CNN encoder on 64-bin log-mel, 2048-d")
BYOL_S_CVT_CARD = ModelCard(_BYOLS_PAPER, _BYOLS_CITE, _BYOLS_DATA, "Convolutional vision Transformer (CvT) encoder")
BYOL_S_RESNETISH34_CARD = ModelCard(_BYOLS_PAPER, _BYOLS_CITE, _BYOLS_DATA, "ResNet-34-like CNN encoder")
VGGISH_CARD = ModelCard(
    paper="CNN Architectures for Large-Scale Audio Classification (VGGish)",
    citation="Hershey et al., ICASSP 2017, arXiv:1609.09430; PyTorch port harritaylor/torchvggish",
    data="large YouTube video corpus (preliminary YouTube-8M)",
    architecture="VGG-like CNN on 0.96 s 64-bin log-mel examples, 128-d PCA-whitened embedding",
)
_PASST_PAPER = "Efficient Training of Audio Transformers with Patchout (PaSST)"
_PASST_CITE = ("Koutini, Schlueter, Eghbal-zadeh, Widmer, Interspeech 2022, arXiv:2110.05069; "
               "HEAR 2021 wrapper hear21passt")
PASST_CARD = ModelCard(_PASST_PAPER, _PASST_CITE, "AudioSet (ImageNet-pretrained initialisation)",
                       "PaSST-S: ViT/DeiT-Base-like Transformer (12 layers, 768-d) on 128-bin mel at 32 kHz")
PASST_HOP100_CARD = ModelCard(_PASST_PAPER, _PASST_CITE, "AudioSet (ImageNet-pretrained initialisation)",
                              "PaSST-S on 128-bin mel with STFT hop 100 at 32 kHz")
PASST_HOP160_CARD = ModelCard(_PASST_PAPER, _PASST_CITE, "AudioSet (ImageNet-pretrained initialisation)",
                              "PaSST-S on 128-bin mel with STFT hop 160 at 32 kHz")
PASST_20SEC_CARD = ModelCard(_PASST_PAPER, _PASST_CITE, "AudioSet (ImageNet-pretrained initialisation)",
                             "PaSST-S trained on 20 s inputs")
PASST_30SEC_CARD = ModelCard(_PASST_PAPER, _PASST_CITE, "AudioSet (ImageNet-pretrained initialisation)",
                             "PaSST-S trained on 30 s inputs")

# --- others
PASE_PLUS_CARD = ModelCard(
    paper="Multi-task self-supervised learning for Robust Speech Recognition (PASE+)",
    citation="Ravanelli et al., ICASSP 2020, arXiv:2001.09239",
    data="LibriSpeech with on-the-fly distortions (see paper)",
    architecture="SincNet + conv encoder with dense skips + QRNN, 256-d, trained with multiple self-supervised workers",
)
_MOS_PAPER = "Utilizing Self-supervised Representations for MOS Prediction"
_MOS_CITE = "Tseng, Huang, Kao, Lin, Lee, Interspeech 2021, arXiv:2104.03017"
MOS_WAV2VEC2_CARD = ModelCard(_MOS_PAPER, _MOS_CITE, "MOS-labelled synthetic / converted speech (see paper)",
                              "wav2vec 2.0 upstream + MOS regression head (returns scores, no hidden states)")
MOS_TERA_CARD = ModelCard(_MOS_PAPER, _MOS_CITE, "MOS-labelled synthetic / converted speech (see paper)",
                          "TERA upstream + MOS regression head (returns scores, no hidden states)")
MOS_APC_CARD = ModelCard(_MOS_PAPER, _MOS_CITE, "MOS-labelled synthetic / converted speech (see paper)",
                         "APC upstream + MOS regression head (returns scores, no hidden states)")
TIMIT_POSTERIORGRAM_CARD = ModelCard(
    paper="TIMIT phone posteriorgram (S3PRL downstream model used as an upstream)",
    citation="S3PRL toolkit (no separate paper)",
    data="TIMIT (phone labels)",
    architecture="conv-bank phone classifier; its phone posteriorgram is the representation",
)

# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------
# Conventions.
# * ``alias(x)``: the original entry only calls entry ``x`` (chains are allowed: tera -> tera_960hr -> ...).
# * ``user(fam)``: ``*_local`` / ``*_url`` / ``*_custom`` (the user gives the checkpoint). In the original the
#   ``*_local`` / ``*_url`` of converted-checkpoint families forward to ``*_custom``; the wav2vec2, hubert
#   (and multires_hubert) ``*_custom`` also take ``fairseq=True`` (convert a fairseq .pt on the fly) or
#   ``legacy=True`` (load with fairseq); wav2vec / vq_wav2vec / roberta take ``legacy=True``. Those are
#   options, not defaults, so they are not in ``extra_conf``.
# * ``named(fam, url, ..., original=(url,))``: ``urls`` is what the original loads by default (the
#   s3prl-converted file where there is one), ``original`` the raw release it loads with ``legacy=True``.
# * ``extra_conf``: exactly the options the original entry passes (or its expert's defaults, where the
#   original documents them as entry options).

REGISTRY: dict[str, Entry] = {
    # ---------------------------------------------------------------- wav2vec2
    "wav2vec2_custom": user("wav2vec2"),  # ckpt path or URL; also fairseq=True / legacy=True
    "wav2vec2_local": user("wav2vec2"),  # vq_wav2vec/hubconf.py defines one too; the wav2vec2 one wins
    "wav2vec2_url": user("wav2vec2"),  # idem
    "wav2vec2": alias("wav2vec2_base_960"),
    "wav2vec2_base_960": named("wav2vec2", f"{CONVERTED}/wav2vec_small.pt",
                               original=(f"{FB}/fairseq/wav2vec/wav2vec_small.pt",), card=W2V2_BASE_CARD),
    "wav2vec2_large_960": named("wav2vec2", f"{CONVERTED}/libri960_big.pt",
                                original=(f"{FB}/fairseq/wav2vec/libri960_big.pt",), card=W2V2_LARGE_LS960_CARD),
    "wav2vec2_large_ll60k": named("wav2vec2", f"{CONVERTED}/wav2vec_vox_new.pt",
                                  original=(f"{FB}/fairseq/wav2vec/wav2vec_vox_new.pt",), card=W2V2_LARGE_LV60_CARD),
    "wav2vec2_large_lv60_cv_swbd_fsh": named("wav2vec2", f"{CONVERTED}/w2v_large_lv_fsh_swbd_cv.pt",
                                             original=(f"{FB}/fairseq/wav2vec/w2v_large_lv_fsh_swbd_cv.pt",),
                                             card=W2V2_ROBUST_CARD),
    "xlsr_53": named("wav2vec2", f"{CONVERTED}/xlsr_53_56k.pt",
                     original=(f"{FB}/fairseq/wav2vec/xlsr_53_56k.pt",), card=XLSR53_CARD),
    "xls_r_300m": named("wav2vec2", f"{CONVERTED}/xlsr2_300m.pt",
                        original=(f"{FB}/fairseq/wav2vec/xlsr2_300m.pt",), card=XLSR_300M_CARD),
    "xls_r_1b": named("wav2vec2", f"{CONVERTED}/xlsr2_960m_1000k.pt",
                      original=(f"{FB}/fairseq/wav2vec/xlsr2_960m_1000k.pt",), card=XLSR_1B_CARD),
    "xls_r_2b": named("wav2vec2", f"{CONVERTED}/xlsr2_2B_1000k.pt",
                      original=(f"{FB}/fairseq/wav2vec/xlsr2_2B_1000k.pt",), card=XLSR_2B_CARD),
    # the two fairseq conformer originals have no file extension in the original URL
    "wav2vec2_conformer_relpos": named("wav2vec2", f"{CONVERTED}/LL_relpos_PT_no_FT.pt",
                                       original=(f"{FB}/fairseq/conformer/wav2vec2/librilight/LL_relpos_PT_no_FT",),
                                       card=W2V2_CONFORMER_CARD),
    "wav2vec2_conformer_rope": named("wav2vec2", f"{CONVERTED}/LL_rope_PT_no_FT.pt",
                                     original=(f"{FB}/fairseq/conformer/wav2vec2/librilight/LL_rope_PT_no_FT",),
                                     card=W2V2_CONFORMER_CARD),
    "wav2vec2_large_voxpopuli_100k": named("wav2vec2", f"{CONVERTED}/wav2vec2_large_100k.pt",
                                           original=(f"{FB}/voxpopuli/models/wav2vec2_large_100k.pt",),
                                           card=W2V2_VOXPOPULI_CARD),
    "wav2vec2_base_s2st_es_voxpopuli": named(
        "wav2vec2", f"{CONVERTED}/wav2vec2_base_s2st_es_voxpopuli.pt",
        original=(f"{FB}/fairseq/speech_to_speech/s2st_finetuning/w2v2/es/transformer_B.pt",),
        card=W2V2_S2ST_ES_BASE_CARD),
    "wav2vec2_conformer_large_s2st_es_voxpopuli": named(
        "wav2vec2", f"{CONVERTED}/wav2vec2_conformer_large_s2st_es_voxpopuli.pt",
        original=(f"{FB}/fairseq/speech_to_speech/s2st_finetuning/w2v2/es/conformer_L.pt",),
        card=W2V2_S2ST_ES_CONFORMER_CARD),
    "wav2vec2_base_s2st_en_librilight": named(
        "wav2vec2", f"{CONVERTED}/wav2vec2_base_s2st_en_librilight.pt",
        original=(f"{FB}/fairseq/speech_to_speech/s2st_finetuning/w2v2/en/transformer_B.pt",),
        card=W2V2_S2ST_EN_BASE_CARD),
    "wav2vec2_conformer_large_s2st_en_librilight": named(
        "wav2vec2", f"{CONVERTED}/wav2vec2_conformer_large_s2st_en_librilight.pt",
        original=(f"{FB}/fairseq/speech_to_speech/s2st_finetuning/w2v2/en/conformer_L.pt",),
        card=W2V2_S2ST_EN_CONFORMER_CARD),
    # ---------------------------------------------------------------- hubert
    "hubert_custom": user("hubert"),  # ckpt path or URL; also fairseq=True / legacy=True
    "hubert_local": user("hubert"),
    "hubert_url": user("hubert"),
    "hubert": alias("hubert_base"),
    "hubert_base": named("hubert", f"{CONVERTED}/hubert_base_ls960.pt",
                         original=(f"{FB}/hubert/hubert_base_ls960.pt",), card=HUBERT_BASE_CARD),
    "hubert_large_ll60k": named("hubert", f"{CONVERTED}/hubert_large_ll60k.pt",
                                original=(f"{FB}/hubert/hubert_large_ll60k.pt",), card=HUBERT_LARGE_CARD),
    "hubert_base_robust_mgr": named(
        "hubert", f"{CONVERTED}/HuBERT_base_robust_mgr_best_loss_2.7821.pt",
        original=(f"{HF}/kphuang68/HuBERT_base_robust_mgr/resolve/main/HuBERT_base_robust_mgr_best_loss_2.7821.pt",),
        card=HUBERT_MGR_CARD),
    # the next four have no fairseq original in the original (their entries take no `legacy`)
    "mhubert_base_vp_en_es_fr_it3": named("hubert", f"{CONVERTED}/mhubert_base_vp_en_es_fr_it3.pt", card=MHUBERT_CARD),
    # `contentvec` is its own entry in the original (same file as contentvec_km100), not a forwarder
    "contentvec": named("hubert", f"{CONVERTED}/contentvec_km100.pt", card=CONTENTVEC_KM100_CARD),
    "contentvec_km100": named("hubert", f"{CONVERTED}/contentvec_km100.pt", card=CONTENTVEC_KM100_CARD),
    "contentvec_km500": named("hubert", f"{CONVERTED}/contentvec_km500.pt", card=CONTENTVEC_KM500_CARD),
    "ms_hubert": named("hubert", f"{HF}/s3prl/MS-HuBERT/resolve/main/iter3.pt", card=MS_HUBERT_CARD),
    # ---------------------------------------------------------------- hf_wav2vec2 / hf_hubert
    # ckpt = a HuggingFace model id or folder (e.g. facebook/wav2vec2-large-960h, facebook/hubert-large-ll60k)
    "hf_wav2vec2_custom": user("hf_wav2vec2"),
    "hf_hubert_custom": user("hf_hubert"),
    # ---------------------------------------------------------------- wavlm
    "wavlm_local": user("wavlm"),
    "wavlm_url": user("wavlm"),
    "wavlm": alias("wavlm_base_plus"),
    "wavlm_base": named("wavlm", f"{CONVERTED}/wavlm_base.pt", card=WAVLM_BASE_CARD),
    "wavlm_base_plus": named("wavlm", f"{CONVERTED}/wavlm_base_plus.pt", card=WAVLM_BASE_PLUS_CARD),
    "wavlm_large": named("wavlm", f"{CONVERTED}/wavlm_large.pt", card=WAVLM_LARGE_CARD),
    # ---------------------------------------------------------------- unispeech_sat
    "unispeech_sat_local": user("unispeech_sat"),
    "unispeech_sat_url": user("unispeech_sat"),
    "unispeech_sat": alias("unispeech_sat_base_plus"),  # the code says base_plus (the original docs say base)
    "unispeech_sat_base": named("unispeech_sat", f"{CONVERTED}/unispeech_sat_base.pt", card=UNISPEECH_SAT_BASE_CARD),
    "unispeech_sat_base_plus": named("unispeech_sat", f"{CONVERTED}/unispeech_sat_base_plus.pt",
                                     card=UNISPEECH_SAT_BASE_PLUS_CARD),
    "unispeech_sat_large": named("unispeech_sat", f"{CONVERTED}/unispeech_sat_large.pt",
                                 card=UNISPEECH_SAT_LARGE_CARD),
    # ---------------------------------------------------------------- data2vec
    "data2vec_custom": user("data2vec"),
    "data2vec_local": user("data2vec"),
    "data2vec_url": user("data2vec"),
    "data2vec": alias("data2vec_base_960"),
    "data2vec_base_960": named("data2vec", f"{CONVERTED}/audio_base_ls.pt", card=DATA2VEC_BASE_CARD),
    "data2vec_large_ll60k": named("data2vec", f"{CONVERTED}/vox_pretrained.pt", card=DATA2VEC_LARGE_CARD),
    # ---------------------------------------------------------------- distiller
    "distiller_local": user("distiller"),  # also model_config= yaml
    "distiller_url": user("distiller"),
    "distilhubert": alias("distilhubert_base"),
    "distilhubert_base": named(
        "distiller", f"{HF}/leo19941227/distilhubert/resolve/main/distilhubert_ls960_4-8-12.ckpt",
        card=DISTILHUBERT_CARD),
    # ---------------------------------------------------------------- lighthubert
    "lighthubert_local": user("lighthubert"),
    "lighthubert_url": user("lighthubert"),
    "lighthubert": alias("lighthubert_small"),
    "lighthubert_small": named("lighthubert", f"{HF}/mechanicalsea/lighthubert/resolve/main/lighthubert_small.pt",
                               card=LIGHTHUBERT_CARD),
    "lighthubert_base": named("lighthubert", f"{HF}/mechanicalsea/lighthubert/resolve/main/lighthubert_base.pt",
                              card=LIGHTHUBERT_CARD),
    "lighthubert_stage1": named("lighthubert", f"{HF}/mechanicalsea/lighthubert/resolve/main/lighthubert_stage1.pt",
                                card=LIGHTHUBERT_CARD),
    # ---------------------------------------------------------------- multires_hubert
    "multires_hubert_custom": user("multires_hubert"),
    "multires_hubert_local": user("multires_hubert"),
    "multires_hubert_base": named("multires_hubert", f"{HF}/s3prl/mr_hubert/resolve/main/mrhubert_mono_base.pt",
                                  card=MRHUBERT_MONO_CARD),
    "multires_hubert_large": named("multires_hubert", f"{HF}/s3prl/mr_hubert/resolve/main/mrhubert_mono_large.pt",
                                   card=MRHUBERT_MONO_CARD),
    "multires_hubert_multilingual_base": named("multires_hubert", f"{HF}/s3prl/mr_hubert/resolve/main/multi_base.pt",
                                               card=MRHUBERT_MULTI_CARD),
    "multires_hubert_multilingual_large400k": named(
        "multires_hubert", f"{HF}/s3prl/mr_hubert/resolve/main/multi_large_400k.pt", card=MRHUBERT_MULTI_CARD),
    "multires_hubert_multilingual_large600k": named(
        "multires_hubert", f"{HF}/s3prl/mr_hubert/resolve/main/multi_large_600k.pt", card=MRHUBERT_MULTI_CARD),
    # ---------------------------------------------------------------- espnet_hubert
    # urls = (checkpoint .pth, ESPnet config.yaml). Needs no espnet here; the original needs espnet2.
    # S3PRLUpstream downloads only urls[0]: `config=` (extra_conf) hands the yaml's URL to the builder.
    "espnet_hubert_custom": user("espnet_hubert"),  # also config= (ESPnet config.yaml path)
    "espnet_hubert_local": user("espnet_hubert"),
    "cvhubert": named(
        "espnet_hubert",
        f"{HF}/espnet/espnet_cvhubert/resolve/main/exp/"
        "hubert_iter2_train_ssl_torchaudiohubert_base_960h_pretrain_it2_raw/latest.pth",
        f"{HF}/espnet/espnet_cvhubert/raw/main/exp/"
        "hubert_iter2_train_ssl_torchaudiohubert_base_960h_pretrain_it2_raw/config.yaml",
        config=f"{HF}/espnet/espnet_cvhubert/raw/main/exp/"
               "hubert_iter2_train_ssl_torchaudiohubert_base_960h_pretrain_it2_raw/config.yaml",
        card=ESPNET_HUBERT_CARD),
    "wavlablm_ek_40k": named(
        "espnet_hubert",
        f"{HF}/espnet/WavLabLM-EK-40k/resolve/main/exp_li/"
        "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_cont_raw_layer_9/5epoch.pth",
        f"{HF}/espnet/WavLabLM-EK-40k/raw/main/exp_li/"
        "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_cont_raw_layer_9/config.yaml",
        config=f"{HF}/espnet/WavLabLM-EK-40k/raw/main/exp_li/"
               "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_cont_raw_layer_9/config.yaml",
        card=WAVLABLM_CARD),
    "wavlablm_ms_40k": named(
        "espnet_hubert",
        f"{HF}/espnet/WavLabLM-MS-40k/resolve/main/exp_babel/"
        "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_wavlm_babel_light_raw_layer_9/5epoch.pth",
        f"{HF}/espnet/WavLabLM-MS-40k/raw/main/exp_babel/"
        "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_wavlm_babel_light_raw_layer_9/config.yaml",
        config=f"{HF}/espnet/WavLabLM-MS-40k/raw/main/exp_babel/"
               "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_wavlm_babel_light_raw_layer_9/config.yaml",
        card=WAVLABLM_CARD),
    "wavlablm_mk_40k": named(
        "espnet_hubert",
        f"{HF}/espnet/WavLabLM-MK-40k/resolve/main/exp_li/"
        "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_wavlm_raw_layer_9/valid.acc_m.ave_10best.pth",
        f"{HF}/espnet/WavLabLM-MK-40k/raw/main/exp_li/"
        "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_wavlm_raw_layer_9/config.yaml",
        config=f"{HF}/espnet/WavLabLM-MK-40k/raw/main/exp_li/"
               "hubert_iter2_train_ssl_torchaudiohubert_large_960h_pretrain_it2_wavlm_raw_layer_9/config.yaml",
        card=WAVLABLM_CARD),
    "espnet_hubert_base_iter1": named(
        "espnet_hubert",
        f"{HF}/espnet/simpleoier_librispeech_hubert_iter1_train_ssl_torchaudiohubert_base_960h_pretrain_it1_raw/"
        "resolve/main/exp/hubert_iter1_train_ssl_torchaudiohubert_base_960h_pretrain_it1_raw/valid.loss.ave.pth",
        f"{HF}/espnet/simpleoier_librispeech_hubert_iter1_train_ssl_torchaudiohubert_base_960h_pretrain_it1_raw/"
        "raw/main/exp/hubert_iter1_train_ssl_torchaudiohubert_base_960h_pretrain_it1_raw/config.yaml",
        config=f"{HF}/espnet/simpleoier_librispeech_hubert_iter1_train_ssl_torchaudiohubert_base_960h_pretrain_it1_raw/"
               "raw/main/exp/hubert_iter1_train_ssl_torchaudiohubert_base_960h_pretrain_it1_raw/config.yaml",
        card=ESPNET_HUBERT_CARD),
    "espnet_hubert_base_iter0": named(
        "espnet_hubert",
        f"{HF}/espnet/simpleoier_librispeech_hubert_iter0_train_ssl_torchaudiohubert_base_960h_pretrain_it0_raw/"
        "resolve/main/exp/hubert_iter0_train_ssl_torchaudiohubert_base_960h_pretrain_it0_raw/valid.loss.ave.pth",
        f"{HF}/espnet/simpleoier_librispeech_hubert_iter0_train_ssl_torchaudiohubert_base_960h_pretrain_it0_raw/"
        "raw/main/exp/hubert_iter0_train_ssl_torchaudiohubert_base_960h_pretrain_it0_raw/config.yaml",
        config=f"{HF}/espnet/simpleoier_librispeech_hubert_iter0_train_ssl_torchaudiohubert_base_960h_pretrain_it0_raw/"
               "raw/main/exp/hubert_iter0_train_ssl_torchaudiohubert_base_960h_pretrain_it0_raw/config.yaml",
        card=ESPNET_HUBERT_CARD),
    # Quirk: the original's config URL for this entry uses ".../blob/main/..." (HuggingFace's HTML viewer page,
    # not the file). We use ".../raw/main/..." like the other ESPnet entries, which serves the yaml itself.
    "espnet_hubert_large_gs_ll60k": named(
        "espnet_hubert",
        f"{HF}/espnet/hubert_large_gs_16_librilight60k/resolve/main/mnt/datastore/exp/"
        "hubert_iter1_train_ssl_torchaudiohubert_large_960h_pretrain_it2_bins_raw/valid.loss.ave_10best.pth",
        f"{HF}/espnet/hubert_large_gs_16_librilight60k/raw/main/mnt/datastore/exp/"
        "hubert_iter1_train_ssl_torchaudiohubert_large_960h_pretrain_it2_bins_raw/config.yaml",
        config=f"{HF}/espnet/hubert_large_gs_16_librilight60k/raw/main/mnt/datastore/exp/"
               "hubert_iter1_train_ssl_torchaudiohubert_large_960h_pretrain_it2_bins_raw/config.yaml",
        card=ESPNET_HUBERT_CARD),
    # ---------------------------------------------------------------- wav2vec (v1)
    "wav2vec_custom": user("wav2vec"),  # defined twice in the original hubconf (identical); also legacy=True
    "wav2vec_local": user("wav2vec"),
    "wav2vec_url": user("wav2vec"),
    "wav2vec": alias("wav2vec_large"),
    "wav2vec_large": named("wav2vec", f"{CONVERTED}/wav2vec_large.pt",
                           original=(f"{FB}/fairseq/wav2vec/wav2vec_large.pt",), card=WAV2VEC_CARD),
    # ---------------------------------------------------------------- vq_wav2vec
    # The original vq_wav2vec/hubconf.py defines `wav2vec2_local` / `wav2vec2_url` (copy-paste slip), shadowed by
    # the wav2vec2 family's; so there is no vq_wav2vec_local / vq_wav2vec_url, only vq_wav2vec_custom.
    "vq_wav2vec_custom": user("vq_wav2vec"),  # also legacy=True
    "vq_wav2vec": alias("vq_wav2vec_gumbel"),
    "vq_wav2vec_gumbel": named("vq_wav2vec", f"{CONVERTED}/vq-wav2vec.pt",
                               original=(f"{FB}/fairseq/wav2vec/vq-wav2vec.pt",), card=VQ_WAV2VEC_GUMBEL_CARD),
    "vq_wav2vec_kmeans": named("vq_wav2vec", f"{CONVERTED}/vq-wav2vec_kmeans.pt",
                               original=(f"{FB}/fairseq/wav2vec/vq-wav2vec_kmeans.pt",), card=VQ_WAV2VEC_KMEANS_CARD),
    # ---------------------------------------------------------------- roberta (DiscreteBERT)
    # Also loads `vq_wav2vec_kmeans` (its default checkpoint) as the tokenizer front-end. The legacy original is a
    # tar archive (fairseq RoBERTa folder + dictionary).
    "vq_wav2vec_kmeans_roberta": named("roberta", f"{CONVERTED}/vq_wav2vec_kmeans_roberta.pt",
                                       original=(f"{FB}/fairseq/wav2vec/bert_kmeans.tar",), card=DISCRETEBERT_CARD),
    "discretebert": alias("vq_wav2vec_kmeans_roberta"),
    # ---------------------------------------------------------------- mockingjay
    # *_local also take options_config= (yaml: load_pretrain, no_grad, dropout, spec_aug, ...)
    "mockingjay_local": user("mockingjay"),
    "mockingjay_url": user("mockingjay"),
    "mockingjay": alias("mockingjay_origin"),
    "mockingjay_origin": alias("mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1"),
    "mockingjay_100hr": alias("mockingjay_logMelBase_T_AdamW_b32_200k_100hr"),
    "mockingjay_960hr": alias("mockingjay_logMelBase_T_AdamW_b32_1m_960hr_drop1"),
    "mockingjay_logMelBase_T_AdamW_b32_200k_100hr": named(
        "mockingjay", f"{DBX}/luorglf8mdg67l2/states-200000.ckpt?dl=1", card=MOCKINGJAY_BASE_100_CARD),
    "mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1": named(
        "mockingjay",
        f"{HF}/s3prl/mockingjay/resolve/main/"
        "mockingjay_logMelLinearLarge_T_AdamW_b32_500k_360hr_drop1/states-500000.ckpt",
        card=MOCKINGJAY_LARGE_CARD),
    "mockingjay_logMelBase_T_AdamW_b32_1m_960hr": named(
        "mockingjay", f"{DBX}/jzx0xggk663jev6/states-1000000.ckpt?dl=1", card=MOCKINGJAY_BASE_960_CARD),
    "mockingjay_logMelBase_T_AdamW_b32_1m_960hr_drop1": named(
        "mockingjay", f"{DBX}/7f9z6dzc7oix6qv/states-1000000.ckpt?dl=1", card=MOCKINGJAY_BASE_960_CARD),
    "mockingjay_logMelBase_T_AdamW_b32_1m_960hr_seq3k": named(
        "mockingjay", f"{DBX}/qnnvdrai2tfmjmh/states-1000000.ckpt?dl=1", card=MOCKINGJAY_BASE_960_CARD),
    # ---------------------------------------------------------------- tera
    "tera_local": user("tera"),  # also options_config=
    "tera_url": user("tera"),
    "tera": alias("tera_960hr"),
    "tera_100hr": alias("tera_logMelBase_T_F_M_AdamW_b32_200k_100hr"),
    "tera_960hr": alias("tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1"),
    "tera_logMelBase_T_F_AdamW_b32_200k_100hr": named(
        "tera", f"{DBX}/o36qt1zgtn3tsep/states-200000.ckpt?dl=1", card=TERA_100_CARD),
    "tera_logMelBase_T_F_M_AdamW_b32_200k_100hr": named(
        "tera", f"{DBX}/l9ryl82k64m1lsk/states-200000.ckpt?dl=1", card=TERA_100_CARD),
    "tera_logMelBase_T_F_AdamW_b32_1m_960hr": named(
        "tera", f"{DBX}/98olxex0m7oy9ta/states-1000000.ckpt?dl=1", card=TERA_960_CARD),
    "tera_logMelBase_T_F_AdamW_b32_1m_960hr_drop1": named(
        "tera", f"{DBX}/2ekbt2gxlkbvfz0/states-1000000.ckpt?dl=1", card=TERA_960_CARD),
    "tera_logMelBase_T_F_AdamW_b32_1m_960hr_seq3k": named(
        "tera", f"{DBX}/tfysinbalpm3gsj/states-1000000.ckpt?dl=1", card=TERA_960_CARD),
    "tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1": named(
        "tera",
        f"{HF}/s3prl/tera/resolve/main/tera_logMelBase_T_F_M_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
        card=TERA_960_CARD),
    "tera_fbankBase_T_F_AdamW_b32_200k_100hr": named(
        "tera", f"{DBX}/i32ob29m6afufot/states-200000.ckpt?dl=1", card=TERA_FBANK_CARD),
    # ---------------------------------------------------------------- audio_albert
    "audio_albert_local": user("audio_albert"),  # also options_config=
    "audio_albert_url": user("audio_albert"),
    "audio_albert": alias("audio_albert_960hr"),
    "audio_albert_960hr": alias("audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1"),
    "audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1": named(
        "audio_albert",
        f"{HF}/s3prl/audio_albert/resolve/main/"
        "audio_albert_logMelBase_T_share_AdamW_b32_1m_960hr_drop1/states-1000000.ckpt",
        card=AUDIO_ALBERT_CARD),
    # ---------------------------------------------------------------- spec_augment
    # The original has upstream/spec_augment/hubconf.py but s3prl/hub.py does not import it, so these three
    # names are not among the original's 192 registry names (only the pretrain side uses `spec_augment`).
    "spec_augment_local": user("spec_augment"),  # also options_config=
    "spec_augment_url": user("spec_augment"),
    "spec_augment": named("spec_augment", f"{DBX}/spz3yulaye8ppgr/states-100000.ckpt?dl=1", card=SPEC_AUGMENT_CARD),
    # ---------------------------------------------------------------- apc (+ vq_apc)
    "apc_local": user("apc"),
    "apc_url": user("apc"),
    "apc": alias("apc_360hr"),
    "apc_360hr": named("apc", f"{APC_SERIES}/apc_360hr.ckpt", card=APC_360_CARD),
    "apc_960hr": named("apc", f"{APC_SERIES}/apc_960hr.ckpt", card=APC_960_CARD),
    # vq_apc/hubconf.py has no builder of its own: it imports `apc_url as vq_apc_url`, so the VQ-APC checkpoints
    # are built by the APC family (the checkpoint's config turns the quantizer on). Quirk of the original: that
    # import also leaks `vq_apc_url` into the original's hub.options() as a non-entry; it is not a row here.
    "vq_apc": alias("vq_apc_360hr"),
    "vq_apc_360hr": named("apc", f"{APC_SERIES}/vq_apc_360hr.ckpt", card=VQ_APC_360_CARD),
    "vq_apc_960hr": named("apc", f"{APC_SERIES}/vq_apc_960hr.ckpt", card=VQ_APC_960_CARD),
    # ---------------------------------------------------------------- npc
    "npc_local": user("npc"),
    "npc_url": user("npc"),
    "npc": alias("npc_360hr"),
    "npc_360hr": named("npc", f"{APC_SERIES}/npc_360hr.ckpt", card=NPC_360_CARD),
    "npc_960hr": named("npc", f"{APC_SERIES}/npc_960hr.ckpt", card=NPC_960_CARD),
    # ---------------------------------------------------------------- cpc
    "cpc_local": user("cpc"),
    "cpc_url": user("cpc"),
    "modified_cpc": named("cpc", f"{FB}/librilight/CPC_checkpoints/60k_epoch4-d0f474de.pt", card=MODIFIED_CPC_CARD),
    # ---------------------------------------------------------------- decoar / decoar_layers / decoar2
    "decoar_custom": user("decoar"),
    "decoar_local": user("decoar"),
    "decoar_url": user("decoar"),
    "decoar": named("decoar", f"{CONVERTED}/checkpoint_decoar.pt", card=DECOAR_CARD),
    "decoar_layers_custom": user("decoar_layers"),
    "decoar_layers_local": user("decoar_layers"),
    "decoar_layers_url": user("decoar_layers"),
    "decoar_layers": named("decoar_layers", f"{CONVERTED}/checkpoint_decoar.pt", card=DECOAR_CARD),  # same file
    "decoar2_custom": user("decoar2"),
    "decoar2_local": user("decoar2"),
    "decoar2_url": user("decoar2"),
    "decoar2": named("decoar2", f"{CONVERTED}/checkpoint_decoar2.pt", card=DECOAR2_CARD),
    # ---------------------------------------------------------------- pase
    # urls = (checkpoint, PASE+ .cfg model config). The config is read from model_config= (path or URL), else
    # <ckpt stem>.cfg next to the checkpoint, else the second URL here. The hidden states of the original's
    # hooks (7 dense skips mean-pooled to the final rate, W, final output) are the family's business.
    "pase_local": user("pase"),  # also model_config=
    "pase_url": user("pase"),
    "pase_plus": named("pase", f"{DBX}/p8811o7eadv4pat/FE_e199.ckpt?dl=1", f"{DBX}/2p3ouod1k0ekfxn/PASE%2B.cfg?dl=1",
                       card=PASE_PLUS_CARD),
    # ---------------------------------------------------------------- ast / ssast / mae_ast
    "ast": named("ast", f"{DBX}/ca0b1v2nlxzyeb4/audioset_10_10_0.4593.pth?dl=1", card=AST_CARD,
                 window_secs=10.24, stride_secs=10.24, feature_selection="cls"),
    # model_size is what the original entry passes positionally to its expert ("base_f" / "base_p")
    "ssast_frame_base": named("ssast", f"{DBX}/nx6nl4d4bl71sm8/SSAST-Base-Frame-400.pth?dl=1", card=SSAST_FRAME_CARD,
                              model_size="base_f", window_secs=1.0),
    "ssast_patch_base": named("ssast", f"{DBX}/ewrzpco95n9jdz6/SSAST-Base-Patch-400.pth?dl=1", card=SSAST_PATCH_CARD,
                              model_size="base_p", window_secs=1.0),
    "mae_ast_local": user("mae_ast"),
    "mae_ast_url": user("mae_ast"),
    "mae_ast_frame": named("mae_ast", "https://www.cs.utexas.edu/~harwath/model_checkpoints/mae_ast/"
                           "random_frame_75_12LayerEncoder.pt", card=MAE_AST_FRAME_CARD),
    "mae_ast_patch": named("mae_ast", "https://www.cs.utexas.edu/~harwath/model_checkpoints/mae_ast/"
                           "chunk_patch_75_12LayerEncoder.pt", card=MAE_AST_PATCH_CARD),
    # ---------------------------------------------------------------- byol_a / byol_s
    # feature_d / model_name are fixed by the original entry; window/stride/hop are its expert's defaults
    "byol_a_2048": named("byol_a", f"{BYOL_A}/AudioNTT2020-BYOLA-64x96d2048.pth", card=BYOL_A_2048_CARD,
                         feature_d=2048, window_secs=1.0, stride_secs=1.0),
    "byol_a_1024": named("byol_a", f"{BYOL_A}/AudioNTT2020-BYOLA-64x96d1024.pth", card=BYOL_A_1024_CARD,
                         feature_d=1024, window_secs=1.0, stride_secs=1.0),
    "byol_a_512": named("byol_a", f"{BYOL_A}/AudioNTT2020-BYOLA-64x96d512.pth", card=BYOL_A_512_CARD,
                        # computed from the released file in a mirror of the byol-a repository (a plain git file:
                        # no digest is published for it)
                        sha256=("6cc64226318494f06ef41d7e5810be7d37abfd6490da45abdab48f188c5332e2",),
                        feature_d=512, window_secs=1.0, stride_secs=1.0),
    "byol_s_default": named(
        "byol_s", f"{BYOL_S}/default2048_BYOLAs64x96-2105311814-e100-bs256-lr0003-rs42.pth", card=BYOL_S_DEFAULT_CARD,
        model_name="default", window_secs=1, hop_secs=0.05),
    "byol_s_cvt": named(
        "byol_s",
        f"{BYOL_S}/cvt_s1-d1-e64_s2-d1-e256_s3-d1-e512_BYOLAs64x96-osandbyolaloss6373-e100-bs256-lr0003-rs42.pth",
        card=BYOL_S_CVT_CARD, model_name="cvt", window_secs=1, hop_secs=0.05),
    "byol_s_resnetish34": named(
        "byol_s", f"{BYOL_S}/resnetish34_BYOLAs64x96-2105271915-e100-bs256-lr0003-rs42.pth",
        card=BYOL_S_RESNETISH34_CARD, model_name="resnetish34", window_secs=1, hop_secs=0.05),
    # ---------------------------------------------------------------- vggish
    # urls = (VGGish weights, PCA parameters)
    "vggish": named("vggish", f"{TORCHVGGISH}/vggish-10086976.pth", f"{TORCHVGGISH}/vggish_pca_params-970ea276.pth",
                    card=VGGISH_CARD),
    # ---------------------------------------------------------------- passt
    # The original entries pass a hear21passt module name (`arch`), whose loader downloads the checkpoint
    # through timm's pretrained-weights mechanism. The URLs below are the ones those modules resolve to
    # (hear21passt/models/passt.py default_cfgs): base/base2level/base2levelmel -> passt_s_swa_p16_128_ap476,
    # hop100* -> stfthop100, hop160* -> stfthop160, base20sec / base30sec -> the 20 s / 30 s models.
    # (`passt_openmic2008` is commented out in the original: "url seems corrupted".)
    "passt_base": named("passt", f"{PASST}/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt", card=PASST_CARD,
                        arch="base", window_secs=0.16, stride_secs=0.05),
    "passt_base2level": named("passt", f"{PASST}/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt", card=PASST_CARD,
                              arch="base2level", window_secs=0.16, stride_secs=0.05),
    "passt_base2levelmel": named("passt", f"{PASST}/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
                                 card=PASST_CARD, arch="base2levelmel", window_secs=0.16, stride_secs=0.05),
    "passt_base20sec": named("passt", f"{PASST}/v0.0.5/passt-s-f128-20sec-p16-s10-ap.474-swa.pt",
                             card=PASST_20SEC_CARD, arch="base20sec", window_secs=0.16, stride_secs=0.05),
    "passt_base30sec": named("passt", f"{PASST}/v0.0.5/passt-s-f128-30sec-p16-s10-ap.473-swa.pt",
                             card=PASST_30SEC_CARD, arch="base30sec", window_secs=0.16, stride_secs=0.05),
    "passt_hop100base": named("passt", f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop100-p16-s10-ap.473-swa.pt",
                              card=PASST_HOP100_CARD, arch="hop100base", window_secs=0.16, stride_secs=0.05),
    "passt_hop100base2lvl": named("passt", f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop100-p16-s10-ap.473-swa.pt",
                                  card=PASST_HOP100_CARD, arch="hop100base2lvl", window_secs=0.16, stride_secs=0.05),
    "passt_hop100base2lvlmel": named("passt",
                                     f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop100-p16-s10-ap.473-swa.pt",
                                     card=PASST_HOP100_CARD, arch="hop100base2lvlmel", window_secs=0.16,
                                     stride_secs=0.05),
    "passt_hop160base": named("passt", f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop160-p16-s10-ap.473-swa.pt",
                              card=PASST_HOP160_CARD, arch="hop160base", window_secs=0.16, stride_secs=0.05),
    "passt_hop160base2lvl": named("passt", f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop160-p16-s10-ap.473-swa.pt",
                                  card=PASST_HOP160_CARD, arch="hop160base2lvl", window_secs=0.16, stride_secs=0.05),
    "passt_hop160base2lvlmel": named("passt",
                                     f"{PASST}/v0.0.3-audioset/passt-s-f128-stfthop160-p16-s10-ap.473-swa.pt",
                                     card=PASST_HOP160_CARD, arch="hop160base2lvlmel", window_secs=0.16,
                                     stride_secs=0.05),
    # ---------------------------------------------------------------- mos_prediction
    # `upstream` is what each original entry sets before building (returns {"scores"}, no hidden states)
    "mos_wav2vec2_local": user("mos_prediction", upstream="wav2vec2"),
    "mos_wav2vec2_url": user("mos_prediction", upstream="wav2vec2"),
    "mos_wav2vec2": named("mos_prediction", f"{DBX}/s9zpouk5svu1a4l/wav2vec2-dev-SRCC-best.ckpt?dl=1",
                          card=MOS_WAV2VEC2_CARD, upstream="wav2vec2"),
    "mos_tera_local": user("mos_prediction", upstream="tera"),
    "mos_tera_url": user("mos_prediction", upstream="tera"),
    "mos_tera": named("mos_prediction", f"{DBX}/w4jk5bujaoosk69/tera-dev-SRCC-best.ckpt?dl=1",
                      card=MOS_TERA_CARD, upstream="tera"),
    "mos_apc_local": user("mos_prediction", upstream="apc"),
    "mos_apc_url": user("mos_prediction", upstream="apc"),
    "mos_apc": named("mos_prediction", f"{DBX}/ulng31as15hsvz1/apc-dev-SRCC-best.ckpt?dl=1",
                     card=MOS_APC_CARD, upstream="apc"),
    # ---------------------------------------------------------------- baseline (feature front-ends)
    "baseline": alias("fbank"),
    "baseline_local": user("baseline"),  # model_config= yaml
    "fbank": builtin("baseline", FBANK_CARD, feature="fbank"),
    "fbank_no_cmvn": builtin("baseline", FBANK_CARD, feature="fbank_no_cmvn"),
    "mfcc": builtin("baseline", FBANK_CARD, feature="mfcc"),
    "mel": builtin("baseline", FBANK_CARD, feature="mel"),
    "linear": builtin("baseline", FBANK_CARD, feature="linear"),
    "spectrogram": builtin("baseline", FBANK_CARD, feature="spectrogram"),
    # ---------------------------------------------------------------- log_stft
    # Needs model_config= (a yaml such as the original's upstream/log_stft/stft_mag.yaml) from the user, but its
    # name has no _local/_url/_custom suffix, so the original lists it among the registered names: same here.
    "stft_mag": builtin("log_stft"),
    # ---------------------------------------------------------------- example
    # The original's template entry (`customized_upstream(ckpt, model_config)` passed through); listed as registered.
    "customized_upstream": builtin("example"),
    # ---------------------------------------------------------------- timit_phone (downstream model as upstream)
    # The original hub imports only `timit_posteriorgram`; its _local/_url (same hubconf) are added here.
    "timit_posteriorgram_local": user("timit_phone"),
    "timit_posteriorgram_url": user("timit_phone"),
    "timit_posteriorgram": named("timit_phone", f"{DBX}/fb2hkvetp26wges/convbank.ckpt?dl=1",
                                 card=TIMIT_POSTERIORGRAM_CARD),
}


def resolve(name: str) -> tuple[str, Entry]:
    """Follow aliases; returns the canonical name and its row. Unknown names raise with suggestions."""
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown upstream name {name!r}.{hint} `s3prl list` shows every name.")
    seen = [name]
    entry = REGISTRY[name]
    while entry.alias_of is not None:
        name = entry.alias_of
        if name in seen:
            raise RuntimeError(f"alias loop in the registry: {' -> '.join(seen + [name])}")
        seen.append(name)
        entry = REGISTRY[name]
    return name, entry


def available_names(only_registered_ckpt: bool = False) -> list[str]:
    """Every name, as the original ``hub.options``; with ``only_registered_ckpt`` the user-checkpoint rows go."""
    names = []
    for name, entry in REGISTRY.items():
        if only_registered_ckpt and entry.user_ckpt:
            continue
        names.append(name)
    return names
