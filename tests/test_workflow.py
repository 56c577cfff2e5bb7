"""The Snakemake workflow: dry runs of every shipped configuration, readable configuration errors, and an end-to-end
smoke run whose re-run is a no-op that adds no MLflow runs."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sgm_bench.checks import load_yaml
from sgm_bench.data import IMAGES
from sgm_bench.plan import build_plan
from sgm_bench.samplers import names

REPO = Path(__file__).resolve().parents[1]


def snakemake(*args, cwd=REPO, timeout=600):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict:
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml", "smoke.yaml", "digits_protocol.yaml",
                                    "digits_trainings.yaml"])
def test_dry_run_lists_every_expected_job(config):
    cfg = yaml.safe_load((REPO / "config" / config).read_text())
    plan = build_plan(cfg)
    out = snakemake("-n", "-F", "--cores", "1", "--configfile", f"config/{config}")
    assert out.returncode == 0, out.stdout + out.stderr
    counts = job_counts(out.stdout)
    trainings = {k: (m.get("replicates") or {}).get("trainings", 1) for k, m in cfg["models"].items()}  # replicates
    assert counts["train"] == sum(trainings.values())
    assert counts["evaluate"] == len(plan.benchmarked)  # one job per model runs all its samplers
    assert counts["likelihood"] == len(plan.benchmarked) == sum(trainings[k] for k, m in cfg["models"].items()
                                                                 if m.get("evaluate", True))
    assert counts["track"] == counts["report"] == 1
    clean = {e["classifier"] for e in (cfg.get("experiments") or {}).values() if e and e.get("classifier")}
    features = {m["data"] for m in cfg["models"].values() if m["data"] in plan_image_keys(cfg)}
    expected = clean | (features if cfg["evaluation"].get("extractor") == "digits-cnn" else set())
    assert counts.get("classifier", 0) == len(expected)
    assert counts.get("experiment", 0) == len(cfg.get("experiments", {}))


def plan_image_keys(cfg) -> set:
    return {k for k, d in cfg["datasets"].items() if d["name"] in IMAGES}


def test_default_config_trains_every_family_on_digits_and_mixture():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    pairs = {(m["model"]["family"], m["data"]) for m in cfg["models"].values()}
    for fam in ("ncsn", "ddpm", "ve", "vp", "subvp"):
        assert (fam, "digits") in pairs and (fam, "mixture2d") in pairs
    assert ("score", "mixture2d") in pairs
    assert {s for j in build_plan(cfg).jobs for s in [j.sampler]} == set(names())  # every sampler runs somewhere


BAD = {
    "unknown family": ({"models": {"m": {"model": {"family": "ddpn"}}}}, r"ddpn"),
    "unknown sampler": ({"models": {"m": {"samplers": ["heun2"]}}}, r"heun2"),
    "inapplicable pair": ({"models": {"m": {"samplers": ["ddim"]}}}, r"sampler 'ddim' does not apply to family 've'"),
    "negative steps": ({"sampling": {"steps": {"default": [-5]}}}, r"-5"),
    "sigma_min >= sigma_max": ({"models": {"m": {"model": {"sde": {"sigma_min": 5.0, "sigma_max": 1.0}}}}},
                               r"sigma_min < sigma_max"),
    "VP chain too short": ({"models": {"m": {"model": {"family": "vp"}, "samplers": ["pc_rebuilt"]}},
                            "sampling": {"steps": {"default": [10]},
                                         "variants": {"pc_rebuilt": {"sampler": "pc", "options": {"respace": "rebuild"}}}}},
                           r"steps 10: the 10-step chain of VPSDE"),
    "discrete chain too long": ({"models": {"m": {"model": {"family": "ncsn", "sde": {"N": 10}}, "samplers": ["pc"]}},
                                 "sampling": {"steps": {"default": [25]}}}, r"25 steps exceed the model's 10-step chain"),
    "ODE on NCSN": ({"models": {"m": {"model": {"family": "ncsn"}, "samplers": ["ode"]}}},
                    r"sampler 'ode' does not apply to family 'ncsn'"),
    "missing data root": ({"datasets": {"c": {"name": "cifar10"}}, "models": {"m": {"data": "c"}}}, r"needs datasets.c.root"),
    "unknown experiment option": ({"experiments": {"ssm_noise": {"noise_std": 0.01}}}, r"unknown option\(s\) \['noise_std'\]"),
    "guidance without a model": ({"experiments": {"g": {"experiment": "classifier_free_guidance", "classifier": "synthetic"}}},
                                 r"classifier_free_guidance needs `model:`"),
    "one sample per class": ({"models": {"m": {"model": {"family": "ve"}}},
                              "experiments": {"g": {"experiment": "classifier_guidance", "model": "m",
                                                    "classifier": "synthetic", "per_class": 1}}},
                             r"per_class is 1; it must be at least 2"),
}


def _merge(a, b):
    for k, v in b.items():
        a[k] = _merge(a.get(k, {}), v) if isinstance(v, dict) else v
    return a


@pytest.mark.parametrize("case", BAD)
def test_bad_configuration_fails_at_dag_construction_with_one_message(case, tmp_path):
    base = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    base["models"] = {"m": {"data": "mixture2d", "model": {"family": "ve", "net": {"name": "mlp"}},
                            "train": {"steps": 1}}}
    override, pattern = BAD[case]
    cfg = _merge(base, override)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "--cores", "1", "--configfile", str(path))
    assert out.returncode != 0
    assert re.search(pattern, out.stdout + out.stderr), out.stdout + out.stderr


def test_missing_dataset_is_reported_before_any_job_starts(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    path = tmp_path / "paper.yaml"
    cfg["requires"]["gpu"] = False
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("--cores", "1", "--configfile", str(path), cwd=tmp_path)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "cannot start" in text and "data/cifar10 does not exist" in text and "weights-inception" in text
    assert not (tmp_path / "results").exists()  # nothing ran


def _mlflow_runs(db: Path) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("sgm-bench-smoke")
    return len(client.search_runs([exp.experiment_id], max_results=10000))


def _parent_summaries(root: Path, db: Path, model: str) -> None:
    """The model's parent run holds its leaderboard and figure, and its description links to its sampler runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("sgm-bench-smoke")
    (parent,) = client.search_runs([exp.experiment_id], f"tags.kind = 'model' and tags.model = '{model}'")
    note = parent.data.tags["mlflow.note.content"]
    assert "best first" in note and "orderByAsc=true" in note and "| euler_maruyama " in note, note
    folder = root / parent.info.artifact_uri  # stored relative to the workflow's folder
    assert (folder / "quality_vs_nfe.png").stat().st_size > 1000
    assert (folder / "leaderboard.csv").read_text().startswith("sampler,steps,NFE")
    assert "≤ 10 NFE" in (folder / "budget.csv").read_text() and "Best setting per NFE budget" in note


