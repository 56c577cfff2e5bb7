"""Released checkpoints as sgm-bench model files: score_sde_pytorch's CIFAR-10 checkpoints and diffusers DDPM folders.

An imported model is an ordinary model file (`train.load_model` reads it): the network's spec, its weights (score_sde:
the EMA's `shadow_params`, as score_sde evaluates), and where they came from. Only tensors are unpickled.
"""
from __future__ import annotations

import json
import pickle
from importlib import resources
from pathlib import Path

import torch
import yaml

from .errors import CheckpointError, ConfigError
from .spec import model_from_spec
from .io import file_hash, save_torch

FORMATS = ("score_sde", "diffusers")
SCORE_SDE_URL = "https://github.com/yang-song/score_sde_pytorch#pretrained-checkpoints"
DIFFUSERS_URL = "https://huggingface.co/google/ddpm-cifar10-32"


def score_sde_configs() -> dict:
    """The released CIFAR-10 folders (`ve/cifar10_ncsnpp`, ...) and the settings of their score_sde config files."""
    text = resources.files("sgm_bench").joinpath("reference/score_sde_cifar10.yaml").read_text()
    return yaml.safe_load(text)["configs"]


def score_sde_config(name_or_path: str) -> dict:
    """A released folder's configuration, or a score_sde configuration saved as JSON / YAML (data, model, training)."""
    released = score_sde_configs()
    if name_or_path.rstrip("/") in released:
        return released[name_or_path.rstrip("/")]
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"--config {name_or_path!r} is neither a released score_sde folder ({', '.join(released)}) "
                          "nor a configuration file")
    cfg = yaml.safe_load(path.read_text())
    if not isinstance(cfg, dict) or not {"data", "model", "training"} <= set(cfg):
        raise ConfigError(f"{path} is not a score_sde configuration: it needs data, model and training sections")
    return cfg


def _family(training: dict) -> str:
    sde, continuous = training["sde"].lower(), bool(training["continuous"])
    table = {("vesde", True): "ve", ("vesde", False): "ncsn", ("vpsde", True): "vp", ("vpsde", False): "ddpm",
             ("subvpsde", True): "subvp", ("subvpsde", False): "subvp"}  # score_sde feeds sub-VP 999 t either way
    if (sde, continuous) not in table:
        raise ConfigError(f"training.sde {training['sde']!r} is not one of vesde, vpsde, subvpsde")
    return table[sde, continuous]


NCSNPP_OPTIONS = ("nf", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout", "resamp_with_conv", "fir",
                  "fir_kernel", "skip_rescale", "resblock_type", "progressive", "progressive_input",
                  "progressive_combine", "fourier_scale", "init_scale", "nonlinearity")
DDPM_OPTIONS = ("nf", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout", "resamp_with_conv")


def score_sde_spec(cfg: dict) -> dict:
    """A score_sde configuration as an sgm-bench model spec: family, process, network, parameterization."""
    data, m, training = cfg["data"], cfg["model"], cfg["training"]
    family = _family(training)
    if not m.get("conditional", True) or m.get("normalization", "GroupNorm") != "GroupNorm" \
            or m.get("conv_size", 3) != 3 or m.get("attention_type", "ddpm") != "ddpm":
        raise ConfigError("only noise-conditional networks with GroupNorm, 3x3 convolutions and DDPM attention are "
                          "supported (score_sde's CIFAR-10 configurations)")
    if m["name"] == "ncsnpp":
        net = {"name": "ncsnpp", **{k: m[k] for k in NCSNPP_OPTIONS if k in m}, "embedding": m["embedding_type"]}
    elif m["name"] == "ddpm":
        net = {"name": "ddpm_unet", **{k: m[k] for k in DDPM_OPTIONS if k in m}, "embedding": "positional"}
    else:
        raise ConfigError(f"score_sde model {m['name']!r} is not supported; supported: ncsnpp, ddpm")
    net = {k: list(v) if isinstance(v, tuple) else v for k, v in net.items()} | {"centered": bool(data["centered"])}
    if family in ("ve", "ncsn"):
        sde = {"sigma_min": m["sigma_min"], "sigma_max": m["sigma_max"], "N": m["num_scales"]}
        param = "scaled_score" if m.get("scale_by_sigma") else "score"
    else:
        sde = {"beta_min": m["beta_min"], "beta_max": m["beta_max"], "N": m["num_scales"]}
        param = "eps"
    shape = [data["num_channels"], data["image_size"], data["image_size"]]
    return {"family": family, "shape": shape, "net": net, "sde": sde, "param": param, "num_classes": 0,
            "noise_std": 0.0}


def _read(path: Path, what: str):
    """torch.load of tensors, lists, dicts and numbers only; one clear error otherwise."""
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: download the {what} first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path} holds objects other than tensors, numbers and containers: only those are "
                              "loaded (weights_only), so a file that could run code is refused") from e
    except Exception as e:
        first = (str(e).splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path} is not a readable {what} ({type(e).__name__}: {first}): a truncated download? "
                              "fetch it again") from e


