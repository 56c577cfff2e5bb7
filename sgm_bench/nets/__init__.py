"""Networks by name: `mlp` for toy data, `unet` for images, `ncsnpp` / `ddpm_unet` for score_sde's CIFAR-10 networks,
`diffusers_unet` for a diffusers UNet2DModel (Ho et al.'s released DDPM)."""
from ..registry import Registry
from .diffusers_unet import DiffusersUNet
from .mlp import MLP
from .ncsnpp import NCSNpp, ddpm_unet
from .unet import UNet

NETS = Registry("network")
NETS.add("mlp", MLP)
NETS.add("unet", UNet)
NETS.add("ncsnpp", NCSNpp)
NETS.add("ddpm_unet", ddpm_unet)
NETS.add("diffusers_unet", DiffusersUNet)


def parameter_count(net) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


__all__ = ["NETS", "MLP", "UNet", "NCSNpp", "DiffusersUNet", "parameter_count"]
