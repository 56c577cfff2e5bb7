"""A diffusers UNet2DModel as a network: Ho et al.'s DDPM U-Net exactly as the released google/ddpm-cifar10-32 holds it
(attention after every residual block at 16x16, 'SAME'-padded downsampling, 35.7 M parameters)."""
from __future__ import annotations

from torch import nn

# Ho et al.'s CIFAR-10 network (DDPM App. B) in diffusers' terms: google/ddpm-cifar10-32's config.json
HO_CIFAR10 = {
    "act_fn": "silu", "attention_head_dim": None, "block_out_channels": [128, 256, 256, 256],
    "center_input_sample": False, "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "downsample_padding": 0, "flip_sin_to_cos": False, "freq_shift": 1, "in_channels": 3, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-06, "norm_num_groups": 32, "out_channels": 3, "sample_size": 32,
    "time_embedding_type": "positional", "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}


class DiffusersUNet(nn.Module):
    """eps_theta(x, i) by diffusers' UNet2DModel; `config` holds UNet2DModel's arguments (Ho et al.'s by default)."""

    def __init__(self, shape, config: dict | None = None, dropout: float | None = None, embedding: str | None = None,
                 num_labels: int | None = None, num_classes: int = 0):
        super().__init__()
        from diffusers import UNet2DModel

        from ..errors import ConfigError

        if num_classes:
            raise ConfigError("diffusers_unet is unconditional here (Ho et al.'s DDPM); use net 'unet' for class labels")
        config = {**HO_CIFAR10, **(config or {}), "in_channels": shape[0], "out_channels": shape[0],
                  "sample_size": shape[1], **({} if dropout is None else {"dropout": dropout})}
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        self.shape = tuple(shape)
        self.unet = UNet2DModel(**config)

    def forward(self, x, c=None, y=None):
        return self.unet(x, c).sample
