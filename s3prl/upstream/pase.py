"""PASE+ (``pase_plus``, ``pase_local``, ``pase_url``): not available in this toolkit, by decision.

What the original needs. Its expert imports ``pase.models.frontend.wf_builder`` from the ``s3prl/pase`` fork
(git only) and builds PASE+ from a ``PASE+.cfg`` json: a SincNet first layer, seven conv blocks with
BatchNorm / PReLU and reflect padding, 1x1 "dense skip" projections from every block, a bidirectional
QRNN from ``s3prl/pytorch-qrnn`` (git only; its recurrence runs as CuPy / pynvrtc CUDA kernels), a final
1x1 projection and a non-affine BatchNorm; the hub entry then hooks ``W``, the model output and the 7 skip
projections (mean-pooled to the final rate): 9 states of 256 dims, stride 160. ``requirements.txt``
pins ``cupy-cuda102`` (CUDA 10.2 wheels), ``pynvrtc==8.0``, ``pysptk``, ``webrtcvad`` and five git-only
packages (``pase``, ``pytorch-qrnn``, ``ahoproc_tools``, ``gammatone``, ``kaldi-io``).

Why it is not re-implemented. That stack cannot be installed today (no CUDA 10.2 CuPy wheels for current
Python / PyTorch, pynvrtc 8.0 does not build against current CUDA, git-only packages are outside the
package registries this project may use), so the original cannot be run to check a re-implementation
against, and the checkpoint's key names and the QRNN / SincNet details would have to come from reading
unmaintained code alone. An unverifiable re-implementation could silently give different numbers under
the PASE+ name; a clear error is the honest answer. PASE+ also trails most current upstreams on SUPERB.

What to use instead: a self-supervised model of similar cost with maintained weights, e.g. ``wavlm_base_plus``,
``hubert_base`` or ``wav2vec2_base_960`` (stride 320), or for a small CNN/RNN front-end at PASE+'s 10 ms
stride, ``apc_360hr`` / ``npc_360hr`` or ``modified_cpc``.
"""

from __future__ import annotations

UNAVAILABLE = (
    "PASE+ ({name}) is not available in this s3prl: the original depends on a dead package stack "
    "(cupy-cuda102, pynvrtc==8.0 and the git-only s3prl/pase and s3prl/pytorch-qrnn packages with CUDA-only "
    "QRNN kernels) that cannot be installed or run to verify a re-implementation. Use a maintained upstream "
    "instead, e.g. 'wavlm_base_plus', 'hubert_base' or 'wav2vec2_base_960', or at PASE+'s 10 ms stride "
    "'apc_360hr', 'npc_360hr' or 'modified_cpc'. See s3prl/upstream/pase.py for details."
)


class PaseUnavailableError(NotImplementedError):
    """PASE+ cannot be built (see the module docstring)."""


def build(ckpt: str | None = None, model_config: str | None = None, **options):
    """Always raises ``PaseUnavailableError`` with the reason and the alternatives."""
    raise PaseUnavailableError(UNAVAILABLE.format(name="pase_plus / pase_local / pase_url"))
