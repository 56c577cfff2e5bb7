import pytest
import torch

from sgm_bench.data import TOYS
from sgm_bench.metrics import sliced_wasserstein
from sgm_bench.runtime import configure


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def oracle_error(gm, x, ref):
    """(max |mode weight - true weight|, max over modes of SW_2 between centred samples and centred fresh data)."""
    if not torch.isfinite(x).all():
        return float("inf"), float("inf")
    werr = float((gm.mode_weights(x) - gm.weights).abs().max())
    ax = torch.cdist(x.double(), gm.means).argmin(1)
    ar = torch.cdist(ref.double(), gm.means).argmin(1)
    sw = max(
        sliced_wasserstein(x[ax == k] - gm.means[k].float(), ref[ar == k] - gm.means[k].float()) if (ax == k).sum() > 10
        else float("inf")
        for k in range(gm.K)
    )
    return werr, sw


@pytest.fixture(scope="session")
def toy():
    return lambda name: TOYS[name]()


configure(1)  # pytest-xdist runs one worker per core: avoid oversubscribing them
