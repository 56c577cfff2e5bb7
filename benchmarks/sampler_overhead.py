"""Sampler overhead: total sampling time / (NFE x one network forward pass), per sampler, for a medium U-Net.

The forward-pass time is measured inside the same run (every score call timed, synchronized), so slow drifts of a
shared machine's speed cancel out; the separately measured median forward pass is printed beside it. A ratio near 1
means the sampler adds nothing but network evaluations (no host syncs, batched noise, no NumPy copies
on the device path). Prints a Markdown table naming the machine; `--out` also writes it.
    python benchmarks/sampler_overhead.py [--device cuda] [--batch 256] [--out results/benchmarks/sampler_overhead_cpu.md]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from sgm_bench import samplers
from sgm_bench.models import build_model
from sgm_bench.samplers.base import sync

CASES = [("ddpm", "ancestral", 30, {}), ("ddpm", "ddim", 30, {}), ("vp", "euler_maruyama", 30, {}),
         ("vp", "reverse_diffusion", 30, {}), ("vp", "pc", 30, {}), ("vp", "corrector_only", 30, {}),
         ("ve", "annealed_langevin", 6, {"n_steps_each": 5}), ("vp", "ode", 30, {"method": "euler"}),
         ("vp", "ode", 15, {"method": "heun"}), ("vp", "ode", None, {"method": "dopri5", "rtol": 1e-2, "atol": 1e-2}),
         ("vp", "ode", None, {"method": "rk45", "rtol": 1e-2, "atol": 1e-2}), ("vp", "edm_heun", 10, {}),
         ("vp", "dpm_solver", 20, {})]


def forward_time(model, x, t, device, repeats=20) -> float:
    with torch.no_grad():
        for _ in range(3):
            model.score(x, t)
        times = []
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            model.score(x, t)
            sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--out")
    a = p.parse_args()
    dev = torch.device(a.device)
    shape = (3, a.size, a.size)
    net = {"name": "unet", "ch": 64, "ch_mult": [1, 2, 2], "num_res_blocks": 2, "attn_resolutions": [a.size // 2]}
    machine = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    lines = [f"Sampler overhead on {machine}; U-Net ch=64 (1,2,2) x2 blocks, batch {a.batch} of {shape}; "
             f"torch {torch.__version__}\n", "| family | sampler | options | NFE | seconds | forward, separate (ms) | forward, in run (ms) | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    models = {}
    for fam, name, steps, opts in CASES:
        if fam not in models:
            torch.manual_seed(0)
            m = build_model(fam, shape, net).to(dev).eval()
            x = torch.randn(a.batch, *shape, device=dev)
            models[fam] = (m, forward_time(m, x, torch.full((a.batch,), 0.5, device=dev), dev))
        m, fwd = models[fam]
        calls = []

        def timed(x, t, score=m.score_fn()):
            sync(dev)
            start = time.perf_counter()
            out = score(x, t)
            sync(dev)
            calls.append(time.perf_counter() - start)
            return out

        r = samplers.sample(name, timed, m.sde, (a.batch, *shape), steps=steps, device=dev, family=fam, **opts)
        in_run = sum(calls) / len(calls)
        lines.append(f"| {fam} | {name} | {opts or ''} | {r.nfe} | {r.seconds:.3f} | {fwd * 1e3:.1f} | "
                     f"{in_run * 1e3:.1f} | {r.seconds / (r.nfe * in_run):.3f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
