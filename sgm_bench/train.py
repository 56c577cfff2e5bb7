"""Training loop: Adam with warm-up and clipping, EMA, atomic checkpoints, exact resume, a non-finite-loss guard."""
from __future__ import annotations

import itertools
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from . import distributed
from .checks import COUNT, POSITIVE, Range, check_numbers, check_ranges
from .errors import CheckpointError, ConfigError, NonFiniteLossError
from .spec import Dataset, config_hash, load_dataset, loss_options, model_from_spec, model_spec
from .io import save_json, save_torch, save_text
from .losses import LOSSES, global_batch
from .models import FAMILIES, ScoreModel
from .optim import adam
from .runtime import device_name, peak_memory_mb, pick_device

CKPT_FORMAT = 1


@dataclass
class TrainConfig:
    """Optimizer and loop settings; defaults are DDPM's (Ho et al. App. B), NCSN's lr 1e-3 comes from its family."""

    steps: int = 1000
    batch_size: int = 128
    lr: float | None = None  # None: the family's paper value (2e-4; NCSN 1e-3)
    warmup: int = 5000
    grad_clip: float = 1.0
    ema: float = 0.9999
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    bf16: bool = False
    label_dropout: float = 0.0  # classifier-free guidance: p of replacing y by the null label
    processes: int = 1  # data-parallel processes (one per GPU; gloo on CPU); the global batch stays batch_size
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown train option(s) {sorted(unknown)}; valid: {', '.join(cls.__dataclass_fields__)}")
        numeric = {k: f.default for k, f in cls.__dataclass_fields__.items()} | {"lr": 1.0}
        check_numbers(d, numeric, "train")
        check_ranges(d, TRAIN_RANGES, "train")
        for k in ("bf16", "progress"):
            if not isinstance(d.get(k, False), bool):
                raise ConfigError(f"train: {k} must be true or false, got {d[k]!r}")
        return cls(**d)


TRAIN_RANGES = {"steps": COUNT, "batch_size": COUNT, "ckpt_every": COUNT, "keep_checkpoints": COUNT, "processes": COUNT,
                "lr": POSITIVE, "grad_clip": POSITIVE, "warmup": Range(0, integer=True),
                "ema": Range(0, 1, hi_open=True), "label_dropout": Range(0, 1, hi_open=True),
                "seed": Range(0, 2**63 - 1, integer=True)}


def ema_with_warmup(decay: float):
    """score_sde's EMA: decay_n = min(decay, (1 + n) / (10 + n)) after n updates, so early weights fade quickly."""

    def update(ema_params, params, num_averaged):
        n = float(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - d)

    return update


class OwnStream(torch.nn.Module):
    """Runs the network on this process's own RNG stream (seed, rank, call), leaving the shared stream as it was: the
    loss's draws stay those of the one-process run, and dropout masks differ between processes as between rows."""

    def __init__(self, net: torch.nn.Module, seed: int, rank: int):
        super().__init__()
        self.net, self.seed, self.rank, self.calls = net, seed, rank, 0

    def forward(self, *args):
        self.calls += 1
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(hash((self.seed, self.rank, self.calls)) % 2**62)
            return self.net(*args)


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("step_*.pt"))


def load_checkpoint(path: Path, expected_hash: str | None = None, mmap: bool = False) -> dict:
    """torch.load(weights_only=True) with clear errors for corrupt files and other configurations' checkpoints;
    mmap=True maps the tensors instead of reading them (enough to tell a whole file from a truncated one)."""
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path}: train the model first (snakemake --cores all trains every "
                              "model of the configuration; sgm-bench train trains one)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}). It is corrupt or truncated: "
                              f"delete it to resume from the one before, or delete {path.parent} to start over") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path} is not an sgm-bench checkpoint (format {CKPT_FORMAT}); delete it or point elsewhere")
    if expected_hash is not None and ckpt["config_hash"] != expected_hash:
        raise CheckpointError(f"{path} was written by another configuration (hash {ckpt['config_hash']}, this one "
                              f"{expected_hash}); use a new run directory, or delete the old one to retrain")
    return ckpt