@pytest.mark.slow
def test_smoke_end_to_end_then_rerun_is_a_noop(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    out = snakemake("--cores", "2", "--configfile", "config/smoke.yaml", cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    res = tmp_path / "results" / "smoke"
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    plan = build_plan(cfg)
    logs = sorted((res / "logs").rglob("*.log"))
    assert logs and all("sgm-bench: done in" in f.read_text() for f in logs), [f for f in logs if not f.read_text()]
    assert "checkpoint saved" in (res / "logs" / "train" / "vp-mixture2d.log").read_text()
    assert json.loads((res / "train" / "vp-mixture2d" / "train_stats.json").read_text())["processes"] == 2  # DDP
    assert "seed set 1: NFE" in (res / "logs" / "evaluate" / "vp-mixture2d.log").read_text()
    for t in ("samplers", "likelihood", "cost", "paper"):
        assert (res / "tables" / f"{t}.md").stat().st_size > 0
    for f in ("quality_vs_nfe", "quality_vs_seconds", "likelihood", "training_curves"):
        assert (res / "figures" / f"{f}.png").stat().st_size > 1000 and (res / "figures" / f"{f}.pdf").exists()
    expected = len(plan.models) + sum(len(j.steps) for j in plan.jobs)  # a run per model and per (sampler, steps)
    db = tmp_path / "results" / "mlflow.db"
    assert _mlflow_runs(db) == expected  # jobs ran two at a time; the single writer lost none
    _parent_summaries(tmp_path, db, "vp-mixture2d")
    assert "ddim_eta1" in (res / "tables" / "samplers.md").read_text() or "ddim" in (res / "tables" / "samplers.md").read_text()
    # pooled image quality and a replicated training reach the rows and the paper cell
    rows = json.loads((res / "metrics" / "ddpm-synthetic" / "samplers.json").read_text())["rows"]
    assert all(r["n_generated"] == 2 * r["n"] and "pooled" in r["quality_over"] for r in rows if r["status"] == "ok")
    assert json.loads((res / "train" / "ddpm-synthetic-r2" / "train_stats.json").read_text())["config_hash"] != \
        json.loads((res / "train" / "ddpm-synthetic" / "train_stats.json").read_text())["config_hash"]
    assert "over 2 trainings" in (res / "tables" / "paper_ddim_table1.md").read_text()
    again = snakemake("--cores", "2", "--configfile", "config/smoke.yaml", cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    forced = snakemake("--cores", "1", "--configfile", "config/smoke.yaml", "-R", "track", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert _mlflow_runs(db) == expected  # the tracking job re-ran and added nothing
    # one job per model resumes per (sampler, steps) setting: with one setting's kept result removed, a forced re-run
    # re-measures that setting only (the same sampler's other step counts too are reused), and MLflow replaces that
    # setting's run and keeps every other run
    metrics = res / "metrics" / "vp-mixture2d" / "samplers.json"
    before = json.loads(metrics.read_text())["rows"]
    runs_before = json.loads((res / "mlflow_runs.json").read_text())["runs"]
    victim = next(j for j in plan.jobs_of("vp-mixture2d") if len(j.steps) > 1)
    hit = lambda r: (r.get("variant", r.get("sampler")), r["steps"]) == (victim.name, victim.steps[0])  # noqa: E731
    (tmp_path / "work" / "smoke" / "evaluations" / "vp-mixture2d" / f"{victim.name}_{victim.steps[0]}.pt").unlink()
    metrics.unlink()  # a lost result: the next run rebuilds it from the kept settings (a forced run would not reuse them)
    again = snakemake("--cores", "2", "--configfile", "config/smoke.yaml", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads(metrics.read_text())["rows"]
    assert [r for r in after if not hit(r)] == [r for r in before if not hit(r)]
    assert [r["seconds"] for r in after if hit(r)] != [r["seconds"] for r in before if hit(r)]
    assert _mlflow_runs(db) == expected
    runs_after = json.loads((res / "mlflow_runs.json").read_text())["runs"]
    changed = [r for r in runs_after if r not in runs_before]
    assert [(r.get("sampler"), r.get("steps")) for r in changed] == [(victim.name, victim.steps[0])], changed
    # --forcerun evaluate never reuses a kept setting: every row is measured again, to the same values
    forced = snakemake("--cores", "2", "--configfile", "config/smoke.yaml", "--forcerun", "evaluate", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
    timing = ("seconds", "seconds_per_sample", "started", "finished", "peak_memory_mb")
    rows = json.loads(metrics.read_text())["rows"]
    assert all(r["started"] > a["finished"] for r, a in zip(rows, after))
    assert [{k: v for k, v in r.items() if k not in timing} for r in rows] == \
        [{k: v for k, v in r.items() if k not in timing} for r in after]
    assert "forced:" in (res / "logs" / "evaluate" / "vp-mixture2d.log").read_text()
    rep = snakemake("--cores", "1", "--configfile", "config/smoke.yaml", "--report", "results/smoke/report.html",
                    cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert (res / "report.html").stat().st_size > 10000
    # a changed setting re-runs what depends on it (not "Nothing to be done" after a changed lr)
    cfg["models"]["vp-mixture2d"]["train"] = {**cfg["models"]["vp-mixture2d"]["train"], "lr": 1e-3}
    (tmp_path / "config" / "changed.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake("-n", "--cores", "1", "--configfile", "config/changed.yaml", cwd=tmp_path)
    counts = job_counts(dry.stdout)
    assert counts.get("train") == 1 and counts.get("evaluate") == 1, dry.stdout[-2000:]


def test_paper_smoke_overlay_keeps_the_papers_networks_samplers_and_metrics():
    """config/paper_smoke.yaml only shortens config/paper.yaml: every model keeps its network, loss and samplers, the
    Inception extractor stays, and every model and step grid is overridden (a new paper model would otherwise train
    for 800k steps in the smoke run)."""
    from snakemake.utils import update_config

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    overlay = yaml.safe_load((REPO / "config" / "paper_smoke.yaml").read_text())
    merged = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    update_config(merged, overlay)
    assert set(overlay["models"]) == set(paper["models"])
    for name, spec in paper["models"].items():
        for key in ("data", "model", "loss", "samplers"):
            assert merged["models"][name].get(key) == spec.get(key), (name, key)
        assert merged["models"][name]["train"]["steps"] <= 10
    assert merged["evaluation"]["extractor"] == paper["evaluation"]["extractor"] == "inception-v3-compat"
    with_steps = {v for v, s in paper["sampling"]["variants"].items() if "steps" in s}
    assert with_steps <= set(overlay["sampling"]["variants"])
    assert merged["datasets"]["cifar10"]["name"] == "synthetic" and merged["datasets"]["cifar10"]["size"] == 32
    plan = build_plan(merged)  # the paper cells, variants and models check out at the smoke step counts
    assert len(plan.models) == len(paper["models"]) and max(s for j in plan.jobs for s in j.steps if s) <= 25


def test_a_run_writes_where_git_does_not_track():
    """Every configuration's results folder is ignored by git (a run leaves the checkout clean); the committed
    reference copies and the benchmarks' figures are not."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    written = [load_yaml(f)["results"] + "/tables/x.md" for f in sorted((root / "config").glob("*.yaml"))]
    kept = ["results/committed/default/summary.md", "results/benchmarks/x.md", "results/README.md"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *written, *kept], cwd=root, capture_output=True,
                         text=True)
    assert sorted(out.stdout.split()) == sorted(written)
