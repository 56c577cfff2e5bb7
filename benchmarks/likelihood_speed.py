"""Probability-flow likelihood: sgm-bench's path against score_sde's, on the same trained digits model, the same
dequantized test digits, the same Hutchinson probe and rtol = atol = 1e-5 .

The baseline is score_sde_pytorch's published algorithm (likelihood.py, written here from it): scipy's solve_ivp on
flattened NumPy arrays, converting at every evaluation, the drift from one network call and the divergence from a
second one with a reverse-mode pass. sgm-bench's path calls the network once per evaluation and takes the drift and
the divergence from the same graph (one reverse pass), keeping the state as tensors, on the model as sgm-bench loads it for evaluation (frozen, as EDM's
`requires_grad_(False)`: no graph is recorded through the weights). Timings alternate between the
paths and report the median of the repeats; the ratio is within one run. (A forward-mode torch.func.jvp estimator
was tried: 0.60x on this CPU, and its different rounding changed the adaptive solver's NFE; not kept.)

    python benchmarks/likelihood_speed.py [--model work/default/models/vp-digits/model.pt] > results/benchmarks/likelihood_speed.md
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import numpy as np
import torch

from sgm_bench.spec import load_dataset
from sgm_bench.likelihood import bits_per_dim, ode_nll
from sgm_bench.runtime import configure
from sgm_bench.samplers.base import NoiseSource
from sgm_bench.samplers.ode import pf_drift
from sgm_bench.train import load_model


def score_sde_bpd(score_fn, sde, data: torch.Tensor, probe: torch.Tensor, eps=1e-5, rtol=1e-5, atol=1e-5):
    """score_sde's likelihood.py: (nats per example, NFE)."""
    from scipy import integrate

    shape = data.shape
    drift_fn = pf_drift(score_fn, sde)

    def div_fn(x, t, noise):
        with torch.enable_grad():
            x.requires_grad_(True)
            fn_eps = torch.sum(drift_fn(t, x) * noise)
            grad = torch.autograd.grad(fn_eps, x)[0]
        x.requires_grad_(False)
        return torch.sum(grad * noise, dim=tuple(range(1, len(x.shape))))

    def ode_func(t, x):
        sample = torch.from_numpy(x[: -shape[0]].reshape(shape)).to(data.device).type(torch.float32)
        vec_t = torch.ones(sample.shape[0], device=sample.device) * t
        with torch.no_grad():
            drift = drift_fn(vec_t, sample).detach().cpu().numpy().reshape((-1,))
        logp_grad = div_fn(sample, vec_t, probe).detach().cpu().numpy().reshape((-1,))
        return np.concatenate([drift, logp_grad], axis=0)

    init = np.concatenate([data.detach().cpu().numpy().reshape((-1,)), np.zeros((shape[0],))], axis=0)
    sol = integrate.solve_ivp(ode_func, (eps, sde.T), init, rtol=rtol, atol=atol, method="RK45")
    zp = sol.y[:, -1]
    z = torch.from_numpy(zp[: -shape[0]].reshape(shape)).to(data.device).type(torch.float32)
    delta_logp = torch.from_numpy(zp[-shape[0]:].reshape((shape[0],))).to(data.device).type(torch.float32)
    return -(sde.prior_logp(z) + delta_logp), sol.nfev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="work/default/models/vp-digits/model.pt")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    configure(a.threads)  # as a workflow job runs
    model = load_model(a.model)
    theirs = copy.deepcopy(model).requires_grad_(True)  # score_sde restores a trainable model: weights require grad
    data = load_dataset({"name": "digits"})
    img = data.images
    y = img.dequantize(img.test[: a.n], torch.Generator().manual_seed(0))
    probe = NoiseSource(0, range(len(y)), y.shape[1:]).randn().sign()  # ode_nll's probe for seed 0
    to_bpd = lambda nll: float(bits_per_dim(nll.double(), y[0].numel(), img.levels, img.scale).mean())  # noqa: E731

    def ours():
        r = ode_nll(model.score_fn(), model.sde, y, seed=0)
        return r.nll, r.nfe

    paths = {"score_sde (scipy RK45, two network calls per evaluation)": lambda: score_sde_bpd(theirs.score_fn(), model.sde, y, probe),
             "sgm-bench (ode_nll: one call, one reverse pass)": ours}
    seconds = {k: [] for k in paths}
    out = {}
    for _ in range(a.repeats):
        for k, fn in paths.items():
            t = time.perf_counter()
            out[k] = fn()
            seconds[k].append(time.perf_counter() - t)
    base = next(iter(paths))
    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(f"# Probability-flow likelihood: sgm-bench against score_sde's path\n\n{a.model} ({model.family.name}), "
          f"{a.n} dequantized test digits, Rademacher probe (seed 0), RK45 rtol = atol = 1e-5, eps = 1e-5; CPU "
          f"{platform.machine()}, {platform.processor() or ''} {torch.get_num_threads()} torch thread(s), torch "
          f"{torch.__version__}; median of {a.repeats} alternating repeats.\n")
    print("| path | NFE | seconds (median) | speed-up vs score_sde | bpd | bpd - score_sde's |\n|---|---|---|---|---|---|")
    for k in paths:
        nll, nfe = out[k]
        print(f"| {k} | {nfe} | {med[k]:.2f} | {med[base] / med[k]:.2f}x | {to_bpd(nll):.6f} | "
              f"{to_bpd(nll) - to_bpd(out[base][0]):.1e} |")


if __name__ == "__main__":
    main()
