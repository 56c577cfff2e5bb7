"""The tables and figures a reader sees: paper tables laid out as the papers print them and filled where measured,
the Pareto front, the mapping of configuration cells to runs."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from sgm_bench.checks import load_yaml
from sgm_bench.errors import ConfigError
from sgm_bench.plan import build_plan, check_paper_cells
from sgm_bench.report.build import departures, ours_for_paper, paper_tables
from sgm_bench.report.plots import pareto_front
from sgm_bench.report.tables import leaderboard, paper_table

TABLES = paper_tables()


def _rows():
    rows = [{"model": "m", "variant": "ddim_quadratic", "sampler": "ddim", "steps": s, "seed_set": k, "n": 10,
             "fid": f, "status": "ok", "dataset": "digits", "n_nonfinite": 0}
            for s, fs in ((10, (20.0, 22.0)), (50, (9.0, 9.0))) for k, f in enumerate(fs)]
    lik = pd.DataFrame([{"model": "m", "dataset": "digits", "bpd": 2.5, "bpd_se": 0.01, "vlb_bpd": 2.9}])
    return pd.DataFrame(rows), lik


def test_paper_table_keeps_the_papers_rows_and_columns_with_ours_beside_each():
    t = TABLES["score_sde_table1"]
    pt = paper_table(t, {(4, "PC1000"): "12.3 ± 0.4"}, "digits")
    assert list(pt["sde"]) == [r["sde"] for r in t["rows"]] and list(pt["predictor"]) == [r["predictor"] for r in t["rows"]]
    for c in t["columns"]:
        assert list(pt[f"{c}: cifar10 (paper)"]) == [str(r[c]) for r in t["rows"]]
    assert pt.loc[4, "PC1000: ours (digits)"] == "12.3 ± 0.4"
    assert (pt.drop(index=4)["PC1000: ours (digits)"] == "not run").all()  # never a blank cell


def test_ours_for_paper_fills_cells_from_the_variant_steps_and_likelihood():
    rows, lik = _rows()
    cells = [{"table": "ddim_table1", "row": 0, "column": 10, "model": "m", "sampler": "ddim_quadratic", "steps": 10},
             {"table": "ddim_table1", "row": 0, "column": 50, "model": "m", "sampler": "ddim_quadratic", "steps": 50},
             {"table": "ddpm_table1", "row": 1, "column": "nll_test", "model": "m", "metric": "vlb_bpd"},
             {"table": "score_sde_table2", "row": 3, "column": "nll", "model": "m", "metric": "bpd"}]
    ours, datasets = ours_for_paper(rows, cells, lik)
    assert ours["ddim_table1"] == {(0, "10"): "21 ± 12.7", (0, "50"): "9"}  # mean ± 95 % t interval (1 dof: 12.7)
    assert ours["ddpm_table1"] == {(1, "nll_test"): "≤ 2.9"} and ours["score_sde_table2"] == {(3, "nll"): "2.5 ± 0.01 s.e."}
    assert datasets == {"ddim_table1": "digits", "ddpm_table1": "digits", "score_sde_table2": "digits"}
    pt = paper_table(TABLES["ddim_table1"], ours["ddim_table1"], "digits")
    assert pt.loc[0, "10: ours (digits)"] == "21 ± 12.7" and pt.loc[0, "10: cifar10 (paper)"] == "13.36"


def test_a_table_names_the_samples_its_quality_cells_score_where_fewer_than_the_papers():
    rows, _ = _rows()  # model m: two seed sets of 10, scored one by one
    pooled = rows.assign(model="p", n_generated=20, quality_over="the 2 seed sets pooled (n = 20)")
    full = rows.assign(model="f", n=50_000)
    full_pooled = rows.assign(model="q", n=10_000, n_generated=50_000, quality_over="the 5 seed sets pooled (n = 50000)")
    rows = pd.concat([rows, pooled, full, full_pooled])
    cells = [{"table": "ddim_table1", "row": 0, "column": 10, "model": m, "sampler": "ddim_quadratic", "steps": 10}
             for m in ("m", "p", "f", "q")] + [{"table": "ddpm_table1", "row": 1, "column": "nll_test", "model": "m",
                                           "metric": "vlb_bpd"}]
    text = departures("ddim_table1", cells, {"m": ["a named deviation"]}, None, rows)
    assert text == (" Departures from the paper: m: a named deviation; m: FID / IS / KID of each seed set's 10 samples, "
                    "not of the papers' 50 000 samples; p: FID / IS / KID of the 2 seed sets pooled (n = 20), not of "
                    "the papers' 50 000 samples.")
    assert departures("ddpm_table1", cells, {}, None, rows) == ""  # a likelihood cell scores no samples


def test_default_paper_cells_name_runs_of_the_configuration_and_a_bad_one_is_refused():
    cfg = load_yaml("config/config.yaml")
    plan = build_plan(cfg)
    check_paper_cells(plan, TABLES)
    assert len(cfg["paper_cells"]) >= 5
    for bad, why in (({"sampler": "ddim_quadratics"}, "runs no sampler"), ({"steps": 20}, "runs steps"),
                     ({"row": 9}, "has rows"), ({"model": "nope"}, "not an evaluated model")):
        cell = {"table": "ddim_table1", "row": 0, "column": 10, "model": "ddpm-digits", "sampler": "ddim_quadratic",
                "steps": 10, **bad}
        with pytest.raises(ConfigError, match=why):
            check_paper_cells(replace(plan, paper_cells=(cell,)), TABLES)


def test_pareto_front_keeps_only_settings_nothing_beats_on_both_axes():
    x, y = [1, 2, 3, 4, 5], [10, 12, 5, 6, 1]
    assert pareto_front(x, y) == [0, 2, 4]


def test_cost_table_shows_peak_memory_only_where_it_measures_the_sampler():
    from sgm_bench.report.tables import cost_table

    rows = pd.DataFrame([{"model": "m", "variant": "pc", "steps": 10, "nfe": 20, "seconds_per_sample": 0.00093926,
                          "peak_memory_mb": 884.875, "device": "cpu (x86_64)"},
                         {"model": "m", "variant": "ode", "steps": float("nan"), "nfe": 65.5,
                          "seconds_per_sample": 0.0117, "peak_memory_mb": 1234.5, "device": "cuda (H100)"}])
    t = cost_table(rows)
    assert list(t["peak GPU memory (MB)"]) == ["n/a", "1234"]
    assert "peak GPU memory (MB)" not in cost_table(rows.iloc[:1])  # a CPU-only table: no column of n/a
    assert list(t["s / sample"]) == ["0.000939", "0.0117"] and list(t["NFE (mean)"]) == ["20", "65.5"]
    assert list(t.index.get_level_values("steps")) == ["10", "adaptive"]


@pytest.mark.parametrize("kind", ["images", "toy"])
def test_a_sample_grid_of_a_sampler_whose_every_sample_diverged_says_so(tmp_path, kind):
    """The paper smoke run's untrained mu-models diverged on every sample and the grid crashed the evaluate job."""
    import torch

    from sgm_bench.spec import load_dataset
    from sgm_bench.metrics.toy import finite_only
    from sgm_bench.report.plots import sample_grid

    images = load_dataset({"name": "synthetic", "size": 8, "channels": 3, "n": 8}).images if kind == "images" else None
    x = torch.full((4, 3, 8, 8) if images else (4, 2), float("nan"))
    kept, bad = finite_only(x)
    assert (len(kept), bad) == (0, 4)
    sample_grid(kept, tmp_path / "grid", "all diverged", images, formats=("png",))
    assert (tmp_path / "grid.png").stat().st_size > 0


