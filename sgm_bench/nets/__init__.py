"""Networks by name: `mlp` for toy data, `unet` for images."""
from ..registry import Registry
from .mlp import MLP
from .unet import UNet

NETS = Registry("network")
NETS.add("mlp", MLP)
NETS.add("unet", UNet)


def parameter_count(net) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


__all__ = ["NETS", "MLP", "UNet", "parameter_count"]
