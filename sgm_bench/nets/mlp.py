"""Toy network: an MLP on [x, emb(c)] (the course's 1x128 and 2x128 ReLU models)."""
from __future__ import annotations

import torch
from torch import nn

from .embed import Conditioning

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "softplus": nn.Softplus, "elu": nn.ELU}


class MLP(nn.Module):
    """s_theta(x, c): depth hidden layers of `hidden` units on the input concatenated with the noise embedding."""

    def __init__(self, shape, hidden: int = 128, depth: int = 2, act: str = "relu", embedding: str = "fourier",
                 embed_dim: int = 32, num_labels: int | None = None, num_classes: int = 0, out_dim: int | None = None):
        super().__init__()
        self.shape = tuple(shape)
        dim = int(torch.tensor(self.shape).prod())
        self.cond = Conditioning(embedding, embed_dim, embed_dim, num_labels, num_classes)
        self.use_cond = embedding != "none" or num_classes > 0
        layers, width = [], dim + (embed_dim if self.use_cond else 0)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), ACTIVATIONS[act]()]
            width = hidden
        layers.append(nn.Linear(width, out_dim or dim))
        self.net = nn.Sequential(*layers)
        self.same_shape = out_dim is None

    def forward(self, x, c=None, y=None):
        h = x.flatten(1)
        if self.use_cond:
            c = torch.zeros(len(x), device=x.device) if c is None else c
            h = torch.cat([h, self.cond(c, y)], 1)
        out = self.net(h)
        return out.reshape(len(x), *self.shape) if self.same_shape else out
