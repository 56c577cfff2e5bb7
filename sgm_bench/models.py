"""The model families: which process, parameterization, noise label, loss and default sampler each one uses."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .checks import COUNT, Range, check_keys, check_numbers, check_ranges, parameters
from .errors import ConfigError
from .nets import NETS
from .params import NoiseLevel, to_score
from .registry import Registry
from .sde import SDES, SDE

FAMILIES = Registry("model family")


@dataclass(frozen=True)
class Family:
    """A model family of the founding papers, described by data, not by branches in the code."""

    name: str
    sde: str | None  # process name in SDES (None: the single-noise-level `score` family)
    discrete: bool  # trained on the N-step chain (NCSN, DDPM) rather than continuous t
    loss: str  # name in losses.LOSSES
    param: str  # default network parameterization (params.py)
    embedding: str  # default noise embedding of the network
    default_sampler: str
    sde_defaults: dict = field(default_factory=dict)
    loss_defaults: dict = field(default_factory=dict)
    lr: float = 2e-4


for fam in [
    Family("score", None, False, "score_matching", "score", "none", "langevin",
           loss_defaults={"objective": "dsm", "noise_std": 0.1}),
    Family("ncsn", "ve", True, "smld", "score", "index", "annealed_langevin",
           dict(sigma_min=0.01, sigma_max=1.0, N=10), lr=1e-3),
    Family("ddpm", "vp", True, "ddpm", "eps", "sinusoidal", "ancestral", dict(beta_min=0.1, beta_max=20.0, N=1000),
           {"objective": "simple", "variance": "beta"}),
    Family("ve", "ve", False, "dsm", "scaled_score", "fourier", "pc", dict(sigma_min=0.01, sigma_max=50.0, N=1000)),
    Family("vp", "vp", False, "dsm", "eps", "sinusoidal", "euler_maruyama", dict(beta_min=0.1, beta_max=20.0, N=1000)),
    Family("subvp", "subvp", False, "dsm", "eps", "sinusoidal", "euler_maruyama", dict(beta_min=0.1, beta_max=20.0, N=1000)),
]:
    FAMILIES.add(fam.name, fam)


def build_sde(family: str, **overrides) -> SDE | None:
    """The family's process with its paper defaults, overridden by `overrides`."""
    fam = FAMILIES[family]
    if fam.sde is None:
        return None
    check_keys(overrides, parameters(SDES[fam.sde]), f"sde of family {family!r}")
    check_numbers(overrides, fam.sde_defaults, f"sde of family {family!r}")
    check_ranges(overrides, {"N": COUNT}, f"sde of family {family!r}")  # 2.7 levels would train as 2
    proc = SDES[fam.sde](**{**fam.sde_defaults, **overrides})
    proc.family, proc.discrete = fam.name, fam.discrete  # samplers ask the process, never the family's name
    return proc


