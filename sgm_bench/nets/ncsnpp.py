"""NCSN++ and DDPM++ (Song et al. 2021, App. H.1) and the DDPM U-Net (Ho et al. 2020, App. B) as score_sde builds them.

One network, score_sde's options: BigGAN or DDPM residual blocks, FIR resampling, skip rescaling by 1/sqrt(2),
progressive input / output pyramids, Fourier or positional noise features, zero-initialised output layers
(`init_scale`). `ddpm_unet` is the same network with DDPM's choices (score_sde's `models/ddpm.py`).

Parameters sit in one ModuleList, `all_modules`, in the order and under the names of score_sde's checkpoints, so that
a released checkpoint loads by stripping DataParallel's `module.` (sgm_bench.released). score_sde's `scale_by_sigma`
is the `scaled_score` parameterization here (params.py: output / sigma), applied by the ScoreModel, not the network.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import resample


def variance_scaling(shape, scale: float = 1.0) -> torch.Tensor:
    """DDPM's initialiser: uniform with variance scale / fan_avg (a zero scale stands for 1e-10, as score_sde)."""
    scale = 1e-10 if scale == 0 else scale
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_avg = (shape[0] + shape[1]) * receptive / 2
    return (torch.rand(*shape) * 2 - 1) * math.sqrt(3 * scale / fan_avg)


