"""How one sampler's evaluation time grows with the sample count and the step count, so that a GPU run can be
budgeted from a CPU one. The digits U-Net of the default configuration (weights do not change the cost), VP
Euler-Maruyama, in one process; prints a Markdown table with the machine named and the log-log slopes.

    python benchmarks/cost_growth.py > results/benchmarks/cost_growth.md
"""
from __future__ import annotations

import math
import platform
import sys

import torch

from sgm_bench import samplers
from sgm_bench.models import build_model
from sgm_bench.runtime import configure

UNET = {"name": "unet", "ch": 16, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": []}


def slope(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def timed(model, n: int, steps: int, batch: int) -> tuple[float, int]:
    r = samplers.sample_batched("euler_maruyama", model.score_fn(), model.sde, n, model.shape, steps=steps,
                                batch_size=batch, seed=0)
    return r.seconds, r.nfe


def main(threads: int = 1, batch: int = 2000) -> None:
    configure(threads)  # as a workflow job runs
    model = build_model("vp", (1, 8, 8), UNET).eval()
    timed(model, 64, 5, batch)  # warm-up
    rows = [("n", n, 50, *timed(model, n, 50, batch)) for n in (250, 500, 1000, 2000, 4000)]
    rows += [("steps", 250, s, *timed(model, 250, s, batch)) for s in (50, 100, 200, 400)]
    print(f"# Cost growth of one sampler\n\nVP Euler-Maruyama on the default digits U-Net (164 k parameters, 8x8), "
          f"batch up to {batch}, {threads} torch thread(s); CPU {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; one process, seconds synchronized inside `samplers.sample`.\n")
    print("| grown | n | steps | seconds | NFE (all batches) | microseconds per sample per step |\n|---|---|---|---|---|---|")
    for kind, n, s, sec, nfe in rows:
        print(f"| {kind} | {n} | {s} | {sec:.2f} | {nfe} | {1e6 * sec / (n * s):.1f} |")
    n_rows, s_rows = [r for r in rows if r[0] == "n"], [r for r in rows if r[0] == "steps"]
    print(f"\nlog-log slope of seconds against n (50 steps): {slope([r[1] for r in n_rows], [r[3] for r in n_rows]):.2f}; "
          f"against steps (n = 250): {slope([r[2] for r in s_rows], [r[3] for r in s_rows]):.2f} (1.00 = linear). "
          "A CPU run's seconds per sample per step times a GPU's measured speed-up on one forward pass budgets the "
          "GPU run.")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