def _detector_rows():
    """One model scored by two detectors (as after a change of evaluation.extractor), one setting diverged."""
    row = {"model": "m", "variant": "pc", "sampler": "pc", "steps": 10, "n": 10, "status": "ok", "dataset": "digits",
           "n_nonfinite": 0, "nfe": 20, "seconds_per_sample": 0.01, "peak_memory_mb": 1.0, "device": "cpu",
           "reference_split": "train"}
    return [{**row, "seed_set": k, "fid": f, "extractor": e, "domain_features": e == "digits-cnn",
             **({} if e == "digits-cnn" else {"is_note": "no IS: no logits"})}
            for k, (e, f) in enumerate((("digits-cnn", 2.0), ("inception-v3-tf-stylegan", 40.0)))] + \
        [{**row, "steps": 5, "seed_set": 0, "status": "diverged (10/10 non-finite)", "n_nonfinite": 10}]


def test_fids_of_two_detectors_are_never_averaged_into_one_cell():
    rows = pd.DataFrame(_detector_rows())
    cells = [{"table": "ddim_table1", "row": 0, "column": 10, "model": "m", "sampler": "pc", "steps": 10},
             {"table": "score_sde_table3", "row": 0, "column": "is", "model": "m", "sampler": "pc", "steps": 10,
              "metric": "is"}]
    ours, _ = ours_for_paper(rows, cells, pd.DataFrame())
    assert ours["ddim_table1"][(0, "10")] == "not averaged: rows of detectors digits-cnn, inception-v3-tf-stylegan"
    one = rows[rows["extractor"] == "inception-v3-tf-stylegan"]
    ours, _ = ours_for_paper(one, cells, pd.DataFrame())
    assert ours["ddim_table1"][(0, "10")] == "40" and ours["score_sde_table3"][(0, "is")] == "no IS: no logits"


