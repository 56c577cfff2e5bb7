"""Training: learning against the oracle score, exact resume after a crash, NaN guard, checkpoint errors."""
from pathlib import Path

import pytest
import torch

from sgm_bench.errors import CheckpointError, ConfigError, NonFiniteLossError
from sgm_bench.spec import load_dataset
from sgm_bench.train import Trainer, load_model


def toy_cfg(family="vp", steps=60, **train):
    return {"data": {"name": "mixture2d", "n_train": 2000},
            "model": {"family": family, "net": {"name": "mlp", "hidden": 64, "depth": 2}},
            "train": {"steps": steps, "batch_size": 64, "warmup": 1, "lr": 2e-3, "ema": 0.99, "ckpt_every": 20,
                      "progress": False, **train}}


def oracle_score_error(model, gm, sde, n=2000):
    g = torch.Generator().manual_seed(0)
    x0 = gm.sample(n, g)
    t = torch.rand(n, generator=g) * 0.9 + 0.1
    mean, std = sde.marginal_prob(x0, t)
    xt = mean + std[:, None] * torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        err = (model.score(xt, t) - gm.score(xt, sde, t)) ** 2 * std[:, None] ** 2
    return float(err.sum(1).mean())


@pytest.mark.slow
def test_training_lowers_score_error_against_oracle(tmp_path):
    cfg = toy_cfg(steps=400)
    data = load_dataset(cfg["data"])
    tr = Trainer(cfg, data, tmp_path)
    before = oracle_score_error(tr.model, data.toy, tr.model.sde)
    tr.run()
    after = oracle_score_error(load_model(tmp_path / "model.pt"), data.toy, tr.model.sde)
    assert after < 0.5 * before, (before, after)


class Crash(Exception):
    pass


def _crash_at(k):
    def hook(step):
        if step == k:
            raise Crash

    return hook


def test_kill_and_resume_gives_identical_weights(tmp_path):
    cfg = toy_cfg(family="ddpm", steps=60)
    data = load_dataset(cfg["data"])
    Trainer(cfg, data, tmp_path / "straight").run()
    with pytest.raises(Crash):
        Trainer(cfg, data, tmp_path / "crashed").run(on_step=_crash_at(47))  # last checkpoint: step 40
    stats = Trainer(cfg, data, tmp_path / "crashed").run()
    assert stats["resumed_from"] == 40
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "crashed" / "model.pt", weights_only=True)
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert torch.equal(a["history"], b["history"])


def test_resume_detects_a_different_configuration(tmp_path):
    cfg = toy_cfg(steps=20)
    data = load_dataset(cfg["data"])
    Trainer(cfg, data, tmp_path / "run").run()
    other = toy_cfg(steps=40, batch_size=32)  # (a lower lr is allowed: test_refusals)
    # another configuration's checkpoints are never resumed: the run is set aside (kept) and retrained from scratch
    stats = Trainer(other, data, tmp_path / "run").run()
    assert stats["resumed_from"] is None and stats["steps"] == 40
    assert stats["retrained_over"] and Path(stats["retrained_over"], "model.pt").exists()


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path):
    cfg = toy_cfg(steps=60)
    data = load_dataset(cfg["data"])
    tr = Trainer(cfg, data, tmp_path)
    real_forward = tr.model.net.forward

    def poisoned(x, c=None, y=None):
        out = real_forward(x, c, y)
        return out * float("nan") if tr.step >= 25 else out

    tr.model.net.forward = poisoned
    with pytest.raises(NonFiniteLossError, match="step 26.*step_00000020.pt"):
        tr.run()
    ckpts = sorted((tmp_path / "checkpoints").glob("*.pt"))
    assert [p.name for p in ckpts] == ["step_00000020.pt"]
    ck = torch.load(ckpts[0], weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (tmp_path / "model.pt").exists()


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    cfg = toy_cfg(steps=20)
    data = load_dataset(cfg["data"])
    Trainer(cfg, data, tmp_path).run()
    ck = tmp_path / "checkpoints" / "step_00000020.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        Trainer(toy_cfg(steps=40), data, tmp_path).run()
    assert ck.stat().st_size == 100  # nothing overwritten


def test_bad_train_options_fail_before_training(tmp_path):
    data = load_dataset({"name": "mixture2d", "n_train": 100})
    with pytest.raises(ConfigError, match="unknown train option"):
        Trainer(toy_cfg(stepz=3), data, tmp_path)
    with pytest.raises(ConfigError, match="steps must be a whole number >= 1"):
        Trainer(toy_cfg(steps=-1), data, tmp_path)
    with pytest.raises(ConfigError, match="valid choices: .*ddpm"):
        Trainer({**toy_cfg(), "model": {"family": "ddpn"}}, data, tmp_path)


def test_ema_warms_up_instead_of_remembering_the_initialisation(tmp_path):
    """score_sde's EMA decay min(decay, (1+n)/(10+n)): after 100 steps at decay 0.9999 the EMA follows the weights."""
    cfg = toy_cfg(steps=100, ema=0.9999)
    data = load_dataset(cfg["data"])
    tr = Trainer(cfg, data, tmp_path)
    init = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.run()
    ema, now = tr.ema.module.state_dict(), tr.model.state_dict()
    to_now = sum(float((ema[k] - now[k]).norm()) for k in now if now[k].is_floating_point())
    to_init = sum(float((ema[k] - init[k]).norm()) for k in now if now[k].is_floating_point())
    assert to_now < 0.2 * to_init


def test_bf16_autocast_trains_with_finite_loss(tmp_path):
    cfg = toy_cfg(steps=10, bf16=True)
    stats = Trainer(cfg, load_dataset(cfg["data"]), tmp_path).run()
    assert stats["steps"] == 10 and stats["final_loss"] == stats["final_loss"]
    assert stats["train_config"]["bf16"] is True


def test_fidelity_wrapper_is_importable_from_metrics():
    from sgm_bench.metrics import fidelity_metrics
    from sgm_bench.metrics.fidelity import fidelity_metrics as direct

    assert fidelity_metrics is direct


def test_the_evaluation_model_is_frozen_and_its_likelihood_is_unchanged(tmp_path):
    """load_model freezes the weights (EDM's requires_grad_(False)): the likelihood's reverse pass then records no graph
    through them, and every nll and latent is bit-identical to the trainable model's."""
    import copy

    from sgm_bench.likelihood import ode_nll

    cfg = toy_cfg(steps=5)
    data = load_dataset(cfg["data"])
    Trainer(cfg, data, tmp_path).run()
    frozen = load_model(tmp_path / "model.pt")
    assert not any(p.requires_grad for p in frozen.parameters())
    trainable = copy.deepcopy(frozen).requires_grad_(True)
    x = data.test[:16]
    a, b = (ode_nll(m.score_fn(), m.sde, x, seed=3) for m in (frozen, trainable))
    assert a.nfe == b.nfe and torch.equal(a.nll, b.nll) and torch.equal(a.z, b.z)
