"""Samplers as small functions over (score_fn, process, initial noise, noise stream); `sample` runs any of them."""
from .ancestral import ancestral, ddim
from .base import NoiseSource, SampleResult
from .langevin import annealed_langevin, langevin
from .ode import ODE_SOLVERS, ode, ode_flow
from .pc import corrector_only, pc
from .registry import SAMPLERS, applicable, caveat, check_applicable, names, sample, sample_batched
from .sigma import dpm_solver, edm_heun

__all__ = ["sample", "sample_batched", "names", "applicable", "caveat", "check_applicable", "SAMPLERS", "SampleResult", "NoiseSource",
           "ODE_SOLVERS", "ode_flow", "langevin", "annealed_langevin", "ancestral", "ddim", "pc", "corrector_only",
           "ode", "edm_heun", "dpm_solver"]