class ScoreModel(nn.Module):
    """Wraps a network as score_fn(x, t) in the process's continuous time; discrete models map t to the step i."""

    def __init__(self, family: str, net: nn.Module, sde: SDE | None, param: str | None = None, noise_std: float = 0.0):
        super().__init__()
        self.family, self.net, self.sde = FAMILIES[family], net, sde
        self.param = param or self.family.param
        self.noise_std = noise_std
        self.shape = tuple(net.shape) if hasattr(net, "shape") else None
        self.labels = getattr(net, "label_convention", "sgm_bench")

    def label(self, t: torch.Tensor, continuous: bool = False) -> torch.Tensor:
        """The network's noise input: a discrete chain's integer step i = floor(t (N - 1)) (NCSN; DDPM as Ho et al.,
        DDIM and diffusers feed it), or with `continuous` (the continuous-time solvers: probability-flow ODE,
        Euler-Maruyama, the ODE likelihood) score_sde's t (N - 1) for a discrete VP chain's embedding of a scalar, so
        the ODE integrates a continuous drift instead of a piecewise-constant one; log sigma(t) (VE), or t times the
        embedding's time scale (VP, sub-VP: 999 t for sinusoidal as DDPM++, t for Fourier features); score_sde's
        networks get its own."""
        if self.sde is None:
            return torch.zeros_like(t)
        if self.labels == "score_sde":
            return self._score_sde_label(t)
        if self.family.discrete:
            scalar = self.sde.kind == "vp" and not isinstance(getattr(getattr(self.net, "cond", None), "noise", None),
                                                              nn.Embedding)
            return t * (self.sde.N - 1) / self.sde.T if continuous and scalar else self.sde.index(t).float()
        if self.sde.kind == "ve":
            return torch.log(self.sde.std(t))
        return t * getattr(getattr(getattr(self.net, "cond", None), "noise", None), "time_scale", 999.0)

    def _score_sde_label(self, t: torch.Tensor) -> torch.Tensor:
        """score_sde's `get_score_fn` labels: VE sigma(t), or the step counted from sigma_max (N - 1 - i); VP and
        sub-VP 999 t, or t (N - 1) for a discrete VP model (fractional off the grid, as its ODE sampler feeds it)."""
        sde = self.sde
        if sde.kind == "ve":
            return (sde.N - 1 - sde.index(t)).float() if self.family.discrete else sde.std(t)
        return t * (sde.N - 1) if self.family.discrete else t * 999

    def noise_level(self, t: torch.Tensor) -> NoiseLevel:
        """m_t, s_t at t; the discrete chains use their own sigma_i or alpha-bar_i, not the continuous marginals."""
        if self.sde is None:
            return NoiseLevel(torch.ones_like(t), torch.full_like(t, self.noise_std))
        if not self.family.discrete:
            return NoiseLevel(self.sde.mean_coeff(t), self.sde.std(t))
        i = self.sde.index(t)
        if self.sde.kind == "ve":
            return NoiseLevel(torch.ones_like(t), self.sde.discrete_sigmas.to(t.device)[i])
        s = self.sde.schedule
        ab = s.alphas_cumprod.to(t.device)[i]
        return NoiseLevel(ab.sqrt(), (1 - ab).sqrt(), s.posterior_mean_coef1.to(t.device)[i],
                          s.posterior_mean_coef2.to(t.device)[i])

    def with_net(self, net: nn.Module) -> "ScoreModel":
        """The same model over another module holding the same weights (a DistributedDataParallel wrapper)."""
        other = copy.copy(self)
        other._modules = {**self._modules, "net": net}
        return other

    def forward(self, x, t, y=None, continuous: bool = False):
        """Raw network output under `self.param`."""
        return self.net(x, self.label(t, continuous), y)

    def score(self, x, t, y=None, continuous: bool = False):
        """grad_x log p_t(x [| y])."""
        return to_score(self.param, self(x, t, y, continuous), x, self.noise_level(t))

    def score_fn(self, y=None, continuous: bool = False):
        """score_fn(x, t) for the samplers, optionally conditioned on labels y; `continuous` for the continuous-time
        solvers (a discrete DDPM's network then sees score_sde's t (N - 1), see `label`)."""
        return lambda x, t: self.score(x, t, y, continuous)


# Where the networks' size options must lie (a zero-width network trained and was benchmarked as if valid)
NET_RANGES = {"hidden": COUNT, "ch": COUNT, "embed_dim": COUNT, "num_res_blocks": COUNT, "nf": COUNT,
              "depth": Range(0, integer=True), "dropout": Range(0, 1, hi_open=True)}


def check_net(net: dict, what: str = "net") -> None:
    """A network entry's size options, each inside NET_RANGES (checked when the workflow plans its jobs)."""
    check_ranges({k: v for k, v in (net or {}).items() if k != "name"}, NET_RANGES, what)


def build_model(family: str, shape, net: dict | None = None, sde: dict | None = None, param: str | None = None,
                num_classes: int = 0, noise_std: float = 0.0) -> ScoreModel:
    """A ScoreModel from configuration dictionaries (unknown names list the valid ones)."""
    fam = FAMILIES[family]
    net = dict(net or {"name": "mlp"})
    check_net(net)
    proc = build_sde(family, **(sde or {}))
    kwargs = {k: v for k, v in net.items() if k != "name"}
    make = NETS[net.get("name", "mlp")]
    if getattr(make, "label_convention", None) == "score_sde":  # score_sde: Fourier features for continuous VE only
        kwargs.setdefault("embedding", "fourier" if fam.sde == "ve" and not fam.discrete else "positional")
    kwargs.setdefault("embedding", fam.embedding)
    if fam.discrete:
        kwargs.setdefault("num_labels", proc.N)
    if kwargs["embedding"] == "index" and not fam.discrete:
        raise ConfigError(f"family {family!r} is continuous in time: an 'index' embedding needs a discrete family")
    if kwargs["embedding"] == "fourier" and fam.discrete:
        raise ConfigError(f"family {family!r} is discrete: Fourier features take a continuous noise level; use "
                          "'positional' (score_sde) or 'index'")
    try:
        network = make(shape, num_classes=num_classes, **kwargs)
    except TypeError as e:
        raise ConfigError(f"bad network options for {net.get('name')!r}: {e}") from e
    return ScoreModel(family, network, proc, param, noise_std)