def test_report_writes_one_sampler_table_per_detector(tmp_path):
    import json

    from sgm_bench.report.build import build

    (tmp_path / "metrics.json").write_text(json.dumps({"model": "m", "rows": _detector_rows(), "floor": None}))
    (tmp_path / "lik.json").write_text(json.dumps({"model": "m", "dataset": "digits", "bpd": 2.5, "bpd_se": 0.1}))
    (tmp_path / "m").mkdir()
    pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5]}).to_csv(tmp_path / "m" / "curve.csv", index=False)
    floor = tmp_path / "floor.json"
    fl = {"fid": {"mean": 1.0, "p05": 0.9, "p95": 1.1, "draws": 3}, "n": 10, "extractor": "digits-cnn"}
    floor.write_text(json.dumps({"dataset": "digits", "floor": fl}))
    build(tmp_path / "results", [tmp_path / "metrics.json"], [tmp_path / "lik.json"], [tmp_path / "m" / "curve.csv"],
          floor_files=[floor])
    tables = tmp_path / "results" / "tables"
    digits, ts = (tables / f"samplers_m_{e}" for e in ("digits-cnn", "inception-v3-tf-stylegan"))
    assert not (tables / "samplers_m.md").exists()
    caption = digits.with_suffix(".md").read_text().splitlines()[0]
    assert "digits-cnn features (not Inception)" in caption and "floor" in caption
    # the diverged setting stays in its model's table; each table holds its own detector's FID only
    assert list(pd.read_csv(digits.with_suffix(".csv"))["FID"]) == ["2", "diverged (10/10 non-finite)"]
    caption = ts.with_suffix(".md").read_text().splitlines()[0]
    assert "inception-v3-tf-stylegan features against" in caption and "floor" not in caption
    assert list(pd.read_csv(ts.with_suffix(".csv"))["FID"]) == [40]


def test_budget_table_picks_the_best_setting_that_fits_and_shows_ties():
    from sgm_bench.report.tables import budget_table

    def row(variant, steps, nfe, fid, seed, status="ok"):
        return {"model": "m", "variant": variant, "steps": steps, "nfe": nfe, "fid": fid, "seed_set": seed,
                "status": status, "n": 10}
    def setting(variant, steps, nfe, fids):
        return [row(variant, steps, nfe, f, k) for k, f in enumerate(fids)]
    rows = pd.DataFrame(setting("a", 10, 10, (30.0, 32.0, 31.0))                   # 31 ± 2.48 (t, 2 dof)
                        + setting("b", 10, 20, (20.0, 22.0, 21.0))                 # 21 ± 2.48 at 20 NFE
                        + setting("c", 5, 10, (32.0, 30.5, 31.5))                  # a + (2, -1.5, 0.5): tied
                        + setting("e", 6, 10, (31.5, 33.5, 32.5))                  # a + 1.5 at every seed set: worse,
                        + [row("d", 4, 8, 1.0, 0, "diverged (3/10 non-finite)")])  # though the intervals overlap
    t = budget_table(rows, budgets=(5, 10, 20))
    cells = t.loc[("m", "FID")]
    assert cells["≤ 5 NFE"] == "nothing fits"
    assert cells["≤ 10 NFE"].startswith("a 10 steps: 31 ± 2.48 (NFE 10)") and cells["≤ 10 NFE"].endswith("tied: c 5 steps")
    assert cells["≤ 20 NFE"].startswith("b 10 steps: 21 ± 2.48") and "tied" not in cells["≤ 20 NFE"]
    board = leaderboard(rows.assign(seconds_per_sample=0.1), "fid", "FID")
    assert board["vs best"].to_dict() == {("b", "10"): "best", ("a", "10"): "worse", ("c", "5"): "worse",
                                          ("e", "6"): "worse", ("d", "4"): ""}
    board = leaderboard(rows[rows["variant"] != "b"].assign(seconds_per_sample=0.1), "fid", "FID")
    assert board["vs best"].to_dict() == {("a", "10"): "best", ("c", "5"): "tied", ("e", "6"): "worse", ("d", "4"): ""}


