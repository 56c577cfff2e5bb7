"""Issue 10's wrong numbers and misleading cells, each with a check that fails on the old behaviour; and every
applicable sampler at every configured step count on real trained networks (an exact score is finite where a network
is not: the DDIM NaN passed the oracle tests)."""
import math
from pathlib import Path

import pytest
import torch
import yaml

from sgm_bench import samplers as S
from sgm_bench.evaluation import sample_quality, status_of, toy_floor
from sgm_bench.chain import make_chain
from sgm_bench.errors import ConfigError
from sgm_bench.spec import load_dataset
from sgm_bench.guidance import classifier_free
from sgm_bench.likelihood import dequantized_bpd
from sgm_bench.metrics.toy import SlicedReference, mmd_rbf
from sgm_bench.models import FAMILIES, build_sde
from sgm_bench.plan import Evaluation, build_plan
from sgm_bench.samplers.registry import SAMPLERS, resolved_options
from sgm_bench.sde import DDPMSchedule
from sgm_bench.train import Trainer
from sgm_bench.vlb import decoder_loglik, vlb_terms

REPO = Path(__file__).resolve().parents[1]


def test_ncsn_refuses_continuous_time_samplers_and_edm_heun_steps_on_its_levels(toy):
    """Item 3: a 10-level NCSN's score is piecewise constant in t; the ODE and EM are refused with the reason, EDM
    Heun asks the score only at the model's own levels (EDM's round_sigma)."""
    gm = toy("mixture2d")
    sde = build_sde("ncsn", sigma_min=1.0, sigma_max=20.0, N=10)
    for name in ("ode", "euler_maruyama"):
        with pytest.raises(ConfigError, match="noise-level index"):
            S.sample(name, gm.score_fn(sde), sde, (8, 2), family="ncsn")
    asked = []

    def score(x, t):
        asked.append(float(sde.discrete_sigmas[sde.index(t)[0]]))
        return gm.score_fn(sde)(x, t)

    r = S.sample("edm_heun", score, sde, (8, 2), steps=25, sigma_min=1.0, sigma_max=20.0)
    levels = {round(float(s), 4) for s in sde.discrete_sigmas}
    assert {round(a, 4) for a in asked} <= levels and r.nfe <= 2 * 10 - 1  # at most one Heun step per level pair


def test_respaced_chain_walks_the_models_own_steps():
    """Item 3: fewer steps walk a sub-sequence of the model's chain (improved-DDPM respacing): every alpha-bar of the
    respaced chain is one of the model's; the chain composes to the same alpha-bar product."""
    sde = build_sde("ddpm")
    ch = make_chain(sde, 50, 1e-3)
    ab = sde.schedule.alphas_cumprod
    assert len(ch) == 50 and ch.steps[0] == 999 and ch.steps[-1] == 0
    assert torch.allclose(ch["alpha_bar"], ab[ch.steps])
    assert torch.allclose(torch.prod(1 - ch["beta"].double()), ab[999].double(), rtol=1e-4)
    assert [int(i) for i in sde.index(ch.t)] == ch.steps  # the query times mean exactly those steps
    with pytest.raises(ConfigError, match="exceed the model's 1000-step chain"):
        make_chain(sde, 2000, 1e-3)
    with pytest.raises(ConfigError, match="never trained on"):
        make_chain(sde, 50, 1e-3, respace="rebuild")


