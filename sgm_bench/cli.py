"""Command line: `sgm-bench train | sample | quick | list`. Errors print one line and exit 2, no traceback."""
from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path

import yaml

from .errors import ConfigError, DivergedError, SgmBenchError


def apply_sets(cfg: dict, sets: list[str]) -> dict:
    """--set a.b.c=value overrides."""
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = yaml.safe_load(value)  # YAML scalars: numbers, booleans, lists
    return cfg


def load_config(path) -> dict:
    """A training configuration (data, model, loss, train): strict YAML, no repeated keys."""
    from .checks import load_yaml

    return load_yaml(path)


def writable(path) -> Path:
    """Refuse an output path that cannot be written before any compute is spent on it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".{path.name}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}; choose another --out") from e
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; name a file")
    return path


def cmd_train(args):
    from .train import train

    cfg = apply_sets(load_config(args.config), args.set)
    stats = train(cfg, args.run_dir)  # --set train.processes=K: K data-parallel processes
    if stats is None:  # a rank other than 0 under torchrun
        return
    print(json.dumps({k: stats[k] for k in ("steps", "resumed_from", "seconds", "steps_per_second", "final_loss")}))


def cmd_sample(args):
    from . import samplers
    from .io import save_json, save_torch
    from .train import load_model

    if args.n <= 0 or args.batch_size <= 0:
        raise ConfigError(f"--n and --batch-size must be positive, got {args.n} and {args.batch_size}")
    writable(args.out)
    if args.grid:
        if Path(args.grid).suffix != ".png":
            raise ConfigError(f"--grid writes a PNG: give a path ending in .png, not {args.grid}")
        writable(args.grid)
    from . import distributed
    from .runtime import pick_device

    pick_device(args.device)
    if args.sampler not in samplers.SAMPLERS:  # a configuration's variant name (ddim_quadratic, pc_ancestral, ...)?
        base = next((n for n in sorted(samplers.SAMPLERS.names(), key=len, reverse=True) if args.sampler.startswith(n + "_")), None)
        if base:
            raise ConfigError(f"{args.sampler!r} is a configuration's variant name, not a sampler: run --sampler {base} "
                              f"with its options, e.g. --opt skip=quadratic (the variant's options are under "
                              "sampling.variants in its configuration)")
    if Path(args.model).is_dir():
        raise ConfigError(f"{args.model} is a folder: give its model file, e.g. {Path(args.model) / 'model.pt'}")
    if not Path(args.model).is_file():
        raise ConfigError(f"model file {args.model} does not exist")
    ranks = distributed.init_from_env(args.device)  # under torchrun: the batches are dealt to the ranks
    args.device = distributed.device_for(args.device, ranks)
    model = load_model(args.model, device=args.device)
    options = apply_sets({}, args.opt)
    score = model.score_fn(continuous=samplers.SAMPLERS[args.sampler].continuous_time)
    r = samplers.sample_batched(args.sampler, score, model.sde, args.n, tuple(model.shape),
                                batch_size=args.batch_size, seed=args.seed, steps=args.steps, device=args.device,
                                family=model.family.name, denoise=args.denoise, progress=True, **options)
    record = {"sampler": args.sampler, "steps": args.steps, "nfe_per_batch": r.info["nfe_per_batch"], "nfe": r.nfe,
              "seconds": r.seconds, "n": args.n, "seed": args.seed, "options": options}
    if not ranks.main:  # every rank holds all the samples; rank 0 writes them
        return
    record["processes"] = ranks.world
    bad = int((~r.x.flatten(1).isfinite().all(1)).sum())
    record["non_finite"] = bad
    save_torch(r.x, args.out)
    save_json(record, Path(args.out).with_suffix(".json"))
    if bad:  # the workflow's "diverged (k/n non-finite)": the samples are kept, the exit status says it
        raise DivergedError(f"diverged: {bad} of {args.n} samples are not finite (written to {args.out} for "
                            "inspection); the model's weights or this sampler setting do not give finite samples")
    if args.grid:
        write_grid(args.model, r.x, args.grid, f"{args.sampler}, steps {args.steps or 'default'}, NFE {r.nfe:g}")
    print(json.dumps(record))


def cmd_import(args):
    from .released import import_checkpoint

    writable(args.out)
    out = import_checkpoint(args.source, args.format, args.out, args.config)
    print(f"wrote {out}: load it with sgm_bench.load_model({str(out)!r}) or sample it with sgm-bench sample {out}")


def write_grid(model_path, x, path, title: str) -> None:
    """An 8x8 grid (images, in the data's own levels) or a scatter (toys) of the finite samples, as a PNG."""
    import torch

    from .spec import data_range, load_dataset
    from .metrics.toy import finite_only
    from .report.plots import sample_grid
    from .train import load_checkpoint

    cfg = json.loads(load_checkpoint(Path(model_path), mmap=True)["config"])
    if "released" in cfg:  # an imported checkpoint: no dataset to load, only its 8-bit images' range
        from .data.images import ImageData

        lo, hi = data_range(cfg["data"])
        empty = torch.zeros(0, *cfg["model"]["shape"], dtype=torch.uint8)
        images = ImageData("released", empty, empty[:, 0, 0, 0].long(), empty, empty[:, 0, 0, 0].long(), 256, hi - lo, lo)
    else:
        images = load_dataset(cfg["data"]).images
    kept, bad = finite_only(x.cpu())
    sample_grid(kept, Path(path).with_suffix(""), title + (f" ({bad} non-finite not shown)" if bad else ""), images,
                formats=("png",))


def cmd_quick(args):
    """A quick training run on the embedded 2-D mixture: train VP for a few hundred steps, sample, compare."""
    from . import samplers
    from .spec import load_dataset
    from .metrics import sliced_wasserstein
    from .train import Trainer, load_model

    cfg = {"data": {"name": "mixture2d", "n_train": 10000},
           "model": {"family": "vp", "net": {"name": "mlp", "hidden": 128, "depth": 2, "act": "silu"}},
           "train": {"steps": args.steps, "batch_size": 256, "lr": 2e-3, "warmup": 100, "ema": 0.995, "ckpt_every": 500}}
    from .runtime import configure

    configure(args.threads)  # torch's default thread count oversubscribes small machines
    data = load_dataset(cfg["data"])
    cfg["train"]["progress"] = True
    Trainer(cfg, data, args.run_dir).run()
    model = load_model(Path(args.run_dir) / "model.pt")
    print(f"{'sampler':<18}{'NFE':>6}{'seconds':>9}{'SW2':>8}  mode weights (true 0.2 / 0.8)")
    for name in ("euler_maruyama", "pc", "ode", "dpm_solver"):
        r = samplers.sample(name, model.score_fn(), model.sde, (2000, 2), family="vp", seed=0)
        w = data.toy.mode_weights(r.x).tolist()
        print(f"{name:<18}{r.nfe:>6}{r.seconds:>9.2f}{sliced_wasserstein(r.x, data.test):>8.3f}  {w[0]:.3f} / {w[1]:.3f}")
    print(f"model, checkpoints and training log in {args.run_dir}; sample it with sgm-bench sample "
          f"{Path(args.run_dir) / 'model.pt'} --sampler pc --out samples.pt")


def cmd_list(args):
    from .data import IMAGES, TOYS
    from .models import FAMILIES
    from .samplers import applicable

    for fam in FAMILIES.names():
        print(f"{fam:<7} samplers: {', '.join(applicable(fam))}")
    print(f"datasets: {', '.join(TOYS.names() + IMAGES.names())}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sgm-bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one model variant (resumes from its run directory)")
    t.add_argument("config")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. train.steps=200")
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("sample", help="draw samples from a trained model")
    s.add_argument("model", help="model.pt or a checkpoint")
    s.add_argument("--sampler", required=True)
    s.add_argument("--steps", type=int)
    s.add_argument("--n", "--num-samples", dest="n", type=int, default=64,
                   help="samples to draw (--num-samples under torchrun, whose options take --n)")
    s.add_argument("--batch-size", type=int, default=500)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--denoise", action="store_true")
    s.add_argument("--device", default="cpu")
    s.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="sampler option, e.g. snr=0.16")
    s.add_argument("--out", required=True)
    s.add_argument("--grid", metavar="FILE.png", help="also write the samples as an 8x8 image grid / scatter PNG")
    s.set_defaults(fn=cmd_sample)
    i = sub.add_parser("import", help="a released checkpoint (score_sde, diffusers) as a model file")
    i.add_argument("source", help="score_sde checkpoint_N.pth, or a diffusers folder (google/ddpm-cifar10-32)")
    i.add_argument("--format", required=True, choices=["score_sde", "diffusers"])
    i.add_argument("--config", help="score_sde only: the released folder (e.g. vp/cifar10_ddpmpp_continuous) or a "
                                    "configuration file")
    i.add_argument("--out", required=True)
    i.set_defaults(fn=cmd_import)
    q = sub.add_parser("quick", help="a quick training run on the 2-D mixture with four samplers")
    q.add_argument("--run-dir", default="work/quick", help="where the run goes (git ignores work/)")
    q.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for this small MLP)")
    q.add_argument("--steps", type=int, default=1500)
    q.set_defaults(fn=cmd_quick)
    sub.add_parser("list", help="families, their samplers, datasets").set_defaults(fn=cmd_list)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except SgmBenchError as e:
        print(f"sgm-bench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only or missing folder: one line saying which file, not a traceback
        where = f" {e.filename}" if e.filename else ""
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        print(f"sgm-bench: error: cannot access{where}: {e.strerror or e}" + (
            " (free space or choose another folder; a training run resumes from its last checkpoint)" if full else ""),
            file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
