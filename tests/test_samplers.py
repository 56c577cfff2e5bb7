"""Every applicable sampler, fed the exact score of a Gaussian mixture, against fresh data; no training involved."""
import pytest
import torch
from conftest import oracle_error

from sgm_bench import samplers as S
from sgm_bench.errors import ConfigError
from sgm_bench.metrics import sliced_wasserstein
from sgm_bench.models import build_sde
from sgm_bench.samplers.base import NoiseSource

N = 2000
WEIGHT_TOL, SW_TOL = 0.04, 0.2  # fresh data vs fresh data: weight error <= 0.012, within-mode SW <= 0.14 (n = 2000)
CASES = [(toy, fam, name) for toy in ("mixture2d", "mixture1d") for fam in ("ve", "vp", "subvp")
         for name in S.applicable(fam) if name != "annealed_langevin"]  # annealed Langevin: tested on NCSN's own setting


def run(toy, fam, name, scale=1.0, **opts):
    sde = build_sde(fam)
    exact = toy.score_fn(sde)
    return S.sample(name, lambda x, t: scale * exact(x, t), sde, (N, toy.dim), family=fam, seed=1, **opts)


@pytest.mark.parametrize("toy_name,fam,name", CASES)
def test_sampler_with_exact_score_matches_data(toy, toy_name, fam, name):
    gm = toy(toy_name)
    ref = gm.sample(N, torch.Generator().manual_seed(5))
    werr, sw = oracle_error(gm, run(gm, fam, name).x, ref)
    assert werr < WEIGHT_TOL and sw < SW_TOL, (werr, sw)


BROKEN = {name: fam for t, fam, name in CASES}  # one process per sampler keeps the suite short


@pytest.mark.parametrize("fam,name", [(f, n) for n, f in BROKEN.items()])
@pytest.mark.parametrize("scale", [-1.0, 0.5])
def test_tolerance_fails_a_broken_score(toy, fam, name, scale):
    """The same check rejects the sampler when the score has a sign error or is halved."""
    gm = toy("mixture2d")
    ref = gm.sample(N, torch.Generator().manual_seed(5))
    werr, sw = oracle_error(gm, run(gm, fam, name, scale=scale).x, ref)
    assert werr >= WEIGHT_TOL or sw >= SW_TOL, (werr, sw)


def ncsn_toy_process():
    """NCSN's toy setting (Song & Ermon 2019, sec. 3.2.2): L = 10 geometric sigmas 20 -> 1."""
    return build_sde("ncsn", sigma_min=1.0, sigma_max=20.0, N=10)


def test_ncsn_mixing_langevin_fails_annealed_recovers_weights(toy):
    """Fig. 3: plain Langevin from uniform points gets 1/5 : 4/5 wrong; annealed Langevin recovers it within 0.03."""
    gm = toy("mixture2d")
    plain = S.sample("langevin", gm.score_fn(None), None, (N, 2), family="score", steps=1000, step_size=0.1)
    sde = ncsn_toy_process()
    ann = S.sample("annealed_langevin", gm.score_fn(sde), sde, (N, 2), family="ncsn", step_lr=0.05, init="uniform",
                   init_range=8.0)
    w_plain, w_ann = gm.mode_weights(plain.x), gm.mode_weights(ann.x)
    assert (w_plain - gm.weights).abs().max() > 0.15
    assert (w_ann - gm.weights).abs().max() < 0.03
    assert ann.nfe == 10 * 100


def test_ncsn_mixing_check_catches_a_broken_annealed_sampler(toy):
    gm = toy("mixture2d")
    sde = ncsn_toy_process()
    broken = S.sample("annealed_langevin", lambda x, t: 0.5 * gm.score(x, sde, t), sde, (N, 2), family="ncsn",
                      step_lr=0.05, init="uniform", init_range=8.0)
    werr, sw = oracle_error(gm, broken.x, gm.sample(N, torch.Generator().manual_seed(5)))
    assert werr >= 0.03 or sw >= SW_TOL


@pytest.mark.parametrize("name,opts,expected", [
    ("pc", {}, 2 * 1000), ("pc", {"denoise": True}, 2 * 1000 + 1), ("pc", {"steps": 100, "n_steps_each": 2}, 300),
    ("euler_maruyama", {"steps": 50}, 50), ("reverse_diffusion", {}, 1000), ("corrector_only", {"steps": 25}, 50),
    ("ancestral", {"steps": 30, "denoise": True}, 31), ("ddim", {"steps": 10}, 10), ("edm_heun", {}, 35),
    ("dpm_solver", {}, 20), ("ode", {"method": "euler", "steps": 40}, 40), ("ode", {"method": "heun", "steps": 40}, 80),
])
def test_nfe_equals_hand_count(toy, name, opts, expected):
    gm = toy("mixture1d")
    sde = build_sde("vp")
    assert S.sample(name, gm.score_fn(sde), sde, (8, 1), family="vp", **opts).nfe == expected