def test_default_configuration_never_shows_a_cheaper_setting_under_a_samplers_name():
    """Item 4: a job named after a sampler runs that sampler's paper options; cheaper settings are named variants."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    plan = build_plan(cfg)
    for job in plan.jobs:
        if job.name == job.sampler:  # nothing but the process-dependent paper defaults (pc's Table 5 snr)
            kind = FAMILIES[plan.models[job.model].family].sde
            assert job.options == resolved_options(job.sampler, {}, kind), (job.model, job.name, job.options)
    assert SAMPLERS["annealed_langevin"].defaults["n_steps_each"] == 100  # NCSN: T = 100
    assert SAMPLERS["corrector_only"].defaults["n_steps_each"] == 2  # score_sde's C2000: 1000 levels x 2
    steps = {(j.model, j.name): j.steps for j in plan.jobs}
    assert 1000 in steps[("ve-mixture2d", "corrector_only")] and 1000 in steps[("vp-mixture2d", "pc")]
    nr = {(m, s) for m, s, _ in plan.not_run}
    assert ("ve-digits", "corrector_only") in nr and ("ncsn-digits", "annealed_langevin") in nr


def test_vlb_with_beta_tilde_is_finite_at_step_zero():
    """Item 6: beta-tilde_0 = 0 made L_0 NaN; Ho et al. clip it to beta-tilde_1."""
    s = DDPMSchedule()
    assert float(s.variance("beta_tilde")[0]) == pytest.approx(float(s.posterior_variance[1]))
    x0 = torch.rand(4, 1, 2, 2) * 2 - 1
    i = torch.zeros(4, dtype=torch.long)
    out = vlb_terms(s, x0, x0, i, x0, "beta_tilde", levels=17)
    assert torch.isfinite(out).all()


def test_discretized_decoder_takes_its_edges_from_the_data_range_not_the_batch():
    """Item 6: a batch without black pixels must not treat its darkest level as the open bottom cell."""
    K = 17
    levels = torch.tensor([3.0, 8.0])
    x0 = 2 * (levels + 0.5) / K - 1  # cell centres (sgm_bench.data.images)
    mu, var = x0.clone(), torch.full_like(x0, 0.05)
    ll = decoder_loglik(x0, mu, var, K)
    width = 2 / K
    inner = math.log(math.erf(width / 2 / math.sqrt(2 * 0.05)))  # P(|N(0, var)| < width / 2)
    assert torch.allclose(ll, torch.full_like(ll, inner), atol=1e-5)
    top = decoder_loglik(torch.tensor([1 - 1 / K]), torch.tensor([1 - 1 / K]), torch.tensor([0.05]), K)
    open_above = math.log(0.5 * (1 + math.erf(width / 2 / math.sqrt(2 * 0.05))))  # P(N(0, var) > -width / 2)
    assert float(top) == pytest.approx(open_above, abs=1e-5)  # the top cell is open to +inf


def test_classifier_free_guidance_counts_both_network_calls(toy):
    """Item 6: the guided score calls two networks; NFE counts both."""
    gm = toy("mixture2d")
    sde = build_sde("vp")
    fn = classifier_free(gm.score_fn(sde), gm.score_fn(sde), w=1.0)
    assert S.sample("euler_maruyama", fn, sde, (4, 2), steps=10).nfe == 20


def test_likelihood_nfe_is_per_solve_not_summed_over_repeats(toy):
    """Item 6: two dequantization repeats are two solves; the NFE of one is reported."""
    data = load_dataset({"name": "synthetic", "n": 60, "size": 4})
    gm = toy("mixture2d")
    sde = build_sde("vp")
    score = lambda x, t: -x / (sde.std(t)[:, None, None, None] ** 2 + sde.mean_coeff(t)[:, None, None, None] ** 2)  # noqa: E731
    _, _, nfe1 = dequantized_bpd(score, sde, data.images, data.images.test[:2], repeats=1, rtol=1e-3, atol=1e-3)
    _, _, nfe2 = dequantized_bpd(score, sde, data.images, data.images.test[:2], repeats=2, rtol=1e-3, atol=1e-3)
    assert abs(nfe2 - nfe1) < 0.3 * nfe1
    assert gm is not None


def test_partly_non_finite_batches_are_counted_and_diverged_ones_report_no_quality(toy):
    """Item 7: non-finite samples are counted in the status; beyond 10 % the row is diverged, with no quality."""
    data = load_dataset({"name": "mixture2d", "n_train": 500, "n_test": 500})
    ev = Evaluation(100, 1, 100)
    x = data.toy.sample(100, torch.Generator().manual_seed(0))
    x[:5] = float("nan")
    row = sample_quality(data, x, ev, None, 0)
    assert row["status"] == "partial (5/100 non-finite)" and row["n_nonfinite"] == 5 and math.isfinite(row["sw"])
    assert row["reference_split"] == "train"
    x[:50] = float("inf")
    row = sample_quality(data, x, ev, None, 0)
    assert row["status"].startswith("diverged (50/100") and "sw" not in row
    assert status_of(0, 10) == "ok"


def test_toy_floor_is_a_distribution_over_draws():
    """Item 8: the floor is mean and 5-95 % range over repeated exact draws at the evaluated n, not one lucky pair."""
    data = load_dataset({"name": "mixture2d", "n_train": 2000, "n_test": 500})
    fl = toy_floor(data, 250, Evaluation(250, 1, 100, floor_draws=12))
    sw = fl["sw"]
    assert sw["draws"] == 12 and sw["p05"] < sw["mean"] < sw["p95"]
    assert "mode_weight_error" in fl and fl["n"] == 250


def test_mmd_equals_its_closed_form_between_two_gaussians():
    """Unbiased RBF-MMD^2 between N(0, I) and N(mu, I) in d = 2 at bandwidth h: E k over x - y ~ N(m, 2I) is
    (h^2 / (h^2 + 2))^(d/2) exp(-|m|^2 / (2 (h^2 + 2))), so
    MMD^2 = 2 h^2 / (h^2 + 2) (1 - exp(-|mu|^2 / (2 (h^2 + 2))))."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3000, 2, generator=g), torch.randn(3000, 2, generator=g) + torch.tensor([1.0, 0.0])
    h = 1.0
    exact = 2 * h**2 / (h**2 + 2) * (1 - math.exp(-1 / (2 * (h**2 + 2))))
    assert abs(mmd_rbf(a, b, bandwidth=h) - exact) < 0.01
    assert abs(mmd_rbf(a, torch.randn(3000, 2, generator=g), bandwidth=h)) < 0.005