def _fit(model, weights: dict, source: str, config: str) -> dict:
    """`weights` keyed as the model's state dict, checked name by name and shape by shape."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or unexpected:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise CheckpointError(f"{source} does not fit {config}: {len(missing)} tensors missing, {len(unexpected)} "
                              f"unexpected ({first}); is it the checkpoint of that configuration?")
    for k, v in own.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source} does not fit {config}: tensor {k!r} has shape {list(weights[k].shape)}, "
                                  f"the configuration's network has {list(v.shape)}")
    return {k: weights[k].to(v.dtype) for k, v in own.items()}


def import_score_sde(path, config: str) -> dict:
    """score_sde's {'model', 'ema', 'optimizer', 'step'} (DataParallel's `module.` keys) as an sgm-bench model file,
    with the EMA's shadow_params (aligned with the parameters that take gradients, in order) as the weights."""
    path, cfg = Path(path), score_sde_config(config)
    ckpt = _read(path, "score_sde checkpoint")
    if not isinstance(ckpt, dict) or not {"model", "ema", "step"} <= set(ckpt):
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a score_sde checkpoint: it needs 'model', 'ema' and 'step', it holds {keys}")
    shadow = ckpt["ema"].get("shadow_params") if isinstance(ckpt["ema"], dict) else None
    if not isinstance(shadow, list):
        raise CheckpointError(f"{path} is not a score_sde checkpoint: its 'ema' holds no shadow_params (an sgm-bench "
                              "model file needs no import)")
    spec = score_sde_spec(cfg)
    model = model_from_spec(spec)
    raw = {k.removeprefix("module."): v for k, v in ckpt["model"].items()}
    _check_sigmas(raw.pop("sigmas", None), spec, path)
    weights = _fit(model, {"net." + k: v for k, v in raw.items()}, str(path), f"score_sde config {config!r}")
    trainable = [k for k, p in model.named_parameters() if p.requires_grad]
    if len(shadow) != len(trainable):
        raise CheckpointError(f"{path}: the EMA holds {len(shadow)} tensors, {config!r} trains {len(trainable)}")
    ema = dict(weights)
    for k, s in zip(trainable, shadow):
        if tuple(s.shape) != tuple(weights[k].shape):
            raise CheckpointError(f"{path}: EMA tensor for {k!r} has shape {list(s.shape)}, expected "
                                  f"{list(weights[k].shape)}")
        ema[k] = s.to(weights[k].dtype)
    data_range = [-1.0, 1.0] if cfg["data"]["centered"] else [0.0, 1.0]
    return _model_file(spec, weights, ema, path, "score_sde", config, int(ckpt["step"]), data_range)


