"""Asking the samplers (registered where they are defined, samplers.base.SAMPLERS): which fit a family and why not,
their options checked, and the one `sample` entry point."""
from __future__ import annotations

import inspect

import torch

from .. import distributed
from ..checks import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, check_numbers, check_ranges
from ..errors import ConfigError
from ..models import FAMILIES
from .base import SAMPLERS, CountingScore, NoiseSource, SampleResult, SamplerSpec, Timer
from .pc import best_snr, reverse_diffusion_denoise

# Why a sampler does not fit a family, where the reason is more than "a different process"
NOT_APPLICABLE = {
    ("ncsn", "euler_maruyama"): "NCSN's network is labelled by a noise-level index: its score exists at its L levels "
    "only, and a continuous-time solver would integrate a piecewise-constant score (more steps converge to a different "
    "distribution); ancestral, reverse_diffusion, pc and annealed_langevin walk its levels",
    ("ncsn", "ode"): "NCSN's network is labelled by a noise-level index: its score exists at its L levels only, and an "
    "ODE solver would integrate a piecewise-constant score (more steps converge to a different distribution); "
    "edm_heun integrates the probability-flow ODE between the model's own levels (EDM's round_sigma)",
}
SAMPLING_EPS = {"ve": 1e-5, "vp": 1e-3, "subvp": 1e-3}


def names() -> list[str]:
    """Every sampler name."""
    return SAMPLERS.names()


def applicable(family: str) -> list[str]:
    """The samplers that fit a model family (score, ncsn, ddpm, ve, vp, subvp)."""
    FAMILIES[family]
    return [n for n, s in SAMPLERS.items() if family in s.families]


def why_not(name: str, family: str) -> str | None:
    """Why sampler `name` does not fit `family` (None when it does)."""
    if family in SAMPLERS[name].families:
        return None
    return NOT_APPLICABLE.get((family, name), f"sampler {name!r} needs a {' or '.join(sorted(SAMPLERS[name].families))} model")


def check_applicable(name: str, family: str | None = None, sde=None) -> SamplerSpec:
    """The spec of `name`, or a ConfigError listing the valid choices for this family or process."""
    spec = SAMPLERS[name]
    kind = getattr(sde, "kind", None)
    family = family or getattr(sde, "family", None)
    if family is not None and family not in spec.families:
        raise ConfigError(f"sampler {name!r} does not apply to family {family!r}: {why_not(name, family)}; "
                          f"applicable: {', '.join(applicable(family))}")
    if family is None and kind not in spec.kinds:
        valid = sorted(n for n, s in SAMPLERS.items() if kind in s.kinds)
        raise ConfigError(f"sampler {name!r} does not apply to a {kind or 'single-noise-level'} model; applicable: {', '.join(valid)}")
    return spec


# Where every numeric sampler option must lie (one table: the options mean the same in every sampler that takes them)
OPTION_RANGES = {"snr": POSITIVE, "eta": NON_NEGATIVE, "eps": FRACTION, "rtol": POSITIVE, "atol": POSITIVE,
                 "n_steps_each": COUNT, "step_lr": POSITIVE, "rho": POSITIVE, "S_churn": NON_NEGATIVE,
                 "S_noise": NON_NEGATIVE, "S_tmin": NON_NEGATIVE, "S_tmax": NON_NEGATIVE, "sigma_min": POSITIVE,
                 "sigma_max": POSITIVE, "steps": COUNT}


def check_options(name: str, options: dict) -> None:
    """A sampler's options: names it takes, numbers where its defaults are numbers, inside OPTION_RANGES (checked when
    the workflow plans its jobs and again when sampling starts)."""
    spec = SAMPLERS[name]
    fn_args = spec.fn.__code__.co_varnames[: spec.fn.__code__.co_argcount + spec.fn.__code__.co_kwonlyargcount]
    unknown = set(options) - set(fn_args) - {"denoise"}
    if unknown:
        raise ConfigError(f"sampler {name!r} has no option(s) {sorted(unknown)}; valid: "
                          f"{', '.join(a for a in fn_args[4:] if a != 'progress')}, denoise")
    fn_defaults = {k: p.default for k, p in inspect.signature(spec.fn).parameters.items()}
    check_numbers(options, {**fn_defaults, **spec.defaults}, f"sampler {name!r}", allow={"eta": ("sigma_hat",)})
    check_ranges(options, OPTION_RANGES, f"sampler {name!r}", allow={"eta": ("sigma_hat",)})
    if options.get("denoise") and not spec.denoise:
        raise ConfigError(f"sampler {name!r} already ends noise-free; denoise=True applies to the SDE samplers only")


