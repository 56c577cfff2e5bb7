"""Defaults equal the papers' (the packaged copy of paper_tables.yaml, `sampler_defaults`)."""
import inspect
from pathlib import Path

import pytest
import yaml

from sgm_bench.models import FAMILIES, build_sde
from sgm_bench.plan import build_plan
from sgm_bench.report.build import paper_tables
from sgm_bench.samplers import SAMPLERS, ode, pc
from sgm_bench.samplers.pc import best_snr
from sgm_bench.samplers.registry import SAMPLING_EPS
from sgm_bench.train import TrainConfig

REF = paper_tables()["sampler_defaults"]
REPO = Path(__file__).resolve().parents[1]


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
    assert (spec["predictor"], spec["n_steps_each"]) == ("reverse_diffusion", REF["pc"]["n_steps_each"])
    assert best_snr("ve", spec["predictor"]) == REF["pc"]["snr"]  # score_sde's VE configs
    o = SAMPLERS["ode"].defaults
    assert (o["method"].upper(), o["rtol"], o["atol"]) == (REF["ode"]["method"], REF["ode"]["rtol"], REF["ode"]["atol"])
    assert inspect.signature(ode).parameters["rtol"].default == REF["ode"]["rtol"]


@pytest.mark.parametrize("config", ["paper.yaml", "digits_protocol.yaml"])
def test_score_sde_table1_corrector_cells_use_its_table5_snr(config):
    """Table 1's C2000 and PC1000 cells were sampled at the best r of each setting (Table 5), not at PC's default."""
    table = paper_tables()["score_sde_table1"]
    cfg = yaml.safe_load((REPO / "config" / config).read_text())
    jobs = {(j.model, j.name): j for j in build_plan(cfg).jobs}
    checked = 0
    for cell in cfg["paper_cells"]:
        if cell["table"] != "score_sde_table1" or cell["column"] not in ("C2000", "PC1000"):
            continue
        row = table["rows"][cell["row"]]
        key = "C2000" if cell["column"] == "C2000" else f"PC1000_{row['predictor'].replace('_sampling', '')}"
        assert jobs[cell["model"], cell["sampler"]].options.get("snr") == table["best_snr"][row["sde"]][key], cell
        checked += 1
    assert checked == 12


def test_pc_snr_defaults_to_score_sde_table5():
    """Without an snr, pc and corrector_only take Table 5's best r of their process and predictor (sub-VP: VP's)."""
    table = paper_tables()["score_sde_table1"]["best_snr"]
    for kind, sde_key in [("ve", "VE"), ("vp", "VP"), ("subvp", "VP")]:
        assert best_snr(kind, "none") == table[sde_key]["C2000"]
        for predictor in ("ancestral", "reverse_diffusion", "probability_flow"):
            assert best_snr(kind, predictor) == table[sde_key][f"PC1000_{predictor}"], (kind, predictor)
    assert inspect.signature(pc).parameters["snr"].default is None
