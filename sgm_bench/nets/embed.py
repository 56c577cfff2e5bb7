"""Noise-level / time embeddings and the optional class embedding shared by all networks."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import Registry

EMBEDDINGS = Registry("noise embedding")


@EMBEDDINGS.register("fourier")
class GaussianFourier(nn.Module):
    """Random Fourier features [sin 2 pi W c, cos 2 pi W c], W ~ N(0, scale^2) fixed (Tancik et al.; score_sde)."""

    time_scale = 1.0  # continuous VP / sub-VP time enters as t (NCSN++ style)

    def __init__(self, dim: int, num_labels: int | None = None, scale: float = 16.0):
        super().__init__()
        self.register_buffer("W", torch.randn(dim // 2) * scale)

    def forward(self, c):
        p = 2 * math.pi * c[:, None].float() * self.W[None]
        return torch.cat([p.sin(), p.cos()], 1)


@EMBEDDINGS.register("sinusoidal")
class Sinusoidal(nn.Module):
    """Transformer sinusoidal embedding of a scalar label, as DDPM embeds its step index."""

    time_scale = 999.0  # continuous VP / sub-VP time enters as 999 t (DDPM++ style)

    def __init__(self, dim: int, num_labels: int | None = None, max_period: float = 10000.0):
        super().__init__()
        freqs = torch.exp(-math.log(max_period) * torch.arange(dim // 2) / (dim // 2))
        self.register_buffer("freqs", freqs)

    def forward(self, c):
        p = c[:, None].float() * self.freqs[None]
        return torch.cat([p.sin(), p.cos()], 1)


@EMBEDDINGS.register("index")
class IndexEmbedding(nn.Embedding):
    """A learned vector per discrete noise level (NCSN's noise-conditional network)."""

    time_scale = 1.0

    def __init__(self, dim: int, num_labels: int | None = None):
        if not num_labels:
            raise ValueError("an 'index' embedding needs num_labels (the number of noise levels)")
        super().__init__(num_labels, dim)

    def forward(self, c):
        return super().forward(c.round().long())


@EMBEDDINGS.register("none")
class NoEmbedding(nn.Module):
    """No noise conditioning (the single-level `score` family)."""

    time_scale = 1.0

    def __init__(self, dim: int, num_labels: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, c):
        return torch.zeros(len(c), self.dim, device=c.device)


class Conditioning(nn.Module):
    """emb(c) [+ class embedding of y, with index num_classes as the 'no label' token for classifier-free guidance]."""

    def __init__(self, kind: str, dim: int, out_dim: int, num_labels=None, num_classes: int = 0):
        super().__init__()
        self.noise = EMBEDDINGS[kind](dim, num_labels)
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))
        self.num_classes = num_classes
        self.label = nn.Embedding(num_classes + 1, out_dim) if num_classes else None

    def forward(self, c, y=None):
        e = self.mlp(self.noise(c))
        if self.label is not None:
            y = torch.full_like(c, self.num_classes, dtype=torch.long) if y is None else y
            e = e + self.label(y)
        return e