@pytest.mark.parametrize("method", ["rk45", "dopri5"])
def test_adaptive_ode_reports_solver_nfe(toy, method):
    gm = toy("mixture1d")
    sde = build_sde("vp")
    r = S.sample("ode", gm.score_fn(sde), sde, (16, 1), family="vp", method=method)
    assert r.nfe == r.info["solver_nfe"] > 10


@pytest.mark.parametrize("name,opts", [("pc", {"norm": "per_sample", "steps": 50}), ("ancestral", {"steps": 50}),
                                       ("ddim", {"eta": 1.0, "steps": 20}), ("edm_heun", {"S_churn": 10.0}),
                                       ("euler_maruyama", {"steps": 50})])
def test_sample_k_depends_only_on_seed_and_k(toy, name, opts):
    gm = toy("mixture2d")
    sde = build_sde("vp")
    full = S.sample(name, gm.score_fn(sde), sde, (12, 2), seed=3, family="vp", **opts).x
    part = S.sample(name, gm.score_fn(sde), sde, (5, 2), seed=3, family="vp", first_index=4, **opts).x
    other = S.sample(name, gm.score_fn(sde), sde, (5, 2), seed=4, family="vp", first_index=4, **opts).x
    assert torch.allclose(full[4:9], part, atol=1e-5)
    assert not torch.allclose(part, other, atol=1e-3)


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (1, 8, 8)])
def test_noise_chunk_is_a_speed_setting_not_part_of_the_stream(shape):
    """Drawing 512 steps at a time (the toys' CPU default) gives the noise of 32 at a time, uniform draws in between
    (langevin's initial points) included: a chunk that changed the stream would change every committed number."""
    def draws(chunk):
        noise = NoiseSource(7, range(3, 9), shape, chunk=chunk)
        first, init = noise.randn(), noise.rand()
        return torch.stack([first, init, *(noise.randn() for _ in range(700))])

    assert torch.equal(draws(32), draws(512))
    assert torch.equal(draws(None), draws(32))


@pytest.mark.parametrize("name,family", [("ddim", "ve"), ("ancestral", "subvp"), ("langevin", "vp"),
                                         ("dpm_solver", "ncsn"), ("annealed_langevin", "ddpm")])
def test_inapplicable_pair_lists_valid_choices(toy, name, family):
    gm = toy("mixture1d")
    sde = build_sde(family)
    with pytest.raises(ConfigError, match="applicable: .*(pc|langevin)"):
        S.sample(name, gm.score_fn(sde), sde, (4, 1), family=family)
    with pytest.raises(ConfigError, match="applicable"):
        S.sample(name, gm.score_fn(sde), sde, (4, 1))  # inferred from the process alone


def test_unknown_sampler_and_option_fail_clearly(toy):
    gm = toy("mixture1d")
    sde = build_sde("vp")
    with pytest.raises(ConfigError, match="valid choices: .*ancestral"):
        S.sample("heun2", gm.score_fn(sde), sde, (4, 1))
    with pytest.raises(ConfigError, match="no option"):
        S.sample("pc", gm.score_fn(sde), sde, (4, 1), snrr=0.1)
    with pytest.raises(ConfigError, match="positive"):
        S.sample("pc", gm.score_fn(sde), sde, (4, 1), steps=-3)


def test_applicability_table():
    assert set(S.applicable("score")) == {"langevin"}
    assert "ddim" in S.applicable("ddpm") and "ddim" not in S.applicable("ve")
    assert "ancestral" not in S.applicable("subvp")
    assert {"pc", "ode", "euler_maruyama", "reverse_diffusion", "corrector_only"} <= set(S.applicable("subvp"))
    assert set(S.names()) >= {"langevin", "annealed_langevin", "ancestral", "ddim", "euler_maruyama",
                              "reverse_diffusion", "pc", "corrector_only", "ode", "edm_heun", "dpm_solver"}


def test_ddim_eta1_full_steps_matches_ddpm_ancestral(toy):
    """DDIM eq. 16 with eta = 1 on all 1000 steps is DDPM's sampler with sigma_t^2 = beta-tilde_t."""
    gm = toy("mixture1d")
    sde = build_sde("ddpm")
    a = S.sample("ddim", gm.score_fn(sde), sde, (N, 1), steps=1000, eta=1.0, seed=1).x
    b = S.sample("ancestral", gm.score_fn(sde), sde, (N, 1), variance="beta_tilde", seed=2).x
    c = S.sample("ddim", gm.score_fn(sde), sde, (N, 1), steps=1000, eta=0.0, seed=1).x
    floor = sliced_wasserstein(gm.sample(N, torch.Generator().manual_seed(8)), gm.sample(N, torch.Generator().manual_seed(9)))
    assert sliced_wasserstein(a, b) < 2 * floor
    assert abs(a.std() - b.std()) < 0.05
    assert not torch.allclose(a, c)  # eta changes the process (not a no-op)


