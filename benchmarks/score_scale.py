"""How well a trained model's score scales at each noise level: |s(x + sigma z)| sigma / |z| (1 for a score that has
learnt the noise part, -z / sigma, near the data) and cos(s, -z), on test digits. Explains degenerate corrector cells:
score_sde's Langevin corrector takes steps 2 (snr |z| / |s|)^2, so a score k times too small at low noise makes the
steps k^2 times too large.

    python benchmarks/score_scale.py [--model work/default/models/smld-digits/model.pt] > results/benchmarks/score_scale.md
"""
from __future__ import annotations

import argparse
import platform

import torch

from sgm_bench.spec import load_dataset
from sgm_bench.runtime import configure
from sgm_bench.train import load_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="work/default/models/smld-digits/model.pt")
    ap.add_argument("--levels", type=int, nargs="+", default=[0, 5, 20, 100, 300, 600, 999])
    args = ap.parse_args()
    configure(1)  # as a workflow job runs
    model = load_model(args.model)
    x0 = load_dataset({"name": "digits"}).test[:64]
    sde, g = model.sde, torch.Generator().manual_seed(0)
    print(f"# Score scale of `{args.model}` ({platform.machine()}, torch {torch.__version__})\n")
    print("64 test digits, one draw of z per level. Ideal near the data: |s| sigma / |z| = 1, cos = 1.\n")
    print("| level i | sigma_i | abs(s) sigma / abs(z) | cos(s, -z) | corrector step / ideal |\n|---:|---:|---:|---:|---:|")
    for i in args.levels:
        z = torch.randn(x0.shape, generator=g)
        sigma = sde.discrete_sigmas[i]
        with torch.no_grad():
            s = model.score(x0 + sigma * z, torch.full((len(x0),), i / (sde.N - 1)))
        scale = float((s.flatten(1).norm(dim=1) * sigma / z.flatten(1).norm(dim=1)).mean())
        cos = float(torch.nn.functional.cosine_similarity(s.flatten(1), -z.flatten(1)).mean())
        print(f"| {i} | {float(sigma):.4g} | {scale:.3f} | {cos:.3f} | {1 / scale ** 2:.0f}x |")


if __name__ == "__main__":
    main()
