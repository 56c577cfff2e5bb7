"""What `sgm-bench list` prints, without importing torch (the registries' modules do): families with their applicable
samplers, and the datasets. tests/test_models.py checks it equals the registries, so it cannot drift."""

FAMILY_SAMPLERS = {
    "ddpm": ["ancestral", "ddim", "euler_maruyama", "reverse_diffusion", "pc", "corrector_only", "ode", "edm_heun",
             "dpm_solver"],
    "ncsn": ["annealed_langevin", "ancestral", "reverse_diffusion", "pc", "corrector_only", "edm_heun"],
    "score": ["langevin"],
    "subvp": ["euler_maruyama", "reverse_diffusion", "pc", "corrector_only", "ode"],
    "ve": ["annealed_langevin", "ancestral", "euler_maruyama", "reverse_diffusion", "pc", "corrector_only", "ode",
           "edm_heun"],
    "vp": ["ancestral", "ddim", "euler_maruyama", "reverse_diffusion", "pc", "corrector_only", "ode", "edm_heun",
           "dpm_solver"],
}
DATASETS = ["checkerboard", "mixture1d", "mixture2d", "ring", "smile", "swissroll", "cifar10", "digits", "mnist",
            "synthetic"]
