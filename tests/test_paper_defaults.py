"""Defaults equal the papers' (the packaged copy of paper_tables.yaml, `sampler_defaults`)."""
import inspect

from sgm_bench.models import FAMILIES, build_sde
from sgm_bench.report.build import paper_tables
from sgm_bench.samplers import SAMPLERS, ode, pc
from sgm_bench.samplers.registry import SAMPLING_EPS
from sgm_bench.train import TrainConfig

REF = paper_tables()["sampler_defaults"]


def test_process_defaults():
    ve, vp, sub = build_sde("ve"), build_sde("vp"), build_sde("subvp")
    assert (ve.sigma_min, ve.sigma_max, ve.N) == (REF["vesde"]["sigma_min"], REF["vesde"]["sigma_max"], REF["vesde"]["N"])
    for s, key in ((vp, "vpsde"), (sub, "subvpsde")):
        assert (s.beta_0, s.beta_1, s.N) == (REF[key]["beta_min"], REF[key]["beta_max"], REF[key]["N"])
    assert SAMPLING_EPS == {"ve": REF["vesde"]["sampling_eps"], "vp": REF["vpsde"]["sampling_eps"],
                            "subvp": REF["subvpsde"]["sampling_eps"]}


def test_ncsn_and_ddpm_defaults():
    n = build_sde("ncsn")
    assert (n.sigma_max, n.sigma_min, n.N) == (REF["ncsn"]["sigma_max"], REF["ncsn"]["sigma_min"], REF["ncsn"]["N"])
    assert FAMILIES["ncsn"].lr == REF["ncsn"]["lr"]
    assert SAMPLERS["annealed_langevin"].defaults["n_steps_each"] == REF["ncsn"]["n_steps_each"]
    d = build_sde("ddpm").schedule
    assert abs(float(d.betas[0]) - REF["ddpm"]["beta_start"]) < 1e-9 and abs(float(d.betas[-1]) - REF["ddpm"]["beta_end"]) < 1e-9
    assert d.T == REF["ddpm"]["T"] and FAMILIES["ddpm"].lr == REF["ddpm"]["lr"]
    tc = TrainConfig()
    assert (tc.warmup, tc.grad_clip, tc.ema) == (REF["ddpm"]["warmup"], REF["ddpm"]["grad_clip"], REF["ddpm"]["ema"])


def test_pc_and_ode_defaults():
    spec = SAMPLERS["pc"].defaults
    assert (spec["snr"], spec["n_steps_each"]) == (REF["pc"]["snr"], REF["pc"]["n_steps_each"])
    assert inspect.signature(pc).parameters["snr"].default == REF["pc"]["snr"]
    o = SAMPLERS["ode"].defaults
    assert (o["method"].upper(), o["rtol"], o["atol"]) == (REF["ode"]["method"], REF["ode"]["rtol"], REF["ode"]["atol"])
    assert inspect.signature(ode).parameters["rtol"].default == REF["ode"]["rtol"]
