"""Data-parallel training and sharded sampling on 2 gloo processes (torchrun's engine) against one process."""
import os
import signal

import pytest
import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from sgm_bench import distributed
from sgm_bench.data import TOYS
from sgm_bench.errors import ConfigError, ProcessFailedError
from sgm_bench.models import build_sde
from sgm_bench.samplers import sample_batched
from sgm_bench.train import train

pytestmark = pytest.mark.slow


def cfg(steps=30, batch_size=64, processes=1, family="ddpm"):
    return {"data": {"name": "mixture2d", "n_train": 2000},
            "model": {"family": family, "net": {"name": "mlp", "hidden": 32, "depth": 2}},
            "train": {"steps": steps, "batch_size": batch_size, "warmup": 5, "lr": 2e-3, "ema": 0.99, "ckpt_every": 10,
                      "progress": False, "device": "cpu", "processes": processes}}


def weights(run_dir):
    return torch.load(run_dir / "model.pt", weights_only=True)


def assert_same_training(a, b, atol=1e-5):
    for key in ("model", "ema"):
        for name in a[key]:
            torch.testing.assert_close(a[key][name], b[key][name], atol=atol, rtol=1e-4, msg=f"{key}.{name}")
    torch.testing.assert_close(a["history"], b["history"], atol=1e-5, rtol=1e-4)  # global-batch loss, grad norm


class KillRank:
    """on_step hook: SIGKILL rank `rank` at `step` (as an out-of-memory kill or a lost node would)."""

    def __init__(self, rank, step):
        self.rank, self.step = rank, step

    def __call__(self, step):
        if step == self.step and distributed.ranks().rank == self.rank:
            os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("family", ["ddpm", "vp"])
def test_two_processes_with_half_batches_equal_one_process(tmp_path, family):
    one = train(cfg(family=family), tmp_path / "one")
    two = train(cfg(family=family, processes=2), tmp_path / "two")
    assert (one["processes"], two["processes"]) == (1, 2)
    assert_same_training(weights(tmp_path / "one"), weights(tmp_path / "two"))


def test_resume_after_either_rank_is_killed(tmp_path):
    reference = train(cfg(processes=2), tmp_path / "straight")
    for rank in (0, 1):
        run = tmp_path / f"killed{rank}"
        with pytest.raises(ProcessFailedError, match=f"process {rank} of 2 failed: .*run again to resume") as e:
            train(cfg(processes=2), run, KillRank(rank, 27))  # last checkpoint: step 20
        assert isinstance(e.value.__cause__, ChildFailedError) and "\n" not in str(e.value)
        assert not (run / "model.pt").exists()
        stats = train(cfg(processes=2), run)
        assert stats["resumed_from"] == 20 and stats["steps"] == reference["steps"]
        assert_same_training(weights(tmp_path / "straight"), weights(run), atol=0)


def test_a_batch_that_does_not_split_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="does not split over 2 processes"):
        train(cfg(batch_size=63, processes=2), tmp_path / "odd")


def _sample_on_ranks(name, steps):
    gm = TOYS["mixture2d"]()
    sde = build_sde("vp")
    return sample_batched(name, gm.score_fn(sde), sde, 50, (2,), batch_size=16, seed=3, steps=steps).x


@pytest.mark.parametrize("name,steps", [("ancestral", 40), ("ode", None)])  # ode: RK45, steps set by the whole batch
def test_sampling_across_two_ranks_gives_the_one_process_samples(name, steps):
    one = _sample_on_ranks(name, steps)
    two = distributed.launch(_sample_on_ranks, 2, name, steps, device="cpu")
    assert one.shape == two.shape == (50, 2)
    assert torch.equal(one, two)


def test_rows_split_the_global_batch():
    rows = [distributed.Ranks(r, 4).rows(64) for r in range(4)]
    assert [(s.start, s.stop) for s in rows] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    with pytest.raises(ConfigError, match="multiple of train.processes"):
        distributed.Ranks(1, 3).rows(64)
