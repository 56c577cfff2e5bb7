"""The course experiments run and report what they claim (small settings)."""
import math

from sgm_bench.experiments import EXPERIMENTS


def test_langevin_mixing_numbers(tmp_path):
    out = EXPERIMENTS["langevin_mixing"](tmp_path / "mix", n=1000)
    assert abs(out["langevin_weight_minor"] - 0.2) > 0.15 and out["annealed_error"] < 0.03
    assert (tmp_path / "mix.png").stat().st_size > 1000 and (tmp_path / "mix.pdf").exists()


def test_objective_cost_reports_every_objective(tmp_path):
    out = EXPERIMENTS["objective_cost"](tmp_path / "cost", dims=(2, 16, 32), repeats=1)
    for obj in ("esm", "ssm", "dsm"):
        assert math.isfinite(out[f"loglog_slope[{obj}]"]) and out[f"seconds_per_step_D32[{obj}]"] > 0
