"""torch.distributed for one model on several processes: the process group torchrun sets up, the launcher, rank-0
writes, and the rows of a global batch each rank owns. NCCL on GPU (one process per GPU), gloo on CPU."""
from __future__ import annotations

import os
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, record

from .errors import ConfigError, ProcessFailedError
from .runtime import configure


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group: rank, world size and local rank (its GPU on the node)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def rows(self, total: int) -> slice:
        """This rank's contiguous rows of a global batch of `total` (the same split on every step)."""
        if total % self.world:
            raise ConfigError(f"the global batch {total} does not split over {self.world} processes; make "
                              f"train.batch_size a multiple of train.processes")
        per = total // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


def ranks() -> Ranks:
    """The current group (a single process when none was initialized)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def init_from_env(device: str = "auto") -> Ranks:
    """Join the group torchrun (or `launch`) describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT); a
    single process when WORLD_SIZE is unset or 1. On CUDA each process takes the GPU of its LOCAL_RANK."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return ranks()
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if cuda else "gloo")
    return ranks()


def device_for(device: str, r: Ranks) -> str:
    """'auto' / 'cuda' become this rank's GPU under a group; anything else is kept."""
    if r.world > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{r.local_rank}"
    return device


def barrier() -> None:
    if ranks().world > 1:
        dist.barrier()


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean over ranks (the loss of the global batch when every rank holds the mean of its equal share)."""
    if ranks().world == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / ranks().world


def gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if ranks().world == 1:
        return [obj]
    out = [None] * ranks().world
    dist.all_gather_object(out, obj)
    return out


@contextmanager
def main_first():
    """Rank 0 runs the block, then the others (a directory rank 0 may move or create is settled before they look)."""
    if not ranks().main:
        barrier()
    yield
    if ranks().main:
        barrier()


def launch(fn, processes: int, *args, device: str = "auto"):
    """Run fn(*args) in `processes` processes with torchrun's engine (torch.distributed.launcher's elastic_launch,
    c10d rendezvous on a free local port; `device` picks NCCL or gloo); returns rank 0's result. One process runs fn
    here. fn must be importable (a module-level function), and the calling script's body sit under
    `if __name__ == "__main__":` (the processes are spawned and re-import it). A process that fails raises
    ChildFailedError naming its rank, exit code and traceback; the others are stopped."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # already one of torchrun's processes: join its group
        init_from_env(device)
        return fn(*args)
    if processes <= 1:
        return fn(*args)
    if device not in ("cpu",) and torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise ConfigError(f"{processes} processes asked for, but {torch.cuda.device_count()} GPU(s) are visible; "
                          "give the job as many GPUs as train.processes, or lower it")
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", run_id=uuid.uuid4().hex, max_restarts=0, monitor_interval=0.1)
    threads = max(torch.get_num_threads() // processes, 1)  # the job's cores, shared
    log = getattr(sys.stderr, "name", None)  # a workflow job's log (job.setup_job): the processes write there too
    log = log if isinstance(log, str) and os.path.isfile(log) else None
    try:
        return elastic_launch(config, _in_group)(fn, device, threads, log, *args)[0]
    except ChildFailedError as e:  # one line naming the process and its own error (a full disk, a non-finite loss)
        rank, failure = min(e.failures.items())
        why = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        why = str(why).strip().splitlines()[-1] if str(why).strip() else f"exit code {failure.exitcode}"
        raise ProcessFailedError(f"process {rank} of {processes} failed: {why}; the others were stopped, the last "
                                 "checkpoint is kept: run again to resume") from e


@record  # the failing process's traceback travels into the parent's ChildFailedError
def _in_group(fn, device, threads, log, *args):
    """One launched process: the parent's thread count and log, then the group."""
    configure(threads)
    if log:
        sys.stderr = open(log, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    init_from_env(device)
    try:
        return fn(*args)
    finally:
        dist.destroy_process_group()
