"""Agreement with the field's reference code on shared inputs and shared noise, at the papers' settings.

- DDPM ancestral and DDIM against diffusers' DDPMScheduler / DDIMScheduler (a test-only dependency), for the discrete
  `ddpm` family (an epsilon model at integer steps) and the continuous `vp` family (the exact score at the time whose
  marginal has alpha-bar_i);
- NCSN's annealed Langevin dynamics (with NCSNv2's final denoising step) against ermongroup/ncsn's and ncsnv2's image
  code, restated here;
- EDM Heun (deterministic and churned) and DPM-Solver++(2M) against k-diffusion's `sample_heun` / `sample_dpmpp_2m`,
  restated here from its source;
- the SDE coefficients, the predictors, the Langevin corrector and the full 1000-step PC loop against score_sde's
  `sde_lib` / `sampling` equations, and its ODE sampler (with its noise removal) and ODE likelihood (`likelihood_fn`,
  the same Hutchinson probe), restated here.

The model in every case is the exact score of a Gaussian mixture: x = m x0 + s z has the density of the mixture
convolved with N(0, (s/m)^2 I), rescaled by m, written here without the suite's SDE code. Tolerance 1e-4 in float32
(absolute, on samples whose modes sit at +-5) unless a test says otherwise.
"""
import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from sgm_bench import samplers as S
from sgm_bench.data import TOYS
from sgm_bench.models import build_sde
from sgm_bench.samplers.base import NoiseSource

TOL = 1e-4
B = 64


def exact_score(gm, x, m, s):
    """grad log of the law of m x0 + s z (x0 from the mixture) at x: (1/m) score_{mixture * N(0, (s/m)^2)}(x / m)."""
    m, s = float(m), float(s)
    return gm.score(x / m, None, noise_std=s / m) / m


@pytest.fixture(scope="module")
def gm():
    return TOYS["mixture2d"]()


def alphas_cumprod():
    """DDPM's linear betas 1e-4 -> 0.02 over 1000 steps, in float64."""
    return torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)


def shared_noise(seed, shape):
    """Our per-sample noise streams; the reference loop draws from the same object in the same order."""
    return NoiseSource(seed, range(shape[0]), shape[1:])


def diffusers_ddpm(gm, variance_type, seed=0, steps=1000, clip=False):
    """diffusers' DDPMScheduler over `steps` of the 1000 ('leading' spacing), its variance noise from our streams."""
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                          variance_type=variance_type, clip_sample=clip, timestep_spacing="leading")
    sched.set_timesteps(steps)
    ab = alphas_cumprod()
    noise = shared_noise(seed, (B, 2))
    x = noise.randn()
    import diffusers.schedulers.scheduling_ddpm as mod

    original = mod.randn_tensor
    mod.randn_tensor = lambda shape, **kw: noise.randn()
    try:
        for i in sched.timesteps.tolist():
            eps = -math.sqrt(1 - ab[i]) * exact_score(gm, x, ab[i].sqrt(), (1 - ab[i]).sqrt())
            x = sched.step(eps, i, x).prev_sample
    finally:
        mod.randn_tensor = original
    return x


def discrete_eps_score(gm, sde):
    """A `ddpm` model: the exact score of the chain's marginal q(x_i), asked at step i = the suite's step of t."""
    ab = alphas_cumprod()

    def score(x, t):
        i = int(sde.index(t)[0])
        return exact_score(gm, x, ab[i].sqrt(), (1 - ab[i]).sqrt())

    return score


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("steps", [1000, 50])
@pytest.mark.parametrize("variance,variance_type", [("beta", "fixed_large"), ("beta_tilde", "fixed_small")])
def test_ddpm_ancestral_matches_diffusers_ddpm_scheduler(gm, variance, variance_type, steps, clip):
    """All 1000 steps, and 50 on diffusers' 'leading' sub-sequence (skip='uniform'; beta' = 1 - a / a_prev); with
    clip, x0 clipped to [-1, 1] as Ho et al.'s code and diffusers' clip_sample (the mixture lies partly outside it)."""
    sde = build_sde("ddpm")
    ours = S.sample("ancestral", discrete_eps_score(gm, sde), sde, (B, 2), seed=0, variance=variance, steps=steps,
                    skip="uniform", clip_denoised=clip).x
    ref = diffusers_ddpm(gm, variance_type, steps=steps, clip=clip)
    assert (ours - ref).abs().max() < TOL, (ours - ref).abs().max()
    assert not clip or ours.abs().max() <= 1 + TOL  # the last step returns the clipped x0