def resolved_options(name: str, options: dict, kind: str) -> dict:
    """A job's options with the process-dependent defaults filled in (the Langevin snr: Score SDE Table 5's best for
    the process and predictor), so that every record names the value used."""
    spec = SAMPLERS[name]
    if "snr" not in inspect.signature(spec.fn).parameters or options.get("snr") is not None:
        return options
    return {**options, "snr": best_snr(kind, options.get("predictor", spec.defaults.get("predictor", "none")))}


def last_step_gain(sde, steps: int, eps: float) -> float:
    """What Euler-Maruyama's last step (t = eps, dt = -T / S on the uniform grid) multiplies the residual noise x - m x0
    by, for a score near -(x - m x0) / s(t)^2: 1 - g(eps)^2 |dt| / s(eps)^2. Below -1 the step amplifies the noise
    (VP at eps = 1e-3: -42.6 at 25 steps, -0.09 at 1 000); score_sde's 1 000 steps are where it nearly vanishes."""
    t = torch.full((1,), float(eps), dtype=torch.float64)
    _, g = sde.sde(torch.zeros(1, 1, dtype=torch.float64), t)
    return float(1 - g[0] ** 2 * (sde.T / steps) / sde.std(t)[0] ** 2)


def caveat(name: str, sde, steps: int | None, options: dict) -> str | None:
    """Why a row's quality says more about the discretization than the solver, printed beside it (CAVEATS explains
    it under the table): Euler-Maruyama whose last step amplifies the residual noise (|gain| > 1)."""
    predictor = options.get("predictor", SAMPLERS[name].defaults.get("predictor")) if name == "pc" else name
    if predictor != "euler_maruyama" or sde is None:
        return None
    steps = steps or sde.N  # no step count: the process's own N
    eps = options.get("eps", SAMPLING_EPS.get(sde.kind, 1e-3))
    gain = last_step_gain(sde, int(steps), float(eps))
    if abs(gain) <= 1:
        return None
    return f"last step scales residual noise by {gain:.3g}"


CAVEATS = ("`note`: Euler-Maruyama's last step (t = eps, dt = -T / steps on the uniform grid) multiplies the residual "
           "noise x - m x0 by 1 - g^2 |dt| / s^2; below -1 it amplifies it (VP: under ~545 steps; sub-VP: under ~1 090), "
           "an artefact of the grid at that step count rather than of the solver's order")


def sample(name: str, score_fn, sde, shape, *, steps: int | None = None, seed: int = 0, device="cpu",
           family: str | None = None, first_index: int = 0, eps: float | None = None, denoise: bool = False,
           progress: bool = False, **options) -> SampleResult:
    """Draw shape[0] samples with sampler `name`; sample k (counted from first_index) depends only on (seed, k)."""
    spec = check_applicable(name, family, sde)
    check_options(name, options)
    if denoise and not spec.denoise:
        raise ConfigError(f"sampler {name!r} already ends noise-free; denoise=True applies to the SDE samplers only")
    if steps is not None and steps <= 0:
        raise ConfigError(f"steps must be positive, got {steps}")
    eps = SAMPLING_EPS.get(getattr(sde, "kind", None), 1e-3) if eps is None else eps
    steps = inspect.signature(spec.fn).parameters["steps"].default if steps is None else steps  # its paper's count
    counted = CountingScore(score_fn)
    noise = NoiseSource(seed, range(first_index, first_index + shape[0]), shape[1:], device)
    with torch.no_grad(), Timer(device) as timer:
        z = noise.randn()
        out = spec.fn(counted, sde, z, noise, steps=steps, eps=eps, progress=progress, **{**spec.defaults, **options})
        x, info = out if isinstance(out, tuple) else (out, {})
        if denoise:
            x = reverse_diffusion_denoise(counted, sde, x, eps)
    return SampleResult(x, counted.nfe, timer.seconds, info)


def sample_batched(name: str, score_fn, sde, n: int, shape, *, batch_size: int = 500, seed: int = 0,
                   **kw) -> SampleResult:
    """n samples in batches; sample k still depends only on (seed, k). NFE and seconds are summed over batches.

    Under a process group, rank r draws batches r, r + world, ... and every rank gets all n samples: the batches are
    those of one process, so even an adaptive solver (whose steps depend on the whole batch) gives the same samples.
    """
    r = distributed.ranks()
    mine = []
    for b, start in enumerate(range(0, n, batch_size)):
        if b % r.world == r.rank:
            out = sample(name, score_fn, sde, (min(batch_size, n - start), *shape), seed=seed, first_index=start, **kw)
            mine.append((b, out.x.cpu(), out.nfe, out.seconds, out.info))
    done = sorted((part for rank_parts in distributed.gather(mine) for part in rank_parts), key=lambda p: p[0])
    nfe, seconds = sum(p[2] for p in done), sum(p[3] for p in done)
    return SampleResult(torch.cat([p[1] for p in done]), nfe, seconds,
                        {**done[-1][4], "batches": len(done), "nfe_per_batch": nfe / len(done)})
