"""Image datasets: sklearn digits (embedded default), MNIST and CIFAR-10 via torchvision; each records its K levels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataMissingError
from ..registry import Registry

IMAGES = Registry("image dataset")


@dataclass
class ImageData:
    """Integer images x in {0..K-1}, shape [N, C, H, W] (uint8/int), split into train and test, with labels.

    The model sees y = scale * v + offset with v = (x + 1/2) / K when training, the centre of the cell that the
    likelihood's dequantization v = (x + u) / K, u ~ U[0, 1), fills (DESIGN.md, bits/dim): the density the ODE
    measures is the one the model was trained on. scale 2 and offset -1 give the range [-1, 1].
    """

    name: str
    train: torch.Tensor
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor
    levels: int
    scale: float = 2.0
    offset: float = -1.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.train_labels.max()) + 1

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Integer levels to the centres of their dequantization cells in the model's range (training convention)."""
        return self.scale * (x.float() + 0.5) / self.levels + self.offset

    def to_levels(self, y: torch.Tensor) -> torch.Tensor:
        """The model's range back to continuous levels in [0, K - 1] (inverse of to_model, clamped)."""
        return ((y - self.offset) / self.scale * self.levels - 0.5).clamp(0, self.levels - 1)

    def dequantize(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform dequantization y = s (x + u) / K + c, u ~ U[0, 1)^D."""
        u = torch.rand(x.shape, generator=generator)
        return self.scale * (x.float() + u) / self.levels + self.offset

    def to_uint8(self, y: torch.Tensor) -> torch.Tensor:
        """Model range back to 0..255 uint8 images with 3 channels (grey repeated), for torch-fidelity. Non-finite
        values are refused: they would become 0 silently (count and drop them first: metrics.toy.finite_only)."""
        if not torch.isfinite(y).all():
            bad = int((~torch.isfinite(y.flatten(1)).all(1)).sum())
            raise ValueError(f"{bad} of {len(y)} images have non-finite pixels: drop them first (metrics.toy.finite_only)")
        img = torch.round(self.to_levels(y) * (255 / (self.levels - 1))).to(torch.uint8)
        return img.repeat(1, 3 // img.shape[1], 1, 1) if img.shape[1] == 1 else img


def _split(x, y, n_test: int, seed: int):
    """A fixed seeded permutation: the last n_test examples are the test split."""
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]


@IMAGES.register("digits")
def load_digits(root: str | None = None, download: bool = False, seed: int = 0, n_test: int = 297) -> ImageData:
    """scikit-learn's 1797 8x8 digits, 17 grey levels (0..16); ships inside scikit-learn."""
    pixels, target = digits_arrays()
    x = torch.as_tensor(pixels, dtype=torch.uint8).reshape(-1, 1, 8, 8)
    y = torch.as_tensor(target, dtype=torch.long)
    return ImageData("digits", *_split(x, y, n_test, seed), levels=17)


def digits_arrays():
    """(pixels [1797, 64], labels) read from the CSV that scikit-learn ships, as its `load_digits` reads it, without
    importing scikit-learn (2.6 s of every job's start-up)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError("the digits dataset ships with scikit-learn, which is not installed: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


@IMAGES.register("synthetic")
def load_synthetic(root=None, download: bool = False, seed: int = 0, n: int = 600, size: int = 8,
                   channels: int = 1) -> ImageData:
    """Tiny generated images (grey, or RGB with channels: 3) for smoke runs: 10 classes, each a fixed random template
    plus noise, 256 levels."""
    g = torch.Generator().manual_seed(1234)
    templates = torch.rand(10, channels, size, size, generator=g)
    y = torch.arange(n) % 10
    x = (templates[y] * 0.8 + 0.2 * torch.rand(n, channels, size, size, generator=g)) * 255
    return ImageData("synthetic", *_split(x.round().to(torch.uint8), y, n // 5, seed), levels=256)


def _torchvision(cls, name: str, root, download: bool, how: str, channels_last: bool) -> ImageData:
    if root is None:
        raise DataMissingError(f"{name} needs a data root: set data.root in the configuration ({how})")
    try:
        tr, te = (cls(str(root), train=s, download=download) for s in (True, False))
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise DataMissingError(
            f"{name} not found under {Path(root).resolve()}: {how}, or set data.download: true where the network allows"
        ) from e

    def arrays(ds):
        x = torch.as_tensor(np.asarray(ds.data))
        x = x.permute(0, 3, 1, 2) if channels_last else x[:, None]
        return x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)

    return ImageData(name, *arrays(tr), *arrays(te), levels=256)


@IMAGES.register("mnist")
def load_mnist(root=None, download: bool = False, seed: int = 0) -> ImageData:
    """MNIST 28x28, 256 levels, the official train/test split."""
    from torchvision.datasets import MNIST

    return _torchvision(MNIST, "MNIST", root, download, "torchvision expects ROOT/MNIST/raw/*-ubyte(.gz)", False)


@IMAGES.register("cifar10")
def load_cifar10(root=None, download: bool = False, seed: int = 0) -> ImageData:
    """CIFAR-10 32x32x3, 256 levels, the official train/test split."""
    from torchvision.datasets import CIFAR10

    how = "extract cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html to ROOT/cifar-10-batches-py"
    return _torchvision(CIFAR10, "CIFAR-10", root, download, how, True)