def conv(cin: int, cout: int, k: int = 3, init_scale: float = 1.0, **kw) -> nn.Conv2d:
    c = nn.Conv2d(cin, cout, k, padding=kw.pop("padding", k // 2), **kw)
    c.weight.data, c.bias.data = variance_scaling(c.weight.shape, init_scale), torch.zeros(cout)
    return c


def dense(cin: int, cout: int) -> nn.Linear:
    d = nn.Linear(cin, cout)
    d.weight.data, d.bias.data = variance_scaling(d.weight.shape), torch.zeros(cout)
    return d


def group_norm(c: int, groups: int | None) -> nn.GroupNorm:
    """score_sde's GroupNorm: min(C / 4, 32) groups in NCSN++, 32 in DDPM; eps 1e-6."""
    return nn.GroupNorm(groups or min(c // 4, 32), c, eps=1e-6)


class NIN(nn.Module):
    """A 1x1 layer with weight W [in, out] ('network in network', DDPM's attention projections and shortcuts)."""

    def __init__(self, cin: int, cout: int, init_scale: float = 0.1):
        super().__init__()
        self.W = nn.Parameter(variance_scaling((cin, cout), init_scale))
        self.b = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        return torch.einsum("bhwc,co->bhwo", x.permute(0, 2, 3, 1), self.W).add(self.b).permute(0, 3, 1, 2)


def _merge(x, h, rescale: bool):
    return (x + h) / math.sqrt(2.0) if rescale else x + h


class Attention(nn.Module):
    """Single-head self-attention over positions with NIN projections (DDPM's AttnBlock, NCSN++'s AttnBlockpp)."""

    def __init__(self, c: int, skip_rescale: bool = False, init_scale: float = 0.0, groups: int | None = None):
        super().__init__()
        self.GroupNorm_0 = group_norm(c, groups)
        self.NIN_0, self.NIN_1, self.NIN_2 = NIN(c, c), NIN(c, c), NIN(c, c)
        self.NIN_3 = NIN(c, c, init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.GroupNorm_0(x)
        q, k, v = self.NIN_0(h), self.NIN_1(h), self.NIN_2(h)
        w = torch.einsum("bchw,bcij->bhwij", q, k) * C**-0.5
        w = F.softmax(w.reshape(B, H, W, H * W), -1).reshape(B, H, W, H, W)
        return _merge(x, self.NIN_3(torch.einsum("bhwij,bcij->bchw", w, v)), self.skip_rescale)


class ResBlock(nn.Module):
    """GroupNorm-act-conv, + Dense(act(temb)), GroupNorm-act-dropout-conv, + shortcut. `resample` 'up' / 'down' resamples
    both branches first (BigGAN blocks); the shortcut is a 1x1 conv (BigGAN) or a NIN (DDPM) when the shape changes."""

    def __init__(self, cin: int, cout: int | None, temb: int | None, act, dropout: float, *, biggan: bool,
                 resample_: str | None = None, fir: bool = False, kernel=(1, 3, 3, 1), skip_rescale: bool = False,
                 init_scale: float = 0.0, groups: int | None = None):
        super().__init__()
        cout = cout or cin
        self.GroupNorm_0 = group_norm(cin, groups)
        self.Conv_0 = conv(cin, cout)
        if temb is not None:
            self.Dense_0 = dense(temb, cout)
        self.GroupNorm_1 = group_norm(cout, groups)
        self.Dropout_0 = nn.Dropout(dropout)
        self.Conv_1 = conv(cout, cout, init_scale=init_scale)
        if biggan and (cin != cout or resample_):
            self.Conv_2 = conv(cin, cout, 1)
        elif not biggan and cin != cout:
            self.NIN_0 = NIN(cin, cout)
        self.act, self.resample, self.fir, self.kernel, self.skip_rescale = act, resample_, fir, kernel, skip_rescale

    def _resample(self, x):
        if self.resample == "up":
            return resample.upsample_2d(x, self.kernel) if self.fir else resample.naive_upsample_2d(x)
        return resample.downsample_2d(x, self.kernel) if self.fir else resample.naive_downsample_2d(x)

    def forward(self, x, temb=None):
        h = self.act(self.GroupNorm_0(x))
        if self.resample:
            h, x = self._resample(h), self._resample(x)
        h = self.Conv_0(h)
        if temb is not None:
            h = h + self.Dense_0(self.act(temb))[:, :, None, None]
        h = self.Conv_1(self.Dropout_0(self.act(self.GroupNorm_1(h))))
        shortcut = getattr(self, "Conv_2", None) or getattr(self, "NIN_0", None)
        return _merge(shortcut(x) if shortcut is not None else x, h, self.skip_rescale)


class FIRConv(nn.Module):
    """A 3x3 convolution fused with FIR up- or downsampling (score_sde's up_or_down_sampling.Conv2d)."""

    def __init__(self, cin: int, cout: int, direction: str, kernel):
        super().__init__()
        self.weight = nn.Parameter(variance_scaling((cout, cin, 3, 3)))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.direction, self.kernel = direction, kernel

    def forward(self, x):
        fused = resample.upsample_conv_2d if self.direction == "up" else resample.conv_downsample_2d
        return fused(x, self.weight, self.kernel) + self.bias[None, :, None, None]


class Resample(nn.Module):
    """Up- or downsampling by 2 between levels (DDPM blocks) and for the progressive pyramids: nearest / average or FIR,
    with a convolution when `with_conv` (a 'SAME'-padded strided one when going down without FIR)."""

    def __init__(self, direction: str, cin: int | None = None, cout: int | None = None, with_conv: bool = False,
                 fir: bool = False, kernel=(1, 3, 3, 1)):
        super().__init__()
        cout = cout or cin
        if with_conv and fir:
            self.Conv2d_0 = FIRConv(cin, cout, direction, kernel)
        elif with_conv:
            self.Conv_0 = conv(cin, cout, stride=2, padding=0) if direction == "down" else conv(cin, cout)
        self.direction, self.with_conv, self.fir, self.kernel = direction, with_conv, fir, kernel

    def forward(self, x):
        if self.with_conv and self.fir:
            return self.Conv2d_0(x)
        if self.direction == "up":
            h = resample.upsample_2d(x, self.kernel) if self.fir else F.interpolate(x, scale_factor=2.0, mode="nearest")
            return self.Conv_0(h) if self.with_conv else h
        if self.fir:
            return resample.downsample_2d(x, self.kernel)
        return self.Conv_0(F.pad(x, (0, 1, 0, 1))) if self.with_conv else F.avg_pool2d(x, 2, 2)


class Combine(nn.Module):
    """Merge the input pyramid into the main branch: a 1x1 conv of the pyramid, then concatenated or summed."""

    def __init__(self, cin: int, cout: int, method: str):
        super().__init__()
        self.Conv_0, self.method = conv(cin, cout, 1), method

    def forward(self, pyramid, h):
        p = self.Conv_0(pyramid)
        return torch.cat([p, h], 1) if self.method == "cat" else p + h


class FourierFeatures(nn.Module):
    """[sin 2 pi W log sigma, cos 2 pi W log sigma], W ~ N(0, scale^2) fixed (a parameter without gradient, as
    score_sde keeps it)."""

    def __init__(self, size: int, scale: float):
        super().__init__()
        self.W = nn.Parameter(torch.randn(size) * scale, requires_grad=False)

    def forward(self, c):
        p = torch.log(c)[:, None] * self.W[None] * 2 * np.pi
        return torch.cat([p.sin(), p.cos()], -1)


def positional_embedding(c: torch.Tensor, dim: int, max_positions: float = 10000.0) -> torch.Tensor:
    """DDPM's sinusoidal embedding [sin, cos] with frequencies max_positions^(-k / (dim / 2 - 1))."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=c.device) * -(math.log(max_positions) / (half - 1)))
    p = c.float()[:, None] * freqs[None]
    return F.pad(torch.cat([p.sin(), p.cos()], 1), (0, dim % 2))


ACTIVATIONS = {"swish": nn.SiLU, "elu": nn.ELU, "relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2)}


class NCSNpp(nn.Module):
    """s_theta(x, c): NCSN++ / DDPM++ (score_sde's `ncsnpp`; defaults are NCSN++ continuous on CIFAR-10).

    c is score_sde's network input: sigma for Fourier features (logged here), the label for positional ones.
    """

    label_convention = "score_sde"  # ScoreModel feeds the labels score_sde's get_score_fn feeds

    def __init__(self, shape, nf: int = 128, ch_mult=(1, 2, 2, 2), num_res_blocks: int = 4, attn_resolutions=(16,),
                 dropout: float = 0.1, resamp_with_conv: bool = True, fir: bool = True, fir_kernel=(1, 3, 3, 1),
                 skip_rescale: bool = True, resblock_type: str = "biggan", progressive: str = "none",
                 progressive_input: str = "residual", progressive_combine: str = "sum", embedding: str = "fourier",
                 fourier_scale: float = 16.0, init_scale: float = 0.0, centered: bool = False, nonlinearity="swish",
                 norm_groups: int | None = None, num_labels: int | None = None, num_classes: int = 0):
        super().__init__()
        embedding = "positional" if embedding == "sinusoidal" else embedding  # DDPM's sinusoidal features
        _check(shape, ch_mult, resblock_type, progressive, progressive_input, progressive_combine, embedding, num_classes)
        self.shape, self.nf, self.centered, self.embedding = tuple(shape), nf, centered, embedding
        self.act = act = ACTIVATIONS[nonlinearity]()
        channels, kernel, groups = shape[0], tuple(fir_kernel), norm_groups
        biggan = resblock_type == "biggan"

        def res(cin, cout=None, resample_=None):
            return ResBlock(cin, cout, 4 * nf, act, dropout, biggan=biggan, resample_=resample_, fir=fir, kernel=kernel,
                            skip_rescale=skip_rescale, init_scale=init_scale, groups=groups)

        def attn(c):
            return Attention(c, skip_rescale, init_scale, groups)

        mods, prog = [], []  # prog: the forward pass as (operation, indices of its modules)

        def add(op, *modules):
            mods.extend(modules)
            prog.append((op, tuple(range(len(mods) - len(modules), len(mods)))))

        if embedding == "fourier":
            add("fourier", FourierFeatures(nf, fourier_scale))
        add("temb", dense(2 * nf if embedding == "fourier" else nf, 4 * nf), dense(4 * nf, 4 * nf))
        add("conv_in", conv(channels, nf))
        hs_c, cin, pyr_c, side = [nf], nf, channels, shape[1]
        for level, mult in enumerate(ch_mult):  # downsampling path
            for _ in range(num_res_blocks):
                add("res", res(cin, nf * mult))
                cin = nf * mult
                if side in attn_resolutions:
                    add("attn", attn(cin))
                add("push")
                hs_c.append(cin)
            if level == len(ch_mult) - 1:
                continue
            add("resample", res(cin, resample_="down") if biggan else
                Resample("down", cin, with_conv=resamp_with_conv, fir=fir, kernel=kernel))
            if progressive_input == "input_skip":
                add("pyramid_in_combine", Combine(channels, cin, progressive_combine))
                cin = 2 * cin if progressive_combine == "cat" else cin
            elif progressive_input == "residual":
                add("pyramid_in_residual", Resample("down", pyr_c, cin, with_conv=True, fir=fir, kernel=kernel))
                pyr_c = cin
            add("push")
            hs_c.append(cin)
            side //= 2
        cin = hs_c[-1]
        add("res", res(cin))
        add("attn", attn(cin))
        add("res", res(cin))
        for level, mult in reversed(list(enumerate(ch_mult))):  # upsampling path
            for _ in range(num_res_blocks + 1):
                add("cat_res", res(cin + hs_c.pop(), nf * mult))
                cin = nf * mult
            if side in attn_resolutions:
                add("attn", attn(cin))
            top = level == len(ch_mult) - 1
            if progressive != "none" and top:  # the output pyramid starts: channels (output_skip) or features
                add("pyramid_out_start", group_norm(cin, groups),
                    conv(cin, channels, init_scale=init_scale) if progressive == "output_skip" else conv(cin, cin))
                pyr_c = channels if progressive == "output_skip" else cin
            elif progressive == "output_skip":
                add("pyramid_out_add", group_norm(cin, groups), conv(cin, channels, init_scale=init_scale))
            elif progressive == "residual":
                add("pyramid_out_residual", Resample("up", pyr_c, cin, with_conv=True, fir=fir, kernel=kernel))
                pyr_c = cin
            if level != 0:
                add("resample", res(cin, resample_="up") if biggan else
                    Resample("up", cin, with_conv=resamp_with_conv, fir=fir, kernel=kernel))
                side *= 2
        if progressive == "output_skip":
            add("pyramid_out")
        else:
            add("out", group_norm(cin, groups), conv(cin, channels, init_scale=init_scale))
        self.all_modules, self.program = nn.ModuleList(mods), prog
        self.skip_rescale, self.kernel, self.fir = skip_rescale, kernel, fir

    def _pyramid(self, x, direction: str):
        """The pyramids' plain resampling: FIR, or nearest / average."""
        if direction == "up":
            return resample.upsample_2d(x, self.kernel) if self.fir else resample.naive_upsample_2d(x)
        return resample.downsample_2d(x, self.kernel) if self.fir else resample.naive_downsample_2d(x)

    def forward(self, x, c=None, y=None):
        act = self.act
        c = torch.ones(len(x), device=x.device) if c is None else c
        temb = c if self.embedding == "fourier" else positional_embedding(c, self.nf)
        h = x if self.centered else 2 * x - 1.0  # score_sde's networks take [0, 1] data unless `centered`
        pyr_in, pyr_out, hs = h, None, []
        for op, idx in self.program:
            m = [self.all_modules[i] for i in idx]
            if op == "fourier":
                temb = m[0](temb)
            elif op == "temb":
                temb = m[1](act(m[0](temb)))
            elif op == "conv_in":
                h = m[0](h)
                hs.append(h)
            elif op == "res":
                h = m[0](h, temb)
            elif op == "attn":
                h = m[0](h)
            elif op == "push":
                hs.append(h)
            elif op == "resample":
                h = m[0](h, temb) if isinstance(m[0], ResBlock) else m[0](h)
            elif op == "pyramid_in_combine":
                pyr_in = self._pyramid(pyr_in, "down")
                h = m[0](pyr_in, h)
            elif op == "pyramid_in_residual":
                pyr_in = h = _merge(m[0](pyr_in), h, self.skip_rescale)
            elif op == "cat_res":
                h = m[0](torch.cat([h, hs.pop()], 1), temb)
            elif op == "pyramid_out_start":
                pyr_out = m[1](act(m[0](h)))
            elif op == "pyramid_out_add":
                pyr_out = self._pyramid(pyr_out, "up") + m[1](act(m[0](h)))
            elif op == "pyramid_out_residual":
                pyr_out = h = _merge(m[0](pyr_out), h, self.skip_rescale)
            elif op == "pyramid_out":
                h = pyr_out
            elif op == "out":
                h = m[1](act(m[0](h)))
        return h


def _check(shape, ch_mult, resblock_type, progressive, progressive_input, combine, embedding, num_classes):
    from ..errors import ConfigError

    choices = {"resblock_type": (resblock_type, ("biggan", "ddpm")),
               "progressive": (progressive, ("none", "output_skip", "residual")),
               "progressive_input": (progressive_input, ("none", "input_skip", "residual")),
               "progressive_combine": (combine, ("sum", "cat")), "embedding": (embedding, ("fourier", "positional"))}
    for key, (v, valid) in choices.items():
        if v not in valid:
            raise ConfigError(f"ncsnpp: {key} {v!r} is not one of {', '.join(valid)}")
    if num_classes:
        raise ConfigError("ncsnpp is unconditional (score_sde's CIFAR-10 networks); use net 'unet' for class labels")
    if len(shape) != 3 or shape[1] % 2 ** (len(ch_mult) - 1) or shape[2] % 2 ** (len(ch_mult) - 1):
        raise ConfigError(f"ncsnpp needs images whose side divides by 2^{len(ch_mult) - 1} (ch_mult {list(ch_mult)}); "
                          f"got shape {list(shape)}")


def ddpm_unet(shape, nf: int = 128, ch_mult=(1, 2, 2, 2), num_res_blocks: int = 2, attn_resolutions=(16,),
              dropout: float = 0.1, resamp_with_conv: bool = True, centered: bool = True, embedding: str = "positional",
              num_labels: int | None = None, num_classes: int = 0) -> NCSNpp:
    """score_sde's DDPM network (`models/ddpm.py`, Ho et al.'s U-Net with one attention block per level on the way
    up): NCSN++ with DDPM blocks, plain resampling, no skip rescaling, no pyramids, 32 groups, zero-initialised
    output layers."""
    return NCSNpp(shape, nf, ch_mult, num_res_blocks, attn_resolutions, dropout, resamp_with_conv, fir=False,
                  skip_rescale=False, resblock_type="ddpm", progressive="none", progressive_input="none",
                  embedding=embedding, init_scale=0.0, centered=centered, norm_groups=32, num_labels=num_labels,
                  num_classes=num_classes)


ddpm_unet.label_convention = NCSNpp.label_convention