def test_intervals_are_students_t_and_ties_need_two_shared_seed_sets():
    from scipy import stats as st

    from sgm_bench.report.stats import half_width, tied

    v = [3.0, 5.0, 4.5, 7.0, 6.1]
    lo, hi = st.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=st.sem(v))
    assert half_width(v) == pytest.approx((hi - lo) / 2, rel=1e-12)
    assert np.isnan(half_width([1.0])) and np.isnan(half_width([1.0, np.nan]))
    a = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])
    assert tied(a, a + 1) is False and tied(a, a) is True and tied(a, pd.Series([5.0, 0.0, 3.5])) is True
    assert tied(a, pd.Series([1.0], index=[0])) is None  # one shared seed set decides nothing


def test_numbers_table_holds_numbers_not_text():
    from sgm_bench.report.tables import numbers_table

    rows = pd.DataFrame([{"model": "m", "variant": "ode", "sampler": "ode", "steps": None, "nfe": n, "fid": f,
                          "status": "ok", "n": 10} for n, f in ((100, 20.0), (110, 22.0))])
    t = numbers_table(rows)
    assert t.loc[0, "fid_mean"] == 21.0 and t.loc[0, "fid_std"] == pytest.approx(2 ** 0.5) and t.loc[0, "nfe_mean"] == 105.0
    assert (t.loc[0, "fid_lower"], t.loc[0, "fid_upper"]) == pytest.approx((21 - 12.7062, 21 + 12.7062), abs=1e-4)
    assert pd.isna(t.loc[0, "steps"]) and t.loc[0, "seed_sets"] == 2


def test_budget_table_survives_an_all_diverged_image_model_and_drops_partly_diverged_settings():
    from sgm_bench.report.tables import budget_table

    def row(variant, fid, seed, status="ok"):
        return {"model": "m", "variant": variant, "steps": 10, "nfe": 10, "fid": fid, "seed_set": seed, "status": status, "n": 4}
    partly = pd.DataFrame([row("a", 5.0, 0), row("a", float("nan"), 1, "diverged (4/4 non-finite)"),
                           row("b", 20.0, 0), row("b", 22.0, 1)])
    assert budget_table(partly, budgets=(10,)).loc[("m", "FID"), "≤ 10 NFE"].startswith("b 10 steps")
    gone = pd.DataFrame([row("a", float("nan"), 0, "diverged (4/4 non-finite)")])
    assert budget_table(gone, budgets=(10,)).loc[("m", "FID"), "≤ 10 NFE"] == "nothing fits"


def test_long_reasons_are_notes_under_the_table_not_text_in_every_row():
    from sgm_bench.report.tables import likelihood_table

    rows = pd.DataFrame([{"model": "m", "variant": "ode", "sampler": "ode", "steps": None, "nfe": 50.0, "fid": 20.0,
                          "seed_set": 0, "status": "ok", "n": 10, "seconds_per_sample": 0.1}])
    why = "NCSN's network is labelled by a noise-level index"
    t = leaderboard(rows, "fid", "FID", not_run=[("c2000", "the protocol config runs it")],
                    not_applicable=[("ode2", why), ("em", why)])
    assert list(t["FID"])[1:] == ["not run (a)", "not applicable (b)", "not applicable (b)"]
    assert t.attrs["notes"] == f"(a) the protocol config runs it. (b) {why}."
    lik = pd.DataFrame([{"model": "m", "dataset": "digits", "bpd": 2.5, "bpd_se": 0.01, "vlb_bpd": 2.9, "status": "ok"},
                        {"model": "n", "dataset": "digits", "status": "not applicable", "note": why}])
    lt = likelihood_table(lik)
    assert lt.loc["n", "ODE bpd"] == "not applicable (a)" and why in lt.attrs["notes"]
    assert max(len(line) for line in lt.to_markdown().splitlines()) < 120


