"""Parameterizations convert through one place; networks have the paper's sizes; the CLI fails in one line."""
import subprocess
import sys

import pytest
import torch

from sgm_bench.errors import ConfigError
from sgm_bench.models import build_model, build_sde
from sgm_bench.nets import UNet, parameter_count
from sgm_bench.params import NoiseLevel, score_to_eps, score_to_x0, to_score


def test_every_parameterization_gives_the_same_score_for_consistent_outputs():
    """With x_t = m x0 + s eps the true score is -eps/s; each parameterization's exact output must map to it."""
    sched = build_sde("ddpm").schedule
    i = torch.tensor([5, 300, 900])
    ab = sched.alphas_cumprod[i]
    n = NoiseLevel(ab.sqrt(), (1 - ab).sqrt(), sched.posterior_mean_coef1[i], sched.posterior_mean_coef2[i])
    x0, eps = torch.randn(3, 4), torch.randn(3, 4)
    xt = n.m[:, None] * x0 + n.s[:, None] * eps
    truth = -eps / n.s[:, None]
    outputs = {"eps": eps, "x0": x0, "score": truth, "scaled_score": truth * n.s[:, None],
               "mu": sched.q_posterior_mean(x0, xt, i)}
    for param, out in outputs.items():
        assert torch.allclose(to_score(param, out, xt, n), truth, atol=1e-3, rtol=1e-4), param
    assert torch.allclose(score_to_eps(truth, xt, n), eps, atol=1e-5)
    assert torch.allclose(score_to_x0(truth, xt, n), x0, atol=1e-3)
    with pytest.raises(ConfigError, match="valid choices"):
        to_score("v", eps, xt, n)


def test_ddpm_cifar10_unet_has_the_papers_35_7M_parameters():
    net = UNet((3, 32, 32), ch=128, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=0.1)
    assert abs(parameter_count(net) / 1e6 - 35.7) < 0.1


@pytest.mark.parametrize("family", ["ncsn", "ddpm", "ve", "vp", "subvp"])
def test_image_models_map_shapes_and_discrete_models_use_their_levels(family):
    m = build_model(family, (1, 8, 8), {"name": "unet", "ch": 16})
    x, t = torch.randn(5, 1, 8, 8), torch.rand(5)
    assert m.score(x, t).shape == x.shape
    if family == "ncsn":  # the discrete SMLD model sees sigma_i exactly, not the continuous sigma(t)
        assert torch.allclose(m.noise_level(torch.tensor([1 / 9])).s, m.sde.discrete_sigmas[1:2])


def test_class_conditional_network_uses_labels():
    m = build_model("vp", (2,), {"name": "mlp"}, num_classes=3)
    x, t = torch.randn(4, 2), torch.rand(4)
    a, b = m.score(x, t, torch.zeros(4, dtype=torch.long)), m.score(x, t, torch.full((4,), 2))
    assert not torch.allclose(a, b)
    assert torch.allclose(m.score(x, t), m.score(x, t, torch.full((4,), 3)))  # no label = the null token


def test_index_embedding_refused_for_continuous_families():
    with pytest.raises(ConfigError, match="discrete family"):
        build_model("vp", (2,), {"name": "mlp", "embedding": "index"})


def test_cli_reports_errors_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {name: mixture2d}\nmodel: {family: ddpn}\ntrain: {steps: 2}\n")
    out = subprocess.run([sys.executable, "-m", "sgm_bench.cli", "train", str(bad), "--run-dir", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("sgm-bench: error: unknown model family 'ddpn'") and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "sgm_bench.cli", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "ddpm" in out.stdout and "dpm_solver" in out.stdout


def test_cli_help_answers_without_importing_torch_and_list_prints_the_registries():
    from sgm_bench.data import IMAGES, TOYS
    from sgm_bench.models import FAMILIES
    from sgm_bench.samplers import applicable

    probe = ("import sys, contextlib, io; from sgm_bench.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit): main(['--help'])\n"
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-m", "sgm_bench.cli", "list"], capture_output=True, text=True)
    assert out.stdout.splitlines() == [f"{f:<7} samplers: {', '.join(applicable(f))}" for f in FAMILIES.names()] + [
        f"datasets: {', '.join(TOYS.names() + IMAGES.names())}"]


@pytest.mark.parametrize("embedding,scale", [("sinusoidal", 999.0), ("fourier", 1.0)])
def test_continuous_vp_time_enters_at_the_embeddings_scale(embedding, scale):
    m = build_model("vp", (2,), {"name": "mlp", "embedding": embedding})
    t = torch.tensor([0.25, 1.0])
    assert torch.allclose(m.label(t), t * scale)


@pytest.mark.parametrize("N", [10, 232, 1000])
def test_discrete_ddpm_label_is_the_step_on_its_chain_and_t_n_for_continuous_solvers(N):
    """A discrete DDPM's network sees its integer step i on the chain (Ho et al., DDIM, diffusers), and score_sde's
    t (N - 1) when a continuous-time solver asks (the probability-flow ODE then integrates a continuous drift); its
    noise level stays the floored step's either way. NCSN's index embedding keeps the integer step."""
    from sgm_bench.chain import grid, time_of_step

    ddpm = build_model("ddpm", (2,), {"name": "mlp"}, sde={"N": N, "beta_max": 5.0})
    i = torch.arange(N)
    on_grid = grid(N, 1e-3)  # where the chain samplers ask: score_sde's linspace(T, eps, N), step N - 1 - k
    assert torch.equal(ddpm.label(on_grid), (N - 1 - i).float()) and torch.equal(ddpm.label(time_of_step(i, N)), i.float())
    t = torch.tensor([0.5 / (N - 1), 0.3, 0.77])
    assert torch.allclose(ddpm.label(t, continuous=True), t * (N - 1))
    assert float((ddpm.label(time_of_step(i, N), continuous=True) - i).abs().max()) < 1e-3
    assert torch.equal(ddpm.noise_level(t).s, (1 - ddpm.sde.schedule.alphas_cumprod[ddpm.sde.index(t)]).sqrt())
    ncsn = build_model("ncsn", (2,), {"name": "mlp"}, sde={"N": N})
    assert torch.equal(ncsn.label(t, continuous=True), ncsn.sde.index(t).float())


def test_the_continuous_time_solvers_are_the_ones_that_ask_at_t_n():
    from sgm_bench.samplers import SAMPLERS

    assert sorted(n for n, s in SAMPLERS.items() if s.continuous_time) == ["euler_maruyama", "ode"]
