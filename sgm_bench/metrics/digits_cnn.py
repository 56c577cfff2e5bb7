"""A small CNN classifier of 8x8 digits (or 28x28 MNIST): the domain feature extractor for FID / KID / IS on digits,
and the independent clean classifier that scores class-conditional samples. Not an Inception network."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..io import save_json, save_torch
from ..optim import adam


class DigitsCNN(nn.Module):
    """conv32-conv64-pool-fc128-fc10 on images in [-1, 1] (grey or RGB); `features` returns the 128-d penultimate layer."""

    def __init__(self, size: int = 8, num_classes: int = 10, channels: int = 1):
        super().__init__()
        self.channels = channels
        self.conv = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * (size // 2) ** 2, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)
        self.size = size

    def features(self, x):
        return self.fc(self.conv(x))

    def forward(self, x):
        return self.head(self.features(x))


def train_digits_classifier(train_x, train_y, test_x, test_y, out_path, epochs: int = 40, seed: int = 0) -> dict:
    """Adam, batch 64, light shift augmentation; writes the weights and {'test_accuracy', ...} beside them."""
    torch.manual_seed(seed)
    net = DigitsCNN(train_x.shape[-1], int(train_y.max()) + 1, train_x.shape[1])
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
                "channels": net.channels}, out_path)
    report = {"test_accuracy": acc, "n_train": len(train_x), "n_test": len(test_x), "epochs": epochs, "seed": seed}
    save_json(report, str(out_path) + ".json")
    return report


@torch.no_grad()
def accuracy(net, x, y) -> float:
    return float((net(x).argmax(1) == y).float().mean())


def load_digits_cnn(path) -> DigitsCNN:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    net = DigitsCNN(ck["size"], ck["num_classes"], ck.get("channels", 1))
    net.load_state_dict(ck["state_dict"])
    return net.eval()
