"""From a configuration dictionary to data and a model: the one place both the CLI and the workflow use."""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass

import torch

from .data import IMAGES, TOYS, ImageData
from .checks import FRACTION, check_keys, check_numbers, check_ranges, parameters
from .errors import ConfigError
from .models import FAMILIES, ScoreModel, build_model


@dataclass
class Dataset:
    """Training (and test) tensors in the model's range, labels, and what bits/dim needs to know."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    images: ImageData | None = None  # integer images, levels and scaling (None for toy data)
    toy: object | None = None  # the toy distribution (exact density / score where it has them)
    random_flip: bool = False  # training flips images horizontally with probability 1/2

    @property
    def shape(self):
        return tuple(self.train.shape[1:])

    @property
    def num_classes(self) -> int:
        return 0 if self.train_labels is None else int(self.train_labels.max()) + 1


def load_dataset(cfg: dict) -> Dataset:
    """data: {name, n_train, n_test, seed, root, download} for a toy or image dataset name; other keys are the image
    loader's own options (e.g. synthetic's channels)."""
    name = cfg.get("name", "mixture2d")
    check_data_options(cfg)
    seed = int(cfg.get("seed", 0))
    if name in TOYS:
        dist = TOYS[name]()
        g = torch.Generator().manual_seed(seed)
        train = dist.sample(int(cfg.get("n_train", 10000)), g)
        test = dist.sample(int(cfg.get("n_test", 2000)), g)
        return Dataset(name, train, test, toy=dist)
    if name in IMAGES:
        extra = {k: v for k, v in cfg.items() if k not in ("name", "seed", "root", "download") + IMAGE_OPTIONS}
        try:
            img = IMAGES[name](root=cfg.get("root"), download=bool(cfg.get("download", False)), seed=seed, **extra)
        except TypeError as e:
            raise ConfigError(f"dataset {name!r}: bad option(s) {sorted(extra)}: {e}") from e
        lo, hi = data_range(cfg)
        img.scale, img.offset = hi - lo, lo
        return Dataset(name, img.to_model(img.train), img.to_model(img.test), img.train_labels, img.test_labels, img,
                       random_flip=bool(cfg.get("random_flip", False)))
    raise ConfigError(f"unknown dataset {name!r}; valid choices: {', '.join(TOYS.names() + IMAGES.names())}")


TOY_OPTIONS = ("name", "n_train", "n_test", "seed")
IMAGE_OPTIONS = ("range", "random_flip")  # every image dataset's: the model's range, training flips


def data_range(cfg: dict) -> tuple[float, float]:
    """The interval images are scaled to: [-1, 1] unless `range` says otherwise (score_sde's VE models: [0, 1])."""
    r = cfg.get("range", [-1.0, 1.0])
    if not (isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                  for v in r) and r[0] < r[1]):
        raise ConfigError(f"dataset {cfg.get('name')!r}: range must be [low, high] with low < high, got {r!r}")
    return float(r[0]), float(r[1])


def check_data_options(cfg: dict) -> None:
    """Every key of a data mapping is one its loader reads (a misspelled `n_trian` is refused, not ignored)."""
    name = cfg.get("name", "mixture2d")
    if name in TOYS:
        check_keys(cfg, TOY_OPTIONS, f"dataset {name!r}")
    elif name in IMAGES:
        check_keys(cfg, ("name", "seed", "root", "download", *IMAGE_OPTIONS, *parameters(IMAGES[name])),
                   f"dataset {name!r}")
        data_range(cfg)
    else:
        raise ConfigError(f"unknown dataset {name!r}; valid choices: {', '.join(TOYS.names() + IMAGES.names())}")
    check_numbers(cfg, {"n_train": 1, "n_test": 1, "seed": 0, "n": 1, "size": 1, "channels": 1},
                  f"dataset {name!r}")


def model_spec(cfg: dict, data: Dataset) -> dict:
    """The JSON-able recipe that rebuilds the model (stored in every checkpoint)."""
    m = cfg.get("model", {})
    family = m.get("family")
    if family is None:
        raise ConfigError(f"model.family is required; valid choices: {', '.join(FAMILIES.names())}")
    FAMILIES[family]
    if m.get("class_conditional") and not data.num_classes:
        raise ConfigError(f"model.class_conditional is true, but dataset {data.name!r} has no labels: set it to false "
                          "or use a labelled dataset (digits, mnist, cifar10, synthetic)")
    return {
        "family": family,
        "shape": list(data.shape),
        "net": m.get("net", {"name": "mlp"}),
        "sde": m.get("sde", {}),
        "param": m.get("param"),
        "num_classes": data.num_classes if m.get("class_conditional") else 0,
        "noise_std": float(cfg.get("loss", {}).get("noise_std", 0.0)) if family == "score" else 0.0,
    }


def model_from_spec(spec: dict) -> ScoreModel:
    return build_model(spec["family"], tuple(spec["shape"]), spec["net"], spec["sde"], spec["param"],
                       spec["num_classes"], spec["noise_std"])


def loss_options(cfg: dict, data: Dataset) -> dict:
    """The family's loss defaults, the configuration's overrides, and the data levels DDPM's decoder needs."""
    family = FAMILIES[cfg["model"]["family"]]
    check_loss_options(cfg)
    opts = {**family.loss_defaults, **cfg.get("loss", {})}
    if family.loss == "ddpm" and data.images is not None:
        opts.setdefault("levels", data.images.levels)
        opts.setdefault("scale", data.images.scale)
    if family.loss != "score_matching":
        opts.pop("noise_std", None)
    return opts


def check_loss_options(cfg: dict) -> None:
    """The loss mapping names only options its family's loss reads (the loss functions' signatures say which)."""
    from .losses import option_names

    family = FAMILIES[cfg["model"]["family"]]
    valid = option_names(family.loss, cfg.get("loss", {})) + ["noise_std"]  # noise_std: the score family's only
    check_keys(cfg.get("loss", {}), valid, f"loss of family {family.name!r}")
    check_ranges(cfg.get("loss", {}), {"eps": FRACTION}, f"loss of family {family.name!r}")


def config_hash(cfg: dict) -> str:
    """Content hash of the parts of a configuration that change the trained weights."""
    keep = {k: cfg.get(k) for k in ("data", "model", "loss", "train")}
    keep["train"] = {k: v for k, v in (keep["train"] or {}).items()  # lr: a resumed run may lower it (train.py)
                     if k not in ("steps", "ckpt_every", "log_every", "device", "progress", "lr", "processes")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def merged(base: dict, override: dict) -> dict:
    """Deep-merge override into a copy of base."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out