def test_a_setting_scored_by_two_detectors_is_never_ranked():
    """FIDs of two detectors are different numbers: such a setting gets no 'vs best' and never wins a budget."""
    from sgm_bench.report.tables import budget_table, versus_best

    def row(variant, fid, seed, extractor):
        return {"model": "m", "variant": variant, "steps": 10, "nfe": 10, "fid": fid, "seed_set": seed,
                "status": "ok", "n": 10, "extractor": extractor}
    rows = pd.DataFrame([row("a", 30.0, 0, "x"), row("a", 31.0, 1, "x"),
                         row("b", 1.0, 0, "x"), row("b", 2.0, 0, "y"), row("b", 1.5, 1, "x"), row("b", 2.5, 1, "y")])
    vs = versus_best(dict(list(rows.groupby(["variant", "steps"]))), "fid")
    assert vs == {("a", 10): "best"}
    assert budget_table(rows, budgets=(10,)).loc[("m", "FID"), "≤ 10 NFE"].startswith("a 10 steps")


def test_replicates_train_a_model_again_with_its_own_seed_and_cells_show_the_spread():
    """replicates: {trainings: 3, samplers: [...]}: vp-digits-r2 and -r3 train with seeds 1 and 2 and run only the
    named variant; a paper cell of the model reads mean ± 95 % t interval over the three trainings, then each."""
    from scipy import stats

    cfg = load_yaml("config/config.yaml")
    cfg["models"]["vp-digits"]["replicates"] = {"trainings": 3, "samplers": ["edm_heun"]}
    plan = build_plan(cfg)
    assert plan.trainings == {"vp-digits": ["vp-digits", "vp-digits-r2", "vp-digits-r3"]}
    assert [plan.models[m].train.get("seed", 0) for m in plan.trainings["vp-digits"]] == [0, 1, 2]
    assert [j.name for j in plan.jobs_of("vp-digits-r3")] == ["edm_heun"] and len(plan.jobs_of("vp-digits")) > 5
    assert "vp-digits-r2" in plan.benchmarked and plan.models["vp-digits-r2"].replicate_of == "vp-digits"
    rows = pd.DataFrame([{"model": m, "variant": "edm_heun", "sampler": "edm_heun", "steps": 18, "seed_set": k, "n": 10,
                          "fid": f + k, "status": "ok", "dataset": "digits", "n_nonfinite": 0}
                         for m, f in zip(plan.trainings["vp-digits"], (10.0, 12.0, 17.0)) for k in range(2)])
    lik = pd.DataFrame([{"model": m, "dataset": "digits", "bpd": b, "bpd_se": 0.01}
                        for m, b in zip(plan.trainings["vp-digits"], (2.0, 2.2, 2.1))])
    cells = [{"table": "edm_table2", "row": 0, "column": "uncond_vp", "model": "vp-digits", "sampler": "edm_heun",
              "steps": 18}, {"table": "score_sde_table2", "row": 3, "column": "nll", "model": "vp-digits", "metric": "bpd"}]
    ours, _ = ours_for_paper(rows, cells, lik, plan.trainings)
    h = stats.t.ppf(0.975, 2) * np.std([10.5, 12.5, 17.5], ddof=1) / np.sqrt(3)
    assert ours["edm_table2"][(0, "uncond_vp")] == f"13.5 ± {h:.3g} over 3 trainings (10.5, 12.5, 17.5)"
    assert ours["score_sde_table2"][(3, "nll")].endswith("over 3 trainings (2, 2.2, 2.1)")
    for bad, why in (({"trainings": 0}, "whole number"), ({"trainings": 2, "seeds": 1}, "must be a mapping"),
                     (3, "must be a mapping"), ({"trainings": 2, "samplers": []}, "at least one")):
        cfg["models"]["vp-digits"]["replicates"] = bad
        with pytest.raises(ConfigError, match=why):
            build_plan(cfg)
