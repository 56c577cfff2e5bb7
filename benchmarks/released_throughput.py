"""Images per second of every applicable sampler at about 35 network evaluations, on full-size stand-ins of the released
CIFAR-10 models: random weights written in score_sde's checkpoint format (DataParallel keys, EMA shadow_params) or as
a diffusers folder, imported by sgm_bench.released exactly as a downloaded checkpoint is. What a GPU run of
config/paper_released.yaml costs is these rates times the samples it draws. Prints a Markdown table naming the
machine; `--out` also writes it.
    python benchmarks/released_throughput.py --device cuda --batch 500 --out results/benchmarks/released_throughput_cuda.md
    python benchmarks/released_throughput.py --models vp/cifar10_ddpmpp_continuous --samplers euler_maruyama --batch 4
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from sgm_bench import load_model, samplers
from sgm_bench.spec import model_from_spec
from sgm_bench.released import diffusers_spec, import_checkpoint, score_sde_config, score_sde_configs, score_sde_spec
from sgm_bench.samplers.base import sync

# steps giving about 35 evaluations (EDM's Heun at 18 steps: 35); the adaptive ODE at a loose tolerance
STEPS = {"pc": 17, "corrector_only": 17, "edm_heun": 18, "ode": None}
SKIP = {"annealed_langevin", "langevin"}  # 100 Langevin steps a level: no setting near 35 evaluations
OPTIONS = {"ode": {"rtol": 1e-3, "atol": 1e-3}}


def score_sde_standin(folder: str, root: Path) -> Path:
    """A random-weight checkpoint of a released folder's network in score_sde's own format."""
    model = model_from_spec(score_sde_spec(score_sde_config(folder)))
    state = {"module." + k.removeprefix("net."): v for k, v in model.state_dict().items()}
    trainable = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    path = root / (folder.replace("/", "_") + ".pth")
    torch.save({"model": state, "ema": {"decay": 0.9999, "num_updates": 0, "shadow_params": trainable}, "optimizer": {},
                "step": 0}, path)
    return path


def ho_standin(root: Path) -> Path:
    """Ho et al.'s U-Net (google/ddpm-cifar10-32's configuration) with random weights, as a diffusers folder."""
    from diffusers import DDPMScheduler

    spec = diffusers_spec({}, {})
    model_from_spec(spec).net.unet.save_pretrained(root / "ddpm")
    DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02).save_pretrained(root / "ddpm")
    return root / "ddpm"


def rate(model, name, batch, device) -> tuple[float, float]:
    """(images per second, NFE) of one batch, after one warm-up batch."""
    kw = {"steps": STEPS.get(name, 35), "device": device, "family": model.family.name, **OPTIONS.get(name, {})}
    shape = (batch, *model.shape)
    samplers.sample(name, model.score_fn(), model.sde, shape, **kw)  # warm-up
    sync(device)
    start = time.perf_counter()
    out = samplers.sample(name, model.score_fn(), model.sde, shape, **kw)
    sync(device)
    return batch / (time.perf_counter() - start), out.nfe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--models", nargs="*", default=[*score_sde_configs(), "ddpm-cifar10-32"])
    ap.add_argument("--samplers", nargs="*", default=None, help="default: every applicable one")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine()
    lines = [f"# Released models, full-size random-weight stand-ins: images / s at ~35 NFE, batch {args.batch}",
             "", f"{machine}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
             f"{time.strftime('%Y-%m-%d')}", "", "| model | parameters | sampler | NFE | images / s |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.models:
            if name == "ddpm-cifar10-32":
                path = import_checkpoint(ho_standin(root), "diffusers", root / "m.pt")
            else:
                path = import_checkpoint(score_sde_standin(name, root), "score_sde", root / "m.pt", name)
            model = load_model(path, device=args.device)
            n_params = sum(p.numel() for p in model.parameters())
            for s in args.samplers or [s for s in samplers.applicable(model.family.name) if s not in SKIP]:
                images, nfe = rate(model, s, args.batch, args.device)
                lines.append(f"| {name} | {n_params / 1e6:.1f} M | {s} | {nfe} | {images:.3g} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