def load_model(path, ema: bool = True, device="cpu", expected_spec: dict | None = None) -> ScoreModel:
    """Rebuild a trained model from a checkpoint or final model file (EMA weights by default), frozen for evaluation
    (EDM's `eval().requires_grad_(False)`: a gradient with respect to x, as the likelihood's divergence takes, then
    records no graph through the weights); with `expected_spec`, refuse a file whose recorded model is another one (a
    VE model evaluated as a DDPM, say)."""
    ckpt = load_checkpoint(Path(path))
    if expected_spec is not None and json.loads(ckpt["spec"]) != json.loads(json.dumps(expected_spec)):
        raise CheckpointError(f"{path} holds another model ({json.loads(ckpt['spec'])}) than the configuration asks for "
                              f"({expected_spec}); retrain it (delete the file, or snakemake --forcerun train)")
    model = model_from_spec(json.loads(ckpt["spec"]))
    try:
        model.load_state_dict(ckpt["ema" if ema else "model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the recorded model ({e}); the file is mismatched") from e
    return model.to(device).eval().requires_grad_(False)


class Trainer:
    """One run directory: checkpoints/step_*.pt while training, then model.pt, train_log.csv and train_stats.json."""

    def __init__(self, cfg: dict, data: Dataset, run_dir):
        self.cfg, self.data, self.run_dir = cfg, data, Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ConfigError(f"run directory {self.run_dir} is a file; name a directory")
        self.tc = TrainConfig.from_dict(cfg.get("train", {}))
        self.ranks = distributed.ranks()
        self.rows = self.ranks.rows(self.tc.batch_size)  # this process's rows of each global batch
        self.device = pick_device(distributed.device_for(self.tc.device, self.ranks))
        self.spec = model_spec(cfg, data)
        self.hash = config_hash(cfg)
        family = FAMILIES[self.spec["family"]]
        self.loss_fn, self.loss_opts = LOSSES[family.loss], loss_options(cfg, data)
        torch.manual_seed(self.tc.seed)
        self.model = model_from_spec(self.spec).to(self.device)
        self.trained = self.model if self.ranks.world == 1 else self.model.with_net(self._data_parallel(self.model.net))
        self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(self.tc.ema), use_buffers=True)
        # the tensors the EMA update pairs (loading a checkpoint copies into them in place, so they stay these)
        self._ema_pairs = [list(itertools.chain(m.parameters(), m.buffers())) for m in (self.ema.module, self.model)]
        lr = self.tc.lr if self.tc.lr is not None else family.lr
        self.opt = adam(self.model.parameters(), lr)
        warm = max(self.tc.warmup, 1)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: min(1.0, (s + 1) / warm))
        self.batch_gen = torch.Generator().manual_seed(self.tc.seed + 1)
        self.step, self.history = 0, []
        self.seconds_before, self.previous = 0.0, None  # wall-clock of the resumed part; a finished run moved aside

    def _data_parallel(self, net: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel over the process group: gradients averaged over ranks in backward."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(OwnStream(net, self.tc.seed, self.ranks.rank), device_ids=ids)

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": CKPT_FORMAT, "config_hash": self.hash, "spec": json.dumps(self.spec),
            "config": json.dumps(self.cfg, default=str), "step": self.step,
            "model": self.model.state_dict(), "ema": self.ema.module.state_dict(), "ema_n": self.ema.n_averaged,
            "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
            "rng_cpu": torch.get_rng_state(), "batch_gen": self.batch_gen.get_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "history": torch.tensor(self.history, dtype=torch.float64).reshape(-1, 3),
            "seconds": self.seconds_before + time.perf_counter() - getattr(self, "_start", time.perf_counter()),
        }

    def save(self) -> Path:
        """Rank 0 writes (atomically); the others wait until the file is whole."""
        path = self.run_dir / "checkpoints" / f"step_{self.step:08d}.pt"
        if self.ranks.main:
            save_torch(self.state(), path)
            for old in _checkpoints(self.run_dir)[: -self.tc.keep_checkpoints]:
                old.unlink()
        distributed.barrier()
        return path

    def resume(self) -> bool:
        """Load the newest checkpoint of this run directory, if any; True when resumed. A run that already finished, or
        one of another configuration, is not resumed but set aside and retrained: a rerun (a changed setting or code,
        --forcerun) must reach the model. Rank 0 looks (and sets aside) first, then the others read what it left."""
        with distributed.main_first():
            return self._resume()

    def _resume(self) -> bool:
        for tmp in (self.run_dir / "checkpoints").glob(".*.tmp"):  # a write killed half-way
            tmp.unlink()
        ckpts = _checkpoints(self.run_dir)
        if not ckpts:
            return False
        ck = load_checkpoint(ckpts[-1])
        if ck["config_hash"] != self.hash:
            return self._set_aside(f"holds a run of another configuration (hash {ck['config_hash']}, this one {self.hash})")
        if ck["step"] >= self.tc.steps:
            return self._set_aside(f"had finished ({ck['step']} steps)")
        self.model.load_state_dict(ck["model"])
        self.ema.module.load_state_dict(ck["ema"])
        self.ema.n_averaged.copy_(ck["ema_n"])
        self.opt.load_state_dict(ck["opt"])
        self.sched.load_state_dict(ck["sched"])
        torch.set_rng_state(ck["rng_cpu"])
        self.batch_gen.set_state(ck["batch_gen"])
        if ck["rng_cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(ck["rng_cuda"])
        self.step, self.history = ck["step"], ck["history"].tolist()
        self.seconds_before = float(ck.get("seconds", 0.0))
        lr = self.tc.lr if self.tc.lr is not None else FAMILIES[self.spec["family"]].lr
        if lr != self.sched.base_lrs[0]:  # a resumed run may lower the learning rate (after a non-finite stop)
            print(f"sgm-bench: resuming at step {self.step} with lr {lr} (was {self.sched.base_lrs[0]})", file=sys.stderr)
            self.sched.base_lrs = [lr for _ in self.sched.base_lrs]
            for g in self.opt.param_groups:
                g["initial_lr"] = lr
                g["lr"] = lr * min(1.0, self.step / max(self.tc.warmup, 1))
        return True

    def _set_aside(self, why: str) -> bool:
        """Move the run directory to <run_dir>.previous (replacing an older one) and start over; False: not resumed."""
        self.previous = self.run_dir.with_name(self.run_dir.name + ".previous")
        shutil.rmtree(self.previous, ignore_errors=True)
        self.run_dir.rename(self.previous)
        print(f"sgm-bench: {self.run_dir} {why}: retraining from scratch; the old run is kept in {self.previous}",
              file=sys.stderr)
        return False

    # -- the loop ------------------------------------------------------------------------------------------------
    def batch(self):
        """This process's rows of the global batch (all of it in one process); every process draws the whole batch."""
        idx = torch.randint(len(self.data.train), (self.tc.batch_size,), generator=self.batch_gen)[self.rows]
        x = self.data.train[idx].to(self.device)
        if self.data.random_flip:  # drawn for the whole batch, as the indices, so that K processes train as one
            flip = (torch.rand(self.tc.batch_size, generator=self.batch_gen) < 0.5)[self.rows]
            x = torch.where(flip.to(self.device)[:, None, None, None], x.flip(-1), x)
        y = None
        if self.spec["num_classes"]:
            y = self.data.train_labels[idx].to(self.device)
            drop = (torch.rand(self.tc.batch_size, generator=self.batch_gen) < self.tc.label_dropout)[self.rows]
            y = torch.where(drop.to(self.device), torch.full_like(y, self.spec["num_classes"]), y)
        return x, y

    def train_step(self) -> tuple[float, float]:
        x, y = self.batch()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.tc.bf16), \
                global_batch(self.rows, self.tc.batch_size):
            loss = self.loss_fn(self.trained, x, y, **self.loss_opts)
        value = float(distributed.mean(loss.detach()))  # the global batch's loss, the same on every rank
        self._guard(f"the loss became {value}", math.isfinite(value))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = float(self.opt.clip_grad_norm_(self.tc.grad_clip))
        self._guard(f"the gradient norm became {gnorm}", math.isfinite(gnorm))
        try:
            self.opt.step()
        except RuntimeError as e:  # Adam's step size overflows float at absurd learning rates
            self._guard(f"the optimizer step failed ({e})", False)
        # a non-finite weight that the loss uses makes the next loss non-finite, checked every step; all weights are
        # looked at before each checkpoint, not every step (a device sync per step)
        if self._checkpoint_after(self.step + 1):
            self._guard("a weight became non-finite after the update",
                        all(torch.isfinite(p).all() for p in self.model.parameters()))
        self.sched.step()
        self._update_ema()
        return value, gnorm

    def _checkpoint_after(self, step: int) -> bool:
        return step % self.tc.ckpt_every == 0 or step == self.tc.steps

    def _update_ema(self) -> None:
        """AveragedModel.update_parameters (use_buffers) over tensor lists made once: the same update, without the
        per-call traversal and grouping that cost 0.7 ms of a 60 ms digits step."""
        averaged, live = self._ema_pairs
        with torch.no_grad():
            if self.ema.n_averaged == 0:
                for a, p in zip(averaged, live, strict=True):
                    a.copy_(p)
            else:
                self.ema.multi_avg_fn(averaged, live, self.ema.n_averaged)
        self.ema.n_averaged += 1

    def _guard(self, what: str, ok: bool) -> None:
        """Stop before a non-finite gradient or weight reaches a checkpoint; the last good one stays untouched."""
        if not ok:
            last = _checkpoints(self.run_dir)
            raise NonFiniteLossError(
                f"{what} at step {self.step + 1}; stopped before it reached a checkpoint. The last good checkpoint "
                f"({last[-1] if last else 'none yet'}) is untouched: resume from it with a lower train.lr or a "
                "finite train.grad_clip")

    def run(self, on_step=None) -> dict | None:
        """Train to `steps` (resuming when a checkpoint exists); returns the stats also written to train_stats.json
        (on rank 0; None on the others)."""
        resumed_from = self.step if self.resume() else None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        start, first = time.perf_counter(), self.step
        self._start = start
        main = self.ranks.main
        bar = tqdm(total=self.tc.steps, initial=self.step, disable=not (self.tc.progress and main),
                   desc=self.spec["family"])
        self.trained.train()
        if main and not self.tc.progress:
            print(f"sgm-bench: training on {self.ranks.world} process(es), {self.device}, global batch "
                  f"{self.tc.batch_size}" + (f", from step {self.step}" if self.step else ""), file=sys.stderr)
        while self.step < self.tc.steps:
            loss, gnorm = self.train_step()
            self.step += 1
            self.history.append([self.step, loss, gnorm])
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            if self._checkpoint_after(self.step):
                self.save()
                if main and not self.tc.progress:  # a workflow job's log: one line per checkpoint instead of a bar
                    rate = (self.step - first) / max(time.perf_counter() - start, 1e-9)
                    print(f"sgm-bench: step {self.step}/{self.tc.steps}, loss {loss:.4g}, grad norm {gnorm:.3g}, "
                          f"{rate:.1f} steps/s, checkpoint saved", file=sys.stderr)
            if on_step is not None:
                on_step(self.step)
        bar.close()
        seconds = time.perf_counter() - start
        final = self.state()
        for k in ("opt", "sched", "rng_cpu", "rng_cuda", "batch_gen"):
            final.pop(k)
        stats = {"steps": self.step, "resumed_from": resumed_from, "seconds": self.seconds_before + seconds,
                 "started": time.time() - seconds, "finished": time.time(),
                 "seconds_this_run": seconds, "retrained_over": str(self.previous) if self.previous else None,
                 "steps_per_second": (self.step - first) / seconds if seconds > 0 else None,
                 "peak_memory_mb": peak_memory_mb(self.device), "device": str(self.device),
                 "device_name": device_name(self.device),
                 "parameters": sum(p.numel() for p in self.model.parameters()), "config_hash": self.hash,
                 "final_loss": self.history[-1][1] if self.history else None, "train_config": asdict(self.tc),
                 "processes": self.ranks.world}
        if main:
            save_torch(final, self.run_dir / "model.pt")
            save_text("step,loss,grad_norm\n" + "".join(f"{int(s)},{l:.6g},{g:.6g}\n" for s, l, g in self.history),
                      self.run_dir / "train_log.csv")
            save_json(stats, self.run_dir / "train_stats.json")
        distributed.barrier()
        return stats if main else None


def train(cfg: dict, run_dir, on_step=None) -> dict:
    """Train one model on train.processes processes (torchrun's engine: DDP, one process per GPU, gloo on CPU); one
    process trains here. Run under torchrun, it joins torchrun's group instead. Returns rank 0's stats (None on the
    other ranks under torchrun)."""
    tc = TrainConfig.from_dict(cfg.get("train", {}))
    distributed.Ranks(0, tc.processes).rows(tc.batch_size)  # a batch that does not split: refused before launching
    return distributed.launch(_train_one, tc.processes, cfg, str(run_dir), on_step, device=tc.device)


def _train_one(cfg: dict, run_dir: str, on_step=None) -> dict:
    return Trainer(cfg, load_dataset(cfg["data"]), run_dir).run(on_step)