def test_ddpm_chain_visits_every_step_once():
    """A planted bug: rounding t (N - 1) visits step 500 twice and step 0 never."""
    sde = build_sde("ddpm")
    seen = []
    S.sample("ancestral", lambda x, t: seen.append(int(sde.index(t)[0])) or torch.zeros_like(x), sde, (2, 1))
    assert seen == list(range(999, -1, -1))


def diffusers_ddim(gm, steps, eta, seed=0, clip=False):
    sched = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                          clip_sample=clip, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
    sched.set_timesteps(steps)
    ab = alphas_cumprod()
    noise = shared_noise(seed, (B, 2))
    x = noise.randn()
    ts = sched.timesteps.tolist()
    for k, i in enumerate(ts):
        eps = -math.sqrt(1 - ab[i]) * exact_score(gm, x, ab[i].sqrt(), (1 - ab[i]).sqrt())
        z = noise.randn() if k < len(ts) - 1 and eta > 0 else torch.zeros_like(x)
        x = sched.step(eps, i, x, eta=eta, variance_noise=z).prev_sample
    return x


@pytest.mark.parametrize("family", ["ddpm", "vp"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers_ddim_scheduler(gm, family, eta):
    """Both families, 50 steps (the paper's uniform skip, diffusers' 'leading'); the continuous VP model is asked at
    the time whose marginal has alpha-bar_i (the exact score there is the exact epsilon of step i)."""
    sde = build_sde(family)
    score = discrete_eps_score(gm, sde) if family == "ddpm" else gm.score_fn(sde)
    ours = S.sample("ddim", score, sde, (B, 2), steps=50, eta=eta, seed=0).x
    ref = diffusers_ddim(gm, 50, eta)
    assert torch.isfinite(ours).all()
    assert (ours - ref).abs().max() < TOL, (ours - ref).abs().max()


def test_ddim_clip_denoised_matches_diffusers_clip_sample(gm):
    """x0_hat clipped to [-1, 1], the direction term keeping the model's epsilon (diffusers' clip_sample). At 10 steps:
    clipped deterministic DDIM on this mixture amplifies float32 rounding (at 50 steps a 1e-7 difference at step 25
    ends in another mode for 24 of 64 samples)."""
    sde = build_sde("ddpm")
    ours = S.sample("ddim", discrete_eps_score(gm, sde), sde, (B, 2), steps=10, eta=0.0, seed=0, clip_denoised=True).x
    ref = diffusers_ddim(gm, 10, 0.0, clip=True)
    assert (ours - ref).abs().max() < TOL, (ours - ref).abs().max()
    assert (ours - diffusers_ddim(gm, 10, 0.0)).abs().max() > 0.1  # clipping binds on this mixture


def test_ddim_on_the_continuous_vp_family_is_finite_at_its_default_eps(gm):
    """A NaN once seen: the last step asked the model at t = 0, where the marginal std is 0."""
    sde = build_sde("vp")
    x = S.sample("ddim", gm.score_fn(sde), sde, (B, 2), steps=10).x
    assert torch.isfinite(x).all()


# --- k-diffusion's samplers, restated from crowsonkb/k-diffusion (k_diffusion/sampling.py) -------------------------

def k_sample_heun(denoise, x, sigmas, noise=None, s_churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    for i in range(len(sigmas) - 1):
        gamma = min(s_churn / (len(sigmas) - 1), 2**0.5 - 1) if s_tmin <= sigmas[i] <= s_tmax else 0.0
        eps = noise.randn() * s_noise if noise is not None else 0.0  # randn_like every step
        sigma_hat = sigmas[i] * (gamma + 1)
        if gamma > 0:
            x = x + eps * (sigma_hat**2 - sigmas[i] ** 2) ** 0.5
        d = (x - denoise(x, sigma_hat)) / sigma_hat
        dt = sigmas[i + 1] - sigma_hat
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = (x_2 - denoise(x_2, sigmas[i + 1])) / sigmas[i + 1]
            x = x + (d + d_2) / 2 * dt
    return x


def k_sample_dpmpp_2m(denoise, x, sigmas):
    t_fn = lambda s: -math.log(s)  # noqa: E731
    old = None
    for i in range(len(sigmas) - 1):
        denoised = denoise(x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            h = t_fn(sigmas[i + 1]) - t_fn(sigmas[i])
            if old is None:
                x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * denoised
            else:
                r = (t_fn(sigmas[i]) - t_fn(sigmas[i - 1])) / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old
                x = (sigmas[i + 1] / sigmas[i]) * x - math.expm1(-h) * d
        old = denoised
    return x


def karras(n, lo, hi, rho=7.0):
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    s = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return s.tolist() + [0.0]


@pytest.mark.parametrize("family", ["ve", "vp"])
@pytest.mark.parametrize("churn", [{}, {"S_churn": 5.0, "S_tmin": 0.05, "S_tmax": 50.0, "S_noise": 1.003}])
def test_edm_heun_matches_k_diffusion(gm, family, churn):
    """Deterministic (EDM Alg. 1) and stochastic Heun (Alg. 2: EDM's S_tmin, S_tmax, S_noise; S_churn 5, below the
    sqrt(2) - 1 clamp at 18 steps, so gamma = S_churn / N is seen), on shared noise."""
    sde = build_sde(family)
    lo, hi = (0.02, 50.0) if family == "ve" else (0.02, 80.0)
    denoise = lambda x, s: x + s**2 * exact_score(gm, x, 1.0, s)  # noqa: E731 - x_hat = x0 + sigma z
    noise = shared_noise(0, (B, 2))
    z = noise.randn()
    ref = k_sample_heun(denoise, z * hi, karras(18, lo, hi), noise, **{k.lower(): v for k, v in churn.items()})
    ours = S.sample("edm_heun", gm.score_fn(sde), sde, (B, 2), steps=18, sigma_min=lo, sigma_max=hi, seed=0, **churn)
    assert ours.nfe == 2 * 18 - 1
    assert (ours.x - ref).abs().max() < TOL


@pytest.mark.parametrize("family", ["vp"])
def test_dpm_solver_2m_matches_k_diffusion(gm, family):
    sde = build_sde(family)
    lo, hi = 0.02, 50.0
    denoise = lambda x, s: x + s**2 * exact_score(gm, x, 1.0, s)  # noqa: E731
    sig = torch.exp(torch.linspace(math.log(hi), math.log(lo), 20, dtype=torch.float64)).tolist() + [0.0]
    z = shared_noise(0, (B, 2)).randn()
    ref = k_sample_dpmpp_2m(denoise, z * hi, sig)
    ours = S.sample("dpm_solver", gm.score_fn(sde), sde, (B, 2), steps=20, sigma_min=lo, sigma_max=hi, seed=0)
    assert ours.nfe == 20
    assert (ours.x - ref).abs().max() < TOL


# --- NCSN's annealed Langevin dynamics, restated from ermongroup/ncsn (anneal_runner) and ermongroup/ncsnv2 ------------

def ncsn_anneal_langevin(score, x, sigmas, noise, n_steps_each, step_lr, denoise):
    """ncsnv2's `anneal_Langevin_dynamics` (ncsn's image runner is the same loop without `denoise`): sigmas descending,
    score(x, c) at level c; step = step_lr (sigma / sigma_L)^2, x <- x + step s + sqrt(2 step) z."""
    for c, sigma in enumerate(sigmas):
        step_size = step_lr * (sigma / sigmas[-1]) ** 2
        for _ in range(n_steps_each):
            grad = score(x, c)
            x = x + step_size * grad + noise.randn() * math.sqrt(step_size * 2)
    if denoise:
        x = x + sigmas[-1] ** 2 * score(x, len(sigmas) - 1)
    return x


@pytest.mark.parametrize("denoise", [False, True])
def test_annealed_langevin_matches_ncsn_code(gm, denoise):
    """NCSN's image setting on the mixture (modes at +-5): L = 10 geometric sigmas 20 -> 0.5, T = 20 steps per level,
    step_lr 2e-3; the network is the exact score at level i, asked by our sampler at its time t (step i of t)."""
    sde = build_sde("ncsn", sigma_min=0.5, sigma_max=20.0, N=10)
    levels = sde.level_sigmas().tolist()  # ascending with the step i
    ours_score = lambda x, t: exact_score(gm, x, 1.0, levels[int(sde.index(t)[0])])  # noqa: E731
    noise = shared_noise(0, (B, 2))
    noise.randn()  # the sampler's prior draw, unused by the uniform start
    x = (noise.rand() * 2 - 1) * 8.0
    ref = ncsn_anneal_langevin(lambda x, c: exact_score(gm, x, 1.0, levels[::-1][c]), x, levels[::-1], noise,
                               n_steps_each=20, step_lr=2e-3, denoise=denoise)
    ours = S.sample("annealed_langevin", ours_score, sde, (B, 2), family="ncsn", seed=0, n_steps_each=20,
                    step_lr=2e-3, init="uniform", init_range=8.0, denoise=denoise)
    assert ours.nfe == 10 * 20 + denoise
    assert (ours.x - ref).abs().max() < TOL, (ours.x - ref).abs().max()


# --- score_sde's sde_lib and sampling, restated from yang-song/score_sde_pytorch --------------------------------------

def score_sde_vp(N=1000, beta_min=0.1, beta_max=20.0):
    betas = torch.linspace(beta_min / N, beta_max / N, N)
    return {"betas": betas, "alphas": 1 - betas}


def test_sde_coefficients_match_score_sde():
    x, t = torch.randn(5, 2), torch.tensor([1e-3, 0.1, 0.37, 0.8, 1.0])
    vp = build_sde("vp")
    beta = 0.1 + t * (20 - 0.1)
    drift, g = vp.sde(x, t)
    assert torch.allclose(drift, -0.5 * beta[:, None] * x) and torch.allclose(g, beta.sqrt())
    lmc = (-0.25 * t.double() ** 2 * (20 - 0.1) - 0.5 * t.double() * 0.1)  # in float64: score_sde's 1 - exp(2 lmc)
    mean, std = vp.marginal_prob(x, t)  # loses digits near t = 0 in float32, where the suite's expm1 does not
    assert torch.allclose(mean, torch.exp(lmc).float()[:, None] * x)
    assert torch.allclose(std, torch.sqrt(1 - torch.exp(2 * lmc)).float(), rtol=1e-5)
    ve = build_sde("ve")
    sigma = 0.01 * (50 / 0.01) ** t
    _, g = ve.sde(x, t)
    assert torch.allclose(g, sigma * math.sqrt(2 * (math.log(50) - math.log(0.01))), rtol=1e-5)
    sub = build_sde("subvp")
    td = t.double()
    discount = 1 - torch.exp(-2 * 0.1 * td - (20 - 0.1) * td**2)
    _, g = sub.sde(x, t)
    assert torch.allclose(g, torch.sqrt((0.1 + td * (20 - 0.1)) * discount).float(), rtol=1e-5)
    # discretize: score_sde's `timestep = (t * (N - 1) / T).long()`
    ref = score_sde_vp()
    i = (t * 999).long()
    f, G = vp.discretize(x, t)
    assert torch.allclose(f, torch.sqrt(ref["alphas"][i])[:, None] * x - x, atol=1e-6) and torch.allclose(G, ref["betas"][i].sqrt())
    sig = torch.exp(torch.linspace(math.log(0.01), math.log(50), 1000))
    f, G = ve.discretize(x, t)
    adj = torch.where(i == 0, torch.zeros_like(t), sig[(i - 1).clamp(min=0)])
    assert torch.allclose(G, torch.sqrt(sig[i] ** 2 - adj**2))


def score_sde_pc(score_fn, kind, x, noise, snr=0.16, n_steps=1, eps=1e-3, N=1000):
    """score_sde's pc_sampler with ReverseDiffusionPredictor and LangevinCorrector, written from their code."""
    ts = torch.linspace(1.0, eps, N)
    if kind == "vp":
        c = score_sde_vp()
    else:
        sig = torch.exp(torch.linspace(math.log(0.01), math.log(50), N))
    x_mean = x
    for t in ts:
        vt = torch.full((x.shape[0],), float(t))
        i = (vt * (N - 1)).long()
        alpha = c["alphas"][i] if kind == "vp" else torch.ones_like(vt)
        for _ in range(n_steps):
            grad, z = score_fn(x, vt), noise.randn()
            gn, zn = grad.reshape(len(x), -1).norm(dim=-1).mean(), z.reshape(len(x), -1).norm(dim=-1).mean()
            step = (snr * zn / gn) ** 2 * 2 * alpha
            x_mean = x + step[:, None] * grad
            x = x_mean + torch.sqrt(step * 2)[:, None] * z
        if kind == "vp":
            beta = c["betas"][i]
            f, G = torch.sqrt(1 - beta)[:, None] * x - x, beta.sqrt()
        else:
            adj = torch.where(i == 0, torch.zeros_like(vt), sig[(i - 1).clamp(min=0)])
            f, G = torch.zeros_like(x), torch.sqrt(sig[i] ** 2 - adj**2)
        rev_f = f - G[:, None] ** 2 * score_fn(x, vt)
        x_mean = x - rev_f
        x = x_mean + G[:, None] * noise.randn()
    return x_mean


@pytest.mark.parametrize("family", ["vp", "ve"])
def test_full_1000_step_pc_loop_matches_score_sde(gm, family):
    sde = build_sde(family)
    eps = 1e-3 if family == "vp" else 1e-5
    noise = shared_noise(0, (B, 2))
    snr = {"vp": 0.01, "ve": 0.16}[family]  # Table 5's best r with the reverse-diffusion predictor: pc's default
    ref = score_sde_pc(gm.score_fn(sde), family, noise.randn() * sde.prior_std, noise, snr=snr, eps=eps)
    ours = S.sample("pc", gm.score_fn(sde), sde, (B, 2), seed=0, eps=eps)
    assert ours.nfe == 2000
    assert (ours.x - ref).abs().max() < TOL, (ours.x - ref).abs().max()


def test_euler_maruyama_predictor_matches_score_sde(gm):
    sde = build_sde("subvp")
    noise = shared_noise(3, (B, 2))
    x = noise.randn()
    N, eps = 100, 1e-3
    for t in torch.linspace(1.0, eps, N):
        vt = torch.full((B,), float(t))
        drift, g = sde.sde(x, vt)
        drift = drift - g[:, None] ** 2 * gm.score_fn(sde)(x, vt)
        x_mean = x + drift * (-1.0 / N)
        x = x_mean + g[:, None] * math.sqrt(1.0 / N) * noise.randn()
    ours = S.sample("euler_maruyama", gm.score_fn(sde), sde, (B, 2), steps=N, seed=3, eps=eps)
    assert (ours.x - x_mean).abs().max() < TOL  # score_sde's noise_removal: the last mean


def score_sde_pf_drift(score_fn, family, x, vt):
    """score_sde's probability-flow drift f - g^2 s / 2 of the VE, VP and sub-VP SDEs (sde_lib, default settings)."""
    if family == "ve":
        f, g = torch.zeros_like(x), 0.01 * (50 / 0.01) ** vt * math.sqrt(2 * (math.log(50) - math.log(0.01)))
    else:
        beta = 0.1 + vt * (20 - 0.1)
        f, g = -0.5 * beta[:, None] * x, torch.sqrt(beta)
        if family == "subvp":
            g = torch.sqrt(beta * (1 - torch.exp(-2 * 0.1 * vt - (20 - 0.1) * vt**2)))
    return f - g[:, None] ** 2 * score_fn(x, vt) * 0.5


def score_sde_denoise(score_fn, family, x, eps, N=1000):
    """score_sde's denoise_update_fn: the ReverseDiffusionPredictor's mean at t = eps, x - f + G^2 s."""
    vt = torch.full((x.shape[0],), eps)
    i = int(eps * (N - 1))  # score_sde's timestep
    if family == "ve":
        sig = torch.exp(torch.linspace(math.log(0.01), math.log(50), N))
        f, G2 = torch.zeros_like(x), float(sig[i] ** 2 - (sig[i - 1] ** 2 if i > 0 else 0.0))
    elif family == "vp":
        beta = float(score_sde_vp()["betas"][i])
        f, G2 = math.sqrt(1 - beta) * x - x, beta
    else:  # sub-VP: the base class's Euler-Maruyama discretization, dt = 1 / N
        beta = 0.1 + eps * (20 - 0.1)
        f = -0.5 * beta * x / N
        G2 = beta * (1 - math.exp(-2 * 0.1 * eps - (20 - 0.1) * eps**2)) / N
    return x - (f - G2 * score_fn(x, vt))


@pytest.mark.parametrize("family", ["ve", "vp", "subvp"])
@pytest.mark.parametrize("denoise,eps", [(False, None), (True, None), (True, 0.05)])
def test_ode_sampler_matches_score_sde(gm, family, denoise, eps):
    """score_sde's ode_sampler: scipy RK45 on flattened arrays from T to eps (rtol = atol = 1e-5), then its denoising
    step when `noise_removal` is on (its default); NFE counts that step, as the suite counts every evaluation. At its
    eps the step is tiny; at eps = 0.05 it tells a reverse-diffusion step from a Tweedie step."""
    from scipy.integrate import solve_ivp

    sde, eps = build_sde(family), eps or (1e-5 if family == "ve" else 1e-3)
    score = gm.score_fn(sde)
    z = shared_noise(0, (B, 2)).randn() * sde.prior_std

    def ode_func(t, y):
        x = torch.as_tensor(y, dtype=torch.float32).reshape(B, 2)
        return score_sde_pf_drift(score, family, x, torch.full((B,), float(t))).numpy().reshape(-1)

    sol = solve_ivp(ode_func, (1.0, eps), z.numpy().reshape(-1), rtol=1e-5, atol=1e-5, method="RK45")
    ref = torch.as_tensor(sol.y[:, -1], dtype=torch.float32).reshape(B, 2)
    ref = score_sde_denoise(score, family, ref, eps) if denoise else ref
    ours = S.sample("ode", score, sde, (B, 2), seed=0, eps=eps, denoise=denoise)
    assert ours.nfe == sol.nfev + denoise
    assert (ours.x - ref).abs().max() < TOL, (ours.x - ref).abs().max()


def score_sde_likelihood(score_fn, family, data, probe, eps=1e-5, rtol=1e-5, atol=1e-5):
    """score_sde's likelihood_fn: RK45 from eps to T on [x, logp] as flat arrays, the drift and the Hutchinson
    divergence from two calls (the second under grad), the probe fixed; -log p in nats per example."""
    from scipy.integrate import solve_ivp

    B = data.shape[0]

    def ode_func(t, y):
        x, vt = torch.as_tensor(y[:-B], dtype=torch.float32).reshape(data.shape), torch.full((B,), float(t))
        drift = score_sde_pf_drift(score_fn, family, x, vt)
        with torch.enable_grad():
            x.requires_grad_(True)
            fn_eps = torch.sum(score_sde_pf_drift(score_fn, family, x, vt) * probe)
            grad = torch.autograd.grad(fn_eps, x)[0]
        div = torch.sum(grad * probe, dim=1)
        return np.concatenate([drift.detach().numpy().reshape(-1), div.numpy()])

    sol = solve_ivp(ode_func, (eps, 1.0), np.concatenate([data.numpy().reshape(-1), np.zeros(B)]), rtol=rtol,
                    atol=atol, method="RK45")
    z, delta = torch.as_tensor(sol.y[:-B, -1]).reshape(data.shape), torch.as_tensor(sol.y[-B:, -1])
    s = 50.0 if family == "ve" else 1.0
    prior = -0.5 * 2 * math.log(2 * math.pi * s**2) - (z**2).sum(1) / (2 * s**2)
    return -(prior + delta), sol.nfev


@pytest.mark.parametrize("family", ["ve", "vp", "subvp"])
def test_ode_likelihood_matches_score_sde(gm, family):
    """The same data and Rademacher probe: the suite's one-call divergence gives score_sde's two-call NLL, on the same
    RK45 path (equal NFE). Sub-VP differs by ~1e-4 nats: score_sde's 1 - exp(-2 int beta) loses digits near t = eps
    in float32, where the suite's expm1 does not."""
    from sgm_bench.likelihood import ode_nll

    sde, score = build_sde(family), gm.score_fn(build_sde(family))
    data = gm.sample(16, torch.Generator().manual_seed(0)).float()
    probe = torch.randint(0, 2, data.shape, generator=torch.Generator().manual_seed(1)).float() * 2 - 1
    ref, nfev = score_sde_likelihood(score, family, data, probe)
    ours = ode_nll(score, sde, data, probe=probe)
    assert ours.nfe == nfev
    assert (ours.nll - ref).abs().max() < (1e-3 if family == "subvp" else 1e-5), (ours.nll - ref).abs().max()