def _check_sigmas(sigmas, spec: dict, path: Path) -> None:
    """score_sde keeps its VE noise levels as a buffer: the count must be the configuration's num_scales."""
    if sigmas is not None and sigmas.numel() != spec["sde"]["N"]:
        raise CheckpointError(f"{path}: its network holds {sigmas.numel()} noise levels, the configuration "
                              f"{spec['sde']['N']} (model.num_scales)")


def _diffusers_file(folder: Path, sub: str, name: str) -> Path:
    for f in (folder / sub / name, folder / name):
        if f.is_file():
            return f
    raise CheckpointError(f"{folder} is not a diffusers DDPM folder: no {name} in it or in {sub}/ (download "
                          f"{DIFFUSERS_URL} with its files, flat or with unet/ and scheduler/ subfolders)")


def diffusers_spec(unet_cfg: dict, sched: dict) -> dict:
    """A diffusers UNet2DModel + DDPMScheduler configuration as a DDPM model spec (linear betas, eps prediction)."""
    if unet_cfg.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise CheckpointError(f"the unet is a {unet_cfg['_class_name']}, not a UNet2DModel")
    if sched.get("beta_schedule", "linear") != "linear" or sched.get("prediction_type", "epsilon") != "epsilon":
        raise CheckpointError(f"only DDPM's linear betas with epsilon prediction are supported; the scheduler has "
                              f"{sched.get('beta_schedule')!r} betas predicting {sched.get('prediction_type')!r}")
    N = int(sched.get("num_train_timesteps", 1000))
    unet = {k: v for k, v in unet_cfg.items() if not k.startswith("_")}
    size = unet.get("sample_size", 32)
    size = size[0] if isinstance(size, list) else size
    return {"family": "ddpm", "shape": [unet.get("in_channels", 3), size, size],
            "net": {"name": "diffusers_unet", "config": unet},
            "sde": {"beta_min": float(sched.get("beta_start", 1e-4)) * N, "beta_max": float(sched.get("beta_end", 0.02)) * N,
                    "N": N},
            "param": "eps", "num_classes": 0, "noise_std": 0.0}


SAFETENSORS = "diffusion_pytorch_model.safetensors"


