"""A small CNN classifier of 8x8 digits (or 28x28 MNIST): the domain feature extractor for FID / KID / IS on digits,
and the independent clean classifier that scores class-conditional samples. Not an Inception network."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataMissingError
from ..io import save_json, save_torch
from ..optim import adam

INPUT = "uint8 / 127.5 - 1"  # the one input convention of the classifier, recorded in its weights file


class DigitsCNN(nn.Module):
    """conv32-conv64-pool-fc128-fc10 on images in [-1, 1] (grey or RGB); `features` returns the 128-d penultimate layer.
    Training, FID / KID / IS features and accuracy all feed it `prepare(uint8 images)`: the pixels torch-fidelity
    receives, so the range it is scored on is the range it was trained on."""

    def __init__(self, size: int = 8, num_classes: int = 10, channels: int = 1):
        super().__init__()
        self.channels = channels
        self.conv = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * (size // 2) ** 2, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)
        self.size = size

    def prepare(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 [N, C, H, W] images (ImageData.to_uint8: grey repeated to 3 channels) to the network's input: the
        first `channels` channels, 0..255 to [-1, 1]."""
        if img.dtype != torch.uint8:
            raise ConfigError(f"the digits CNN takes uint8 images (ImageData.to_uint8), got {img.dtype}")
        return img[:, : self.channels].float() / 127.5 - 1

    def features(self, x):
        return self.fc(self.conv(x))

    def forward(self, x):
        return self.head(self.features(x))


def train_digits_classifier(train_x, train_y, test_x, test_y, out_path, epochs: int = 40, seed: int = 0,
                            channels: int = 1) -> dict:
    """Adam, batch 64, light shift augmentation, on uint8 images (ImageData.to_uint8 of the data); writes the weights
    and {'test_accuracy', ...} beside them; `channels`: the data's own (to_uint8 repeats grey to 3)."""
    torch.manual_seed(seed)
    net = DigitsCNN(train_x.shape[-1], int(train_y.max()) + 1, channels)
    train_x = net.prepare(train_x)
    opt = adam(net.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(train_x), generator=g)
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            x = train_x[idx]
            shift = torch.randint(-1, 2, (2,), generator=g).tolist()
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net(x), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    acc = accuracy(net, test_x, test_y)
    save_torch({"state_dict": net.state_dict(), "size": net.size, "num_classes": net.head.out_features,
                "channels": net.channels, "input": INPUT}, out_path)
    report = {"test_accuracy": acc, "n_train": len(train_x), "n_test": len(test_x), "epochs": epochs, "seed": seed}
    save_json(report, str(out_path) + ".json")
    return report


@torch.no_grad()
def accuracy(net, img, y) -> float:
    """Top-1 accuracy on uint8 images (ImageData.to_uint8)."""
    return float((net(net.prepare(img)).argmax(1) == y).float().mean())


def load_digits_cnn(path) -> DigitsCNN:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if ck.get("input") != INPUT:  # weights of an older sgm-bench, trained on the level centres, not on these pixels
        raise DataMissingError(f"{path} was trained on another input range than the one it is scored on ({INPUT}); "
                               "train it again: snakemake --cores all --forcerun classifier")
    net = DigitsCNN(ck["size"], ck["num_classes"], ck.get("channels", 1))
    net.load_state_dict(ck["state_dict"])
    return net.eval()
