"""Image network: DDPM's U-Net (Ho et al. 2020, App. B) with configurable width, depth, attention and conditioning."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .embed import Conditioning


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, max(1, c // 4)), c)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus the projected noise embedding, GroupNorm-SiLU-dropout-conv, residual."""

    def __init__(self, cin: int, cout: int, temb: int, dropout: float):
        super().__init__()
        self.block1 = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.temb = nn.Linear(temb, cout)
        self.block2 = nn.Sequential(_norm(cout), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.block1(x) + self.temb(F.silu(emb))[:, :, None, None]
        return self.skip(x) + self.block2(h)


class Attention(nn.Module):
    """Single-head self-attention over spatial positions."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.qkv, self.out = _norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x, emb=None):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.out(h.transpose(-1, -2).reshape(B, C, H, W))


class UNetEncoder(nn.Module):
    """The U-Net's input convolution, downsampling path and middle: the half that UNet and the classifier share."""

    def __init__(self, shape, ch: int = 32, ch_mult=(1, 2), num_res_blocks: int = 1, attn_resolutions=(4,),
                 dropout: float = 0.0, embedding: str = "sinusoidal", num_labels: int | None = None, num_classes: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        halvings = 2 ** (len(ch_mult) - 1)
        if len(shape) != 3 or shape[1] % halvings or shape[2] % halvings:
            raise ConfigError(f"a U-Net with ch_mult {list(ch_mult)} halves the image {len(ch_mult) - 1} times: its "
                              f"height and width must be multiples of {halvings}, got shape {list(shape)}; use fewer "
                              "ch_mult levels")
        res, temb = shape[1], 4 * ch
        self.cond = Conditioning(embedding, ch, temb, num_labels, num_classes)
        self.conv_in = nn.Conv2d(shape[0], ch, 3, padding=1)
        self.down, self.chans, c = nn.ModuleList(), [ch], ch
        for level, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                blocks = [ResBlock(c, ch * mult, temb, dropout)] + ([Attention(ch * mult)] if res in attn_resolutions else [])
                c = ch * mult
                self.down.append(nn.ModuleList(blocks))
                self.chans.append(c)
            if level != len(ch_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                self.chans.append(c)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb, dropout), Attention(c), ResBlock(c, c, temb, dropout)])
        self.width, self.bottom_res = c, res

    @staticmethod
    def _run(blocks, h, emb):
        for b in blocks:
            h = b(h, emb) if isinstance(b, (ResBlock, Attention)) else b(h)
        return h

    def encode(self, x, c=None, y=None):
        """(skip activations, middle output, embedding)."""
        c = torch.zeros(len(x), device=x.device) if c is None else c
        emb = self.cond(c, y)
        hs = [self.conv_in(x)]
        for blocks in self.down:
            hs.append(self._run(blocks, hs[-1], emb))
        return hs, self._run(self.mid, hs[-1], emb), emb


class UNet(UNetEncoder):
    """eps_theta / s_theta(x, c[, y]) on [B, C, H, W]; the DDPM CIFAR-10 setting is ch=128, ch_mult=(1,2,2,2)."""

    def __init__(self, shape, ch: int = 32, ch_mult=(1, 2), num_res_blocks: int = 1, attn_resolutions=(4,),
                 dropout: float = 0.0, **cond):
        super().__init__(shape, ch, ch_mult, num_res_blocks, attn_resolutions, dropout, **cond)
        temb, c, res, chans = 4 * ch, self.width, self.bottom_res, list(self.chans)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                blocks = [ResBlock(c + chans.pop(), ch * mult, temb, dropout)]
                c = ch * mult
                blocks += [Attention(c)] if res in attn_resolutions else []
                self.up.append(nn.ModuleList(blocks))
            if level != 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]))
                res *= 2
        self.out = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, shape[0], 3, padding=1))

    def forward(self, x, c=None, y=None):
        hs, h, emb = self.encode(x, c, y)
        for blocks in self.up:
            if isinstance(blocks[0], ResBlock):
                h = torch.cat([h, hs.pop()], 1)
            h = self._run(blocks, h, emb)
        return self.out(h)


class UNetClassifier(UNetEncoder):
    """Logits of p_t(y | x(t)) from the U-Net's encoder half, pooled (ADM's noisy-image classifier, Dhariwal & Nichol
    2021, sec. 4): the image-sized time-dependent classifier."""

    def __init__(self, shape, num_outputs: int, **encoder):
        super().__init__(shape, **encoder)
        self.head = nn.Sequential(_norm(self.width), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(self.width, num_outputs))

    def forward(self, x, c=None, y=None):
        return self.head(self.encode(x, c)[1])
