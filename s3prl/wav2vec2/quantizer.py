"""Vector quantizers of wav2vec 2.0 and vq-wav2vec: Gumbel-softmax (fairseq ``GumbelVectorQuantizer`` semantics)
and k-means (``KmeansVectorQuantizer``, at the end).

A frame (B, T, C) is projected to ``groups x num_vars`` logits; each group picks one of its ``num_vars``
codewords (``vq_dim // groups`` wide) and the picks are concatenated. In training the pick is a straight-through
Gumbel-softmax sample (hard one-hot forward, soft gradient); in eval it is the arg-max. Parameter names
(``vars``, ``weight_proj[...]``) are fairseq's, so a fairseq checkpoint's ``quantizer.*`` tensors load as they are.

The Gumbel noise can be given (replay) or drawn from a ``torch.Generator``; it is returned either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def gumbel_temperature(start: float, end: float, decay: float, num_updates: int) -> float:
    """The temperature after ``num_updates`` updates: exponential decay from ``start``, floored at ``end``."""
    return max(start * decay**num_updates, end)


@dataclass
class QuantizerOutput:
    x: torch.Tensor  # (B, T, vq_dim) quantized frames
    logits: torch.Tensor  # (B*T*G, V) codeword logits before any noise
    code_perplexity: torch.Tensor  # () sum over groups of exp(entropy) of the arg-max code histogram
    prob_perplexity: torch.Tensor  # () sum over groups of exp(entropy) of the mean softmax
    num_vars: int  # groups * num_vars: the perplexities' ceiling
    temp: float
    noise: torch.Tensor | None  # (B*T*G, V) the Gumbel noise used (None in eval)
    indices: torch.Tensor  # (B, T, G) chosen codeword per group


def _perplexity(probs: torch.Tensor) -> torch.Tensor:
    """probs (G, V) -> () sum over groups of exp(entropy); the 1e-7 keeps log() finite on empty codes."""
    return torch.exp(-torch.sum(probs * torch.log(probs + 1e-7), dim=-1)).sum()


class GumbelVectorQuantizer(nn.Module):
    """Product quantizer with ``groups`` codebooks of ``num_vars`` entries each.

    ``temp`` = (start, end, decay): the temperature follows :func:`gumbel_temperature` through
    :meth:`set_num_updates`. ``weight_proj_depth`` > 1 inserts (Linear, activation) blocks of width
    ``input_dim * weight_proj_factor`` before the logits layer (vq-wav2vec's two-layer projection)."""

    def __init__(self, input_dim: int, num_vars: int, temp: tuple[float, float, float], groups: int, vq_dim: int,
                 combine_groups: bool = False, weight_proj_depth: int = 1, weight_proj_factor: int = 1,
                 activation: nn.Module | None = None):
        super().__init__()
        if vq_dim % groups:
            raise ValueError(f"quantizer dimension {vq_dim} (latent_dim / final_dim) must be divisible by "
                             f"latent_groups={groups}")
        if len(tuple(temp)) != 3:
            raise ValueError(f"latent_temp must be (start, end, decay), got {temp!r}")
        self.groups, self.num_vars, self.combine_groups = groups, num_vars, combine_groups
        self.input_dim, self.vq_dim = input_dim, vq_dim
        codebooks = 1 if combine_groups else groups
        self.vars = nn.Parameter(torch.empty(1, codebooks * num_vars, vq_dim // groups))
        nn.init.uniform_(self.vars)
        if weight_proj_depth > 1:
            inner = input_dim * weight_proj_factor
            act = activation if activation is not None else nn.GELU()
            blocks = [nn.Sequential(nn.Linear(input_dim if i == 0 else inner, inner), act)
                      for i in range(weight_proj_depth - 1)]
            self.weight_proj = nn.Sequential(*blocks, nn.Linear(inner, groups * num_vars))
        else:
            self.weight_proj = nn.Linear(input_dim, groups * num_vars)
            nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)
            nn.init.zeros_(self.weight_proj.bias)
        self.max_temp, self.min_temp, self.temp_decay = (float(t) for t in temp)
        self.curr_temp = self.max_temp

    def set_num_updates(self, num_updates: int) -> None:
        self.curr_temp = gumbel_temperature(self.max_temp, self.min_temp, self.temp_decay, num_updates)

    def codebook(self) -> torch.Tensor:
        """(G * V, vq_dim // G): the codewords of every group, in order."""
        return self.vars.repeat(1, self.groups, 1)[0] if self.combine_groups else self.vars[0]

    def draw_noise(self, shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Gumbel(0, 1) noise ``-log(E)``, E ~ Exponential(1), as torch's ``gumbel_softmax`` draws it (on the
        generator's device, then moved: a CPU generator can drive a GPU model)."""
        where = device if generator is None else generator.device
        e = torch.empty(shape, device=where).exponential_(generator=generator)
        return (-e.log()).to(device)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> QuantizerOutput:
        """x (B, T, C) -> quantized (B, T, vq_dim). ``noise`` (B*T*G, V) replays a Gumbel draw (training only)."""
        B, T, C = x.shape
        G, V = self.groups, self.num_vars
        logits = self.weight_proj(x.reshape(-1, C)).view(B * T * G, V)  # (N*G, V)
        with torch.no_grad():
            index = logits.argmax(-1)
            hard_probs = torch.zeros_like(logits).scatter_(-1, index[:, None], 1.0).view(B * T, G, V).float()
            code_ppl = _perplexity(hard_probs.mean(dim=0))
        avg_probs = torch.softmax(logits.view(B * T, G, V).float(), dim=-1).mean(dim=0)  # (G, V)
        prob_ppl = _perplexity(avg_probs)
        if self.training:
            if noise is None:
                noise = self.draw_noise(logits.shape, generator, logits.device)
            elif noise.shape != logits.shape:
                raise ValueError(f"gumbel noise has shape {tuple(noise.shape)}, expected {tuple(logits.shape)} "
                                 f"(frames*groups, num_vars)")
            soft = ((logits.float() + noise.to(logits.device, torch.float32)) / self.curr_temp).softmax(-1)
            index = soft.argmax(-1)
            hard = torch.zeros_like(soft).scatter_(-1, index[:, None], 1.0)
            onehot = (hard - soft.detach() + soft).type_as(logits)  # straight-through: hard forward, soft grad
        else:
            noise = None
            onehot = torch.zeros_like(logits).scatter_(-1, index[:, None], 1.0)
        # one-hot x codebook summed over the V entries (fairseq's order of operations, not a gather): the
        # quantized targets then match fairseq's bit for bit, and so does the "negative == positive" test
        q = onehot.view(B * T, G * V, 1) * self.codebook()[None]  # (N, G*V, d)
        q = q.view(B * T, G, V, -1).sum(-2).view(B, T, -1)  # (B, T, vq_dim)
        return QuantizerOutput(q, logits, code_ppl, prob_ppl, G * V, self.curr_temp, noise,
                               index.view(B, T, G))

    @torch.no_grad()
    def forward_idx(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fairseq's ``forward_idx`` (eval-style arg-max): (quantized (B, T, vq_dim), indices (B, T, G))."""
        was_training = self.training
        self.eval()
        try:
            out = self.forward(x)
        finally:
            self.train(was_training)
        return out.x, out.indices


@dataclass
class KmeansOutput:
    x: torch.Tensor  # (B, C, T) code words forward, gradient straight to the projected features
    code_perplexity: torch.Tensor
    kmeans_loss: torch.Tensor  # () codebook loss + gamma * commitment loss
    num_vars: int
    indices: torch.Tensor  # (B, T, G)


class KmeansVectorQuantizer(nn.Module):
    """vq-wav2vec's k-means quantizer (fairseq ``KmeansVectorQuantizer`` semantics, time second: (B, C, T)).

    Features go through a grouped 1x1 conv + GroupNorm (``projection``); each group picks its nearest codeword
    (L2) in ``embedding`` (V, G or 1, C / G). Forward gives the codewords, backward passes the gradient straight
    to the projected features; ``kmeans_loss`` = mse(codewords, features.detach()) + gamma * mse(features,
    codewords.detach()) trains the codebook and keeps the features close to it."""

    CHUNK = 256  # frames per distance computation (bounds memory; every distance is computed the same way)

    def __init__(self, input_dim: int, num_vars: int, groups: int, vq_dim: int, combine_groups: bool = False,
                 gamma: float = 0.25):
        super().__init__()
        if vq_dim % groups:
            raise ValueError(f"vq_dim {vq_dim} must be divisible by vq_groups={groups}")
        self.groups, self.num_vars, self.combine_groups, self.gamma = groups, num_vars, combine_groups, gamma
        self.var_dim = vq_dim // groups
        self.embedding = nn.Parameter(0.01 * torch.randn(num_vars, 1 if combine_groups else groups, self.var_dim))
        self.projection = nn.Sequential(nn.Conv1d(input_dim, input_dim, 1, groups=groups, bias=False),
                                        nn.GroupNorm(groups, input_dim))

    def codebook(self) -> torch.Tensor:
        return self.embedding.expand(self.num_vars, self.groups, self.var_dim)  # (V, G, d)

    def forward(self, x: torch.Tensor) -> KmeansOutput:
        B, C, T = x.shape
        G, V, d = self.groups, self.num_vars, self.var_dim
        ze = self.projection(x)  # (B, C, T)
        frames = ze.view(B, G, d, T).permute(0, 3, 1, 2).reshape(B * T, G, d)
        book = self.codebook()
        with torch.no_grad():
            idx = torch.cat([(chunk[None] - book[:, None]).norm(dim=-1, p=2).argmin(0)  # (V, n, G) -> (n, G)
                             for chunk in frames.split(self.CHUNK)]) if B * T else frames.new_zeros(0, G).long()
        zq = torch.stack([book[idx[:, g], g] for g in range(G)], dim=-2)  # (B*T, G, d)
        zq = zq.view(B, T, G * d).permute(0, 2, 1)  # (B, C, T)
        out = zq.detach() + (ze - ze.detach())  # straight-through
        with torch.no_grad():
            hard = torch.zeros(B * T * G, V, device=x.device).scatter_(-1, idx.view(-1, 1), 1.0).view(B * T, G, V)
            code_ppl = _perplexity(hard.mean(dim=0))
        ze32, zq32 = ze.float(), zq.float()
        loss = F.mse_loss(zq32, ze32.detach()) + self.gamma * F.mse_loss(ze32, zq32.detach())
        return KmeansOutput(out, code_ppl, loss, V, idx.view(B, T, G))
