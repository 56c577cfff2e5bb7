"""FIR up- and downsampling (StyleGAN2's upfirdn2d, as NCSN++ uses it with the [1, 3, 3, 1] kernel) in plain PyTorch.

upfirdn2d: insert up - 1 zeros after every pixel, pad, convolve with the flipped 2-D kernel, keep every down-th pixel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fir_kernel(k, gain: float = 1.0) -> torch.Tensor:
    """The separable kernel outer(k, k), normalised to sum to `gain`."""
    k = torch.as_tensor(k, dtype=torch.float32)
    k = torch.outer(k, k) if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn2d(x: torch.Tensor, k: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad both axes by (pad[0], pad[1]), filter with k, downsample by striding."""
    B, C, H, W = x.shape
    if up > 1:
        x = F.pad(x.reshape(B, C, H, 1, W, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(B, C, H * up, W * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    w = torch.flip(k, [0, 1])[None, None].to(x)
    x = F.conv2d(x.reshape(B * C, 1, *x.shape[2:]), w)
    return x.reshape(B, C, *x.shape[2:])[:, :, ::down, ::down]


def upsample_2d(x, k, factor: int = 2) -> torch.Tensor:
    """FIR upsampling (the kernel scaled by factor^2 keeps a constant image constant)."""
    k = fir_kernel(k, factor**2)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample_2d(x, k, factor: int = 2) -> torch.Tensor:
    """FIR downsampling."""
    k = fir_kernel(k)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv_2d(x, w, k, factor: int = 2) -> torch.Tensor:
    """Upsampling fused with a 3x3 convolution (StyleGAN2): a strided transposed convolution with the spatially
    flipped weight, then the FIR filter, padded once."""
    out_c, in_c, kh, kw = w.shape
    k = fir_kernel(k, factor**2)
    p = (k.shape[0] - factor) - (kw - 1)
    w = torch.flip(w, [2, 3]).transpose(0, 1)  # conv_transpose2d takes [in, out, kh, kw]
    x = F.conv_transpose2d(x, w, stride=factor)
    return upfirdn2d(x, k, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def conv_downsample_2d(x, w, k, factor: int = 2) -> torch.Tensor:
    """The FIR filter, padded once, fused with a strided 3x3 convolution (StyleGAN2)."""
    k = fir_kernel(k)
    p = (k.shape[0] - factor) + (w.shape[-1] - 1)
    return F.conv2d(upfirdn2d(x, k, pad=((p + 1) // 2, p // 2)), w, stride=factor)


def naive_upsample_2d(x, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling."""
    return x.repeat_interleave(factor, 2).repeat_interleave(factor, 3)


def naive_downsample_2d(x, factor: int = 2) -> torch.Tensor:
    """Average pooling."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H // factor, factor, W // factor, factor).mean((3, 5))