@pytest.mark.parametrize("method", ["rk45", "dopri5"])
def test_probability_flow_encode_decode_round_trip(toy, method):
    gm = toy("mixture2d")
    sde = build_sde("vp")
    x = gm.sample(64, torch.Generator().manual_seed(3))
    z, _ = S.ode_flow(gm.score_fn(sde), sde, x, 1e-3, 1.0, method)
    back, _ = S.ode_flow(gm.score_fn(sde), sde, z, 1.0, 1e-3, method)
    assert (back - x).abs().max() < 1e-2
    assert abs(z.std() - 1) < 0.25  # the code is (close to) the N(0, I) prior


def test_ddim_sigma_hat_on_all_steps_is_ddpm_ancestral_with_beta(toy):
    """DDIM Table 1's sigma-hat row on the full step set is DDPM's sampler with sigma_t^2 = beta_t."""
    gm = toy("mixture1d")
    sde = build_sde("ddpm")
    a = S.sample("ddim", gm.score_fn(sde), sde, (N, 1), steps=1000, eta="sigma_hat", seed=1).x
    b = S.sample("ancestral", gm.score_fn(sde), sde, (N, 1), variance="beta", seed=2).x
    floor = sliced_wasserstein(gm.sample(N, torch.Generator().manual_seed(8)), gm.sample(N, torch.Generator().manual_seed(9)))
    assert sliced_wasserstein(a, b) < 2 * floor
    werr, sw = oracle_error(gm, S.sample("ddim", gm.score_fn(sde), sde, (N, 1), steps=100, eta="sigma_hat").x,
                            gm.sample(N, torch.Generator().manual_seed(5)))
    assert werr < WEIGHT_TOL and sw < SW_TOL


def test_vp_chain_respaced_at_few_steps_but_rebuilt_chain_refused(toy):
    """10 steps walk a sub-sequence of the 1000-step chain; score_sde's rebuilt 10-step chain has beta >= 1."""
    gm = toy("mixture1d")
    sde = build_sde("vp")
    with pytest.raises(ConfigError, match="beta_N = beta_max / N = 2 >= 1"):
        S.sample("reverse_diffusion", gm.score_fn(sde), sde, (8, 1), steps=10, respace="rebuild")
    assert torch.isfinite(S.sample("reverse_diffusion", gm.score_fn(sde), sde, (8, 1), steps=10).x).all()
    assert torch.isfinite(S.sample("euler_maruyama", gm.score_fn(sde), sde, (8, 1), steps=10).x).all()


@pytest.mark.parametrize("family,sde_kw,first,last", [("vp", {}, 80.0, 0.002), ("ve", {"sigma_max": 50.0}, 50.0, 0.01)])
def test_edm_sigma_range_is_clamped_to_the_process(family, sde_kw, first, last):
    """EDM's [0.002, 80] as generate.py uses it: clamped to the process's own [sigma(0), sigma(T)]."""
    sde = build_sde(family, **sde_kw)
    asked = []

    def score(x, t):
        asked.append(float(sde.sigma(t[:1].double())))
        return torch.zeros_like(x)

    S.sample("edm_heun", score, sde, (2, 1), steps=18, sigma_min=0.002, sigma_max=80.0)
    assert asked[0] == pytest.approx(first, rel=1e-4) and asked[-1] == pytest.approx(last, rel=1e-3)


def test_euler_maruyamas_last_step_gain_is_what_it_does_to_a_gaussian_residual():
    """On data that is a point (score exact: -(x - m x0) / s^2), one EM step at t = eps scales x - m x0 by the gain
    the caveat names (up to the drift's O(|dt|) term); rows whose gain is below -1 carry the note, others none."""
    from sgm_bench.models import build_sde
    from sgm_bench.samplers.registry import caveat, last_step_gain

    sde = build_sde("vp")
    eps, S = 1e-3, 25
    t = torch.full((4,), eps, dtype=torch.float64)
    m, s = sde.mean_coeff(t), sde.std(t)
    r = torch.randn(4, 3, dtype=torch.float64)
    x = r  # x0 = 0
    drift, g = sde.reverse(lambda x, t: -x / s[:, None] ** 2).sde(x, t)
    out = x + drift * (-sde.T / S)
    assert (out / r).mean().item() == pytest.approx(last_step_gain(sde, S, eps), rel=1e-3)
    assert last_step_gain(sde, S, eps) == pytest.approx(-42.6, abs=0.05)
    assert "-42.6" in caveat("euler_maruyama", sde, S, {}) and caveat("euler_maruyama", sde, 1000, {}) is None
    assert caveat("pc", sde, S, {"predictor": "euler_maruyama"}) and caveat("pc", sde, S, {}) is None
    assert caveat("euler_maruyama", build_sde("ve"), 50, {}) is None
