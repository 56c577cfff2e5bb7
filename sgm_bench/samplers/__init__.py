"""Samplers as small functions over (score_fn, process, initial noise, noise stream), each registered where it is
defined (samplers.base.sampler); `sample` runs any of them. The modules load in the order their samplers are listed."""
from .langevin import annealed_langevin, langevin  # noqa: I001  (registration order: the order samplers are listed)
from .ancestral import ancestral, ddim
from .pc import corrector_only, euler_maruyama, pc, reverse_diffusion
from .ode import ODE_SOLVERS, ode, ode_flow
from .sigma import dpm_solver, edm_heun
from .base import SAMPLERS, NoiseSource, SampleResult, sampler
from .registry import applicable, caveat, check_applicable, names, sample, sample_batched

__all__ = ["sample", "sample_batched", "names", "applicable", "caveat", "check_applicable", "SAMPLERS", "sampler",
           "SampleResult", "NoiseSource", "ODE_SOLVERS", "ode_flow", "langevin", "annealed_langevin", "ancestral", "ddim",
           "euler_maruyama", "reverse_diffusion", "pc", "corrector_only", "ode", "edm_heun", "dpm_solver"]
