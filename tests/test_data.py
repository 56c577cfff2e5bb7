"""Data: exact toy densities and scores, image loaders on data the tests write themselves, clear missing-data errors."""
import math
import pickle

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from sgm_bench.data import IMAGES, TOYS, GaussianMixture
from sgm_bench.errors import ConfigError, DataMissingError
from sgm_bench.models import build_sde


def test_mixture_log_density_matches_scipy():
    gm = GaussianMixture([0.3, 0.7], [[0.0, 1.0], [2.0, -1.0]], [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.3]]])
    x = torch.randn(50, 2, dtype=torch.float64)
    ref = np.log(0.3 * multivariate_normal([0, 1], [[1, 0.5], [0.5, 2]]).pdf(x) +
                 0.7 * multivariate_normal([2, -1], [[0.5, 0], [0, 0.3]]).pdf(x))
    assert np.allclose(gm.log_prob(x).numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("family", ["ve", "vp", "subvp"])
def test_perturbed_score_is_the_gradient_of_the_perturbed_log_density(family):
    gm = TOYS["mixture2d"]()
    sde = build_sde(family)
    x = (torch.randn(64, 2, dtype=torch.float64) * 4).requires_grad_(True)
    t = torch.rand(64, dtype=torch.float64) * 0.9 + 0.05
    grad = torch.autograd.grad(gm.log_prob(x, sde, t).sum(), x)[0]
    assert torch.allclose(gm.score(x.detach(), sde, t), grad, atol=1e-8)


def test_perturbed_density_matches_monte_carlo_of_the_forward_process():
    gm, sde = TOYS["mixture1d"](), build_sde("vp")
    x0 = gm.sample(200000, torch.Generator().manual_seed(0)).double()
    t = torch.tensor(0.3, dtype=torch.float64)
    mean, std = sde.marginal_prob(x0, t.expand(len(x0)))
    xt = mean + std[:, None] * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hist, edges = np.histogram(xt.numpy(), bins=40, range=(-3, 3), density=True)
    centres = torch.tensor((edges[:-1] + edges[1:]) / 2)[:, None]
    dens = gm.log_prob(centres, sde, t).exp().numpy()
    assert np.abs(hist * ((xt > -3) & (xt < 3)).double().mean().item() - dens).max() < 0.02


def test_toys_without_density_say_so():
    for name in ("smile", "swissroll"):
        with pytest.raises(ConfigError, match="density"):
            TOYS[name]().log_prob(torch.zeros(2, 2))
    s = TOYS["smile"]().sample(400, torch.Generator().manual_seed(0))
    assert s.shape == (400, 2) and ((s[:, 1] > 0.5).float().mean() - 0.5).abs() < 0.05  # eyes: half the points


def test_checkerboard_density_integrates_to_one():
    cb = TOYS["checkerboard"]()
    u = torch.rand(200000, 2, generator=torch.Generator().manual_seed(0)) * 8 - 4
    assert abs(float(cb.log_prob(u).exp().mean() * 64) - 1) < 0.02
    assert torch.isfinite(cb.log_prob(cb.sample(1000))).all()


def test_digits_read_without_scikit_learn_equal_its_loader():
    from sklearn.datasets import load_digits

    from sgm_bench.data.images import digits_arrays

    ref, (pixels, labels) = load_digits(), digits_arrays()
    assert (pixels == ref.data).all() and (labels == ref.target).all()
    d = IMAGES["digits"]()  # train + test: a permutation of scikit-learn's images
    ours = sorted(bytes(r) for r in torch.cat([d.train, d.test]).flatten(1).numpy())
    assert ours == sorted(bytes(r) for r in ref.data.astype("uint8"))


def test_digits_split_levels_and_scaling():
    d = IMAGES["digits"]()
    assert len(d.train) + len(d.test) == 1797 and d.levels == 17 and d.shape == (1, 8, 8)
    assert int(d.train.max()) == 16 and d.num_classes == 10
    assert torch.equal(IMAGES["digits"]().test, d.test)  # fixed, seeded split
    y = d.to_model(d.train)
    assert abs(float(y.min()) + 1 - 1 / 17) < 1e-6 and abs(float(y.max()) - 1 + 1 / 17) < 1e-6  # cell centres
    v = d.dequantize(d.train[:10], torch.Generator().manual_seed(0))
    assert ((v + 1) / 2 * 17 - d.train[:10].float()).min() >= 0 and ((v + 1) / 2 * 17 - d.train[:10].float()).max() < 1
    # the training point of each level is the centre of the cell its dequantization fills
    u = d.dequantize(d.train[:200], torch.Generator().manual_seed(1))
    assert (u.mean() - d.to_model(d.train[:200]).mean()).abs() < 0.01 and ((u - d.to_model(d.train[:200])).abs() <= 1 / 17).all()
    assert d.to_uint8(y[:4]).shape == (4, 3, 8, 8) and d.to_uint8(y[:4]).dtype == torch.uint8
    assert d.to_uint8(y[:4])[:, 0].unique().tolist() == sorted({round(k * 255 / 16) for k in d.train[:4].unique().tolist()})
    with pytest.raises(ValueError, match="non-finite"):  # NaN would become 0 silently
        d.to_uint8(torch.full((2, 1, 8, 8), float("nan")))


def _fake_cifar(root, n=20):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(base / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def test_cifar10_loader_reads_a_torchvision_folder(tmp_path, monkeypatch):
    _fake_cifar(tmp_path)
    from torchvision.datasets import CIFAR10

    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)  # our fake batches have other checksums
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    d = IMAGES["cifar10"](root=tmp_path)
    assert d.train.shape == (100, 3, 32, 32) and d.test.shape == (20, 3, 32, 32) and d.levels == 256


def test_missing_dataset_names_the_path_and_how_to_get_it(tmp_path):
    with pytest.raises(DataMissingError, match=r"CIFAR-10 not found under .*cifar-10-batches-py"):
        IMAGES["cifar10"](root=tmp_path / "nowhere")
    with pytest.raises(DataMissingError, match="data root"):
        IMAGES["mnist"](root=None)


def test_image_range_and_flips_follow_the_configuration(tmp_path):
    """`range: [0, 1]` (score_sde's VE data) scales images into [0, 1] and back to the same levels; `random_flip`
    flips about half of each training batch horizontally, and leaves it alone when off."""
    from sgm_bench.errors import ConfigError
    from sgm_bench.spec import load_dataset
    from sgm_bench.train import Trainer

    unit = load_dataset({"name": "digits", "range": [0, 1]})
    assert 0 < float(unit.train.min()) and float(unit.train.max()) < 1
    assert torch.equal(unit.images.to_levels(unit.train).round(), unit.images.train.float())
    with pytest.raises(ConfigError, match="range must be"):
        load_dataset({"name": "digits", "range": [1, 0]})
    cfg = {"model": {"family": "vp", "net": {"name": "unet", "ch": 8, "ch_mult": [1], "attn_resolutions": []}},
           "train": {"steps": 1, "batch_size": 400, "progress": False}}
    for flip in (False, True):
        data = load_dataset({"name": "digits", "random_flip": flip})
        tr = Trainer({**cfg, "data": {"name": "digits", "random_flip": flip}}, data, tmp_path / str(flip))
        gen = torch.Generator().manual_seed(tr.tc.seed + 1)
        x, _ = tr.batch()
        plain = data.train[torch.randint(len(data.train), (400,), generator=gen)]
        flipped = (x != plain).flatten(1).any(1).float().mean()
        assert (0.35 < flipped < 0.65) if flip else flipped == 0
        assert torch.equal(torch.where((x == plain).flatten(1).all(1)[:, None, None, None], plain, plain.flip(-1)), x)
