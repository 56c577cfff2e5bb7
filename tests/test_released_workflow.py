"""Released checkpoints in the workflow: `checkpoint:` model entries, config/paper_released.yaml and its smoke overlay,
the missing-file preflight, and an end-to-end run on a reduced score_sde checkpoint of tests/fixtures."""
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import update_config
from test_workflow import job_counts, snakemake

from sgm_bench.errors import ConfigError
from sgm_bench.plan import build_plan, check_paper_cells
from sgm_bench.preflight import preflight
from sgm_bench.released import checkpoint_file, score_sde_config, score_sde_spec
from sgm_bench.report.build import paper_tables

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "score_sde"


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_released_configuration_plans_every_released_model_from_its_own_config():
    cfg = load("paper_released.yaml")
    plan = build_plan(cfg)
    assert set(plan.released) == set(cfg["models"]) and len(plan.models) == 17
    folders = {c["config"] for c in plan.released.values() if c["format"] == "score_sde"}
    assert len(folders) == 11  # every released score_sde CIFAR-10 folder
    for name, c in plan.released.items():
        fam = score_sde_spec(score_sde_config(c["config"]))["family"] if c["format"] == "score_sde" else "ddpm"
        assert plan.models[name].family == fam, name
    check_paper_cells(plan, paper_tables())  # every cell names a run of this configuration
    out = snakemake("-n", "-F", "--cores", "1", "--configfile", "config/paper_released.yaml")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    counts = job_counts(out.stdout)
    assert counts["import_released"] == counts["evaluate"] == 17 and "train" not in counts


def test_smoke_overlay_only_swaps_the_weights_and_shortens():
    base, overlay = load("paper_released.yaml"), load("paper_released_smoke.yaml")
    merged = load("paper_released.yaml")
    update_config(merged, overlay)
    assert set(overlay["models"]) == set(base["models"])
    for name, spec in base["models"].items():
        m = merged["models"][name]
        assert m["checkpoint"]["format"] == spec["checkpoint"]["format"] and m.get("samplers") == spec.get("samplers")
        assert not Path(m["checkpoint"]["path"]).is_absolute()
    plan = build_plan(merged)
    assert max(s for j in plan.jobs for s in j.steps if s) <= 5


def test_a_checkpoint_entry_must_model_its_datasets_range():
    cfg = {"datasets": {"c": {"name": "synthetic", "size": 16, "channels": 3}},
           "evaluation": {"n_samples": 4, "seed_sets": 1, "kid_subset_size": 2},
           "models": {"ve": {"data": "c", "checkpoint": {"path": "x.pth", "format": "score_sde",
                                                          "config": str(FIXTURES / "ve_ncsnpp_continuous" / "config.json")}}}}
    with pytest.raises(ConfigError, match=r"range: \[0.0, 1.0\]"):
        build_plan(cfg)
    cfg["datasets"]["c"]["range"] = [0, 1]
    assert build_plan(cfg).models["ve"].family == "ve"


def test_preflight_lists_each_missing_checkpoint_with_where_it_is_published(tmp_path):
    cfg = load("paper_released.yaml")
    cfg["requires"] = {}
    problems = "\n".join(preflight(build_plan(cfg)))
    for name, spec in cfg["models"].items():
        assert f"model {name!r}: missing released checkpoint" in problems
    assert "yang-song/score_sde_pytorch" in problems and "huggingface.co/google/ddpm-cifar10-32" in problems


def test_a_folder_gives_its_best_and_last_checkpoints_by_number(tmp_path):
    for n in (9, 26, 100):
        (tmp_path / f"checkpoint_{n}.pth").touch()
    entry = {"path": str(tmp_path), "format": "score_sde", "config": "vp/cifar10_ddpm"}
    assert checkpoint_file({**entry, "use": "best"}).name == "checkpoint_9.pth"
    assert checkpoint_file({**entry, "use": "last"}).name == "checkpoint_100.pth"  # by number, not by name


@pytest.mark.parametrize("where,name", [("models", ".."), ("models", "."), ("models", "a/b"),
                                        ("variants", "/tmp/x"), ("experiments", "../../x")])
def test_names_that_would_be_paths_are_refused_before_any_job(tmp_path, where, name):
    cfg = load("smoke.yaml")
    if where == "models":
        cfg["models"][name] = cfg["models"].pop(next(iter(cfg["models"])))
    elif where == "variants":
        cfg.setdefault("sampling", {}).setdefault("variants", {})[name] = {"sampler": "pc"}
    else:
        cfg["experiments"] = {name: {"experiment": "langevin_mixing"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "--cores", "1", "--configfile", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert out.returncode != 0 and "does not match" in out.stdout + out.stderr, out.stderr[-1500:]


@pytest.mark.slow
def test_a_released_checkpoint_runs_end_to_end(tmp_path):
    """Import, sample, score and tabulate one reduced score_sde checkpoint (DDPM++ cont., VP) with the digits-free
    Inception path on untrained weights; its score equals the fixture's reference score."""
    from sgm_bench.io import file_hash
    from sgm_bench.metrics.fidelity import write_untrained_inception
    from sgm_bench.train import load_model

    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(FIXTURES / "vp_ddpmpp_continuous", tmp_path / "ckpt")
    write_untrained_inception(tmp_path / "inception.pth")
    cfg = {"name": "rel", "results": "results/rel", "work": "work/rel", "device": "cpu",
           "requires": {"files": ["inception.pth"]},
           "mlflow": {"tracking_uri": "sqlite:///results/mlflow.db", "experiment": "rel"}, "sampling": {},
           "datasets": {"c": {"name": "synthetic", "size": 16, "channels": 3, "n": 40}},
           "evaluation": {"n_samples": 4, "seed_sets": 1, "batch_size": 4, "kid_subset_size": 2,
                          "extractor": "inception-v3-compat", "inception_weights": "inception.pth",
                          "likelihood": {"n_examples": 2, "repeats": 1, "rtol": 1e-2, "atol": 1e-2}},
           "models": {"vp": {"data": "c", "samplers": ["euler_maruyama"], "steps": {"default": [3]},
                             "checkpoint": {"path": "ckpt/checkpoint.pth", "format": "score_sde",
                                            "config": "ckpt/config.json"}}}}
    (tmp_path / "config" / "rel.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake("--cores", "2", "--configfile", "config/rel.yaml", cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    res = tmp_path / "results" / "rel"
    stats = json.loads((res / "train" / "vp" / "train_stats.json").read_text())
    assert stats["released"]["format"] == "score_sde"
    assert stats["released"]["sha256"] == file_hash(tmp_path / "ckpt" / "checkpoint.pth")
    link = json.loads((res / "mlflow_runs.json").read_text())["compare"]["vp"]
    assert "workflowType=machine_learning" in link and "tags.model%20%3D%20%27vp%27" in link and "fid" in link
    rows = json.loads((res / "metrics" / "vp" / "samplers.json").read_text())["rows"]
    assert rows and all(r["status"] == "ok" and r["fid"] == r["fid"] for r in rows)
    model = load_model(tmp_path / "work" / "rel" / "models" / "vp" / "model.pt")
    io = torch.load(FIXTURES / "vp_ddpmpp_continuous" / "io.pt", weights_only=True)
    with torch.no_grad():
        score = model.score(io["x"], io["t"])
    assert (score - io["score"]).norm() / io["score"].norm() < 1e-4