def import_diffusers(folder) -> dict:
    """A diffusers folder (google/ddpm-cifar10-32: config.json, scheduler_config.json, the weights) as a model file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder: a diffusers model is a folder (download {DIFFUSERS_URL})")
    try:
        unet_cfg = json.loads(_diffusers_file(folder, "unet", "config.json").read_text())
        sched = json.loads(_diffusers_file(folder, "scheduler", "scheduler_config.json").read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{folder}: a configuration file is not valid JSON ({e})") from e
    spec = diffusers_spec(unet_cfg, sched)
    safe = [f for f in (folder / "unet" / SAFETENSORS, folder / SAFETENSORS) if f.is_file()]
    if safe:
        from safetensors.torch import load_file

        src = safe[0]
        try:
            raw = load_file(src)
        except Exception as e:
            raise CheckpointError(f"{src} is not a readable safetensors file ({e})") from e
    else:
        src = _diffusers_file(folder, "unet", "diffusion_pytorch_model.bin")
        raw = _read(src, "diffusers weights file")
    model = model_from_spec(spec)
    weights = _fit(model, {"net.unet." + k: v for k, v in raw.items()}, str(src), "its config.json")
    return _model_file(spec, weights, weights, src, "diffusers", str(folder), None, [-1.0, 1.0])


def _model_file(spec, weights, ema, source: Path, fmt: str, config: str, step, data_range) -> dict:
    from .train import CKPT_FORMAT

    origin = {"format": fmt, "file": str(source), "sha256": file_hash(source), "config": config, "step": step}
    data = {"name": "cifar10", "range": data_range} if spec["shape"] == [3, 32, 32] else {"range": data_range}
    return {"format": CKPT_FORMAT, "config_hash": "released-" + origin["sha256"][:16], "spec": json.dumps(spec),
            "config": json.dumps({"data": data, "model": spec, "released": origin}), "step": step or 0,
            "model": weights, "ema": ema, "released": json.dumps(origin)}


def entry_spec(ckpt: dict) -> tuple[dict, list]:
    """A workflow model entry's `checkpoint: {path, format, config, use}` as (model spec, data range), read from the
    configuration alone (the weights may not be downloaded yet). A diffusers folder's scheduler is read when present;
    the import job checks the file against this spec."""
    if ckpt["format"] == "score_sde":
        if not ckpt.get("config"):
            raise ConfigError(f"a score_sde checkpoint needs config: one of {', '.join(score_sde_configs())}, or a "
                              "configuration file")
        cfg = score_sde_config(ckpt["config"])
        return score_sde_spec(cfg), [-1.0, 1.0] if cfg["data"]["centered"] else [0.0, 1.0]
    folder = Path(ckpt["path"])
    try:
        sched = json.loads(_diffusers_file(folder, "scheduler", "scheduler_config.json").read_text())
        unet = json.loads(_diffusers_file(folder, "unet", "config.json").read_text())
    except (CheckpointError, json.JSONDecodeError):
        sched, unet = {}, {}
    return diffusers_spec(unet, sched), [-1.0, 1.0]


def checkpoint_file(ckpt: dict) -> Path:
    """The file (score_sde) or folder (diffusers) an entry names; of a score_sde folder's checkpoint_<n>.pth files, the
    smallest n for use: best (the best-FID checkpoint, Score SDE Table 3) or the largest for use: last (Table 2)."""
    path = Path(ckpt["path"])
    if ckpt["format"] != "score_sde" or not path.is_dir():
        return path
    found = sorted(path.glob("checkpoint_*.pth"), key=lambda f: int(f.stem.split("_")[1]) if f.stem.split("_")[1].isdigit() else -1)
    if not found:
        raise CheckpointError(f"{path} holds no checkpoint_<n>.pth: download the folder {ckpt.get('config')} from "
                              f"{SCORE_SDE_URL}")
    return found[0] if ckpt.get("use", "best") == "best" else found[-1]


def missing(ckpt: dict) -> str | None:
    """Why an entry's checkpoint cannot be imported on this machine (missing, empty folder), with where it is
    published, or None."""
    try:
        path = checkpoint_file(ckpt)
    except CheckpointError as e:
        return str(e)
    if path.exists():
        return None
    where = f"score_sde folder {ckpt.get('config')} at {SCORE_SDE_URL}" if ckpt["format"] == "score_sde" else DIFFUSERS_URL
    return f"missing released checkpoint {path}: download the {where}"


def import_checkpoint(src, fmt: str, out, config: str | None = None) -> Path:
    """Import `src` (a score_sde checkpoint with its `config`, or a diffusers folder) and write the model file `out`."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "score_sde":
        if not config:
            raise ConfigError(f"a score_sde checkpoint needs --config: one of {', '.join(score_sde_configs())}, or a "
                              "configuration file")
        state = import_score_sde(src, config)
    else:
        state = import_diffusers(src)
    return save_torch(state, out)



def diffusers_standin(root, size: int = 16, nested: bool = False, seed: int = 0):
    """A random-weight diffusers DDPM folder of reduced size (two levels, attention at the lower one) in the layout of
    google/ddpm-cifar10-32: the stand-in of the smoke runs and tests. Returns (unet, scheduler)."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=size, in_channels=3, out_channels=3, block_out_channels=[32, 64], layers_per_block=1,
                       down_block_types=["DownBlock2D", "AttnDownBlock2D"], attention_head_dim=None,
                       up_block_types=["AttnUpBlock2D", "UpBlock2D"], norm_eps=1e-6, downsample_padding=0,
                       flip_sin_to_cos=False, freq_shift=1)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))  # no layer left at its zero initialisation
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    root = Path(root)
    unet.save_pretrained(root / "unet" if nested else root)
    sched.save_pretrained(root / "scheduler" if nested else root)
    return unet.eval(), sched