def test_sliced_wasserstein_in_one_dimension_is_w2_at_every_sample_size():
    """In 1-D every unit direction is +-1, so SW_2 is W_2 of the sorted samples; one reference scores samples of
    several sizes (its sorted projections kept per n) against its first n points."""
    g = torch.Generator().manual_seed(0)
    ref = SlicedReference(torch.randn(400, 1, generator=g))
    for n in (300, 120, 300, 400):
        a = 1.5 * torch.randn(n, 1, generator=g) + 0.3
        exact = (a.double().sort(0).values - ref.b[:n].sort(0).values).pow(2).mean().sqrt()
        assert ref(a) == pytest.approx(float(exact), rel=1e-12)

# --- every sampler on real trained networks ---------------------------------------------------------------------

def trained(family, tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    spec = dict(cfg["models"][f"{family}-digits"])
    spec["data"] = cfg["datasets"]["digits"]
    spec["train"] = {**spec["train"], "steps": 60, "batch_size": 32, "warmup": 10, "ckpt_every": 60, "progress": False}
    data = load_dataset(spec["data"])
    t = Trainer(spec, data, tmp_path / family)
    t.run()
    return t.model.eval(), cfg


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ncsn", "ddpm", "ve", "vp", "subvp"])
def test_every_applicable_sampler_on_a_trained_digits_network_is_finite(family, tmp_path):
    model, cfg = trained(family, tmp_path)
    plan = build_plan(cfg)
    jobs = [(j.name, j.sampler, j.steps, j.options) for j in plan.jobs if j.model == f"{family}-digits"]
    not_run = {s for m, s, _ in plan.not_run if m == f"{family}-digits"} - {j[1] for j in jobs}
    assert {j[1] for j in jobs} | not_run == set(S.applicable(family))  # each runs, or its row says where it does
    jobs += [(s, s, (10,), resolved_options(s, {}, FAMILIES[family].sde)) for s in not_run]
    for name, sampler, grid, options in jobs:
        for steps in grid:
            opts = {**options, **({"n_steps_each": 1} if sampler == "annealed_langevin" else {})}
            r = S.sample(sampler, model.score_fn(), model.sde, (6, 1, 8, 8), steps=steps, family=family, **opts)
            assert torch.isfinite(r.x).all(), (name, steps)
