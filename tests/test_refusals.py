"""Issue 14: every bad input refused with one clear message before compute, reruns never stale, nothing lost, files
a user hands over loaded as data. Each test failed on the code before its fix."""
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sgm_bench.checks import load_yaml
from sgm_bench.cli import main
from sgm_bench.errors import CheckpointError, ConfigError, DataMissingError, NonFiniteLossError
from sgm_bench.spec import load_dataset, model_spec
from sgm_bench.io import content_digest, file_hash, save_json
from sgm_bench.plan import build_plan
from sgm_bench.preflight import preflight
from sgm_bench.train import Trainer, load_model

REPO = Path(__file__).resolve().parents[1]


def toy_cfg(family="vp", steps=20, **train):
    return {"data": {"name": "mixture2d", "n_train": 500},
            "model": {"family": family, "net": {"name": "mlp", "hidden": 16, "depth": 1}},
            "train": {"steps": steps, "batch_size": 32, "warmup": 1, "lr": 2e-3, "ema": 0.9, "ckpt_every": 10,
                      "progress": False, **train}}


def train(cfg, run_dir):
    return Trainer(cfg, load_dataset(cfg["data"]), run_dir).run()


# --- silent wrong results ---------------------------------------------------------------------------------------

def test_a_finished_run_is_retrained_on_rerun_and_the_old_one_kept(tmp_path):
    """--forcerun train or a code change re-ran a finished run as a 0-step resume: the model never changed."""
    first = train(toy_cfg(), tmp_path / "run")
    again = train(toy_cfg(), tmp_path / "run")
    assert again["resumed_from"] is None and again["steps"] == 20 and again["retrained_over"].endswith("run.previous")
    assert (tmp_path / "run.previous" / "model.pt").exists()  # nothing lost
    assert first["config_hash"] == again["config_hash"]


def test_an_interrupted_run_resumes_with_a_lower_learning_rate(tmp_path):
    """The non-finite guard says: lower train.lr and resume. That resume was refused as another configuration."""
    cfg = toy_cfg(steps=20)
    t = Trainer(cfg, load_dataset(cfg["data"]), tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        t.run(on_step=lambda s: (_ for _ in ()).throw(KeyboardInterrupt) if s == 12 else None)
    lower = toy_cfg(steps=20, lr=1e-4)
    stats = train(lower, tmp_path / "run")
    assert stats["resumed_from"] == 10 and stats["steps"] == 20


def test_evaluating_another_models_file_is_refused(tmp_path):
    train(toy_cfg("ve"), tmp_path / "ve")
    data = load_dataset(toy_cfg()["data"])
    with pytest.raises(CheckpointError, match="another model"):
        load_model(tmp_path / "ve" / "model.pt", expected_spec=model_spec(toy_cfg("ddpm"), data))
    load_model(tmp_path / "ve" / "model.pt", expected_spec=model_spec(toy_cfg("ve"), data))


def test_a_missing_model_file_says_train_it_not_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*train the model first"):
        load_model(tmp_path / "absent" / "model.pt")


def test_a_misspelled_option_is_refused_at_dag_construction_listing_the_valid_keys():
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["datasets"]["mixture2d"]["n_trian"] = 5
    with pytest.raises(ConfigError, match=r"n_trian.*valid: n_test, n_train"):
        build_plan(cfg)
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["models"]["vp-mixture2d"]["loss"] = {"weightin": "g2"}
    with pytest.raises(ConfigError, match=r"weightin.*valid:.*weighting"):
        build_plan(cfg)
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["models"]["vp-mixture2d"]["model"]["sde"] = {"beta_max": "twenty"}
    with pytest.raises(ConfigError, match="beta_max must be a number"):
        build_plan(cfg)


def test_a_duplicate_key_in_a_configuration_is_refused(tmp_path):
    text = (REPO / "config" / "smoke.yaml").read_text()
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("models:\n", "models:\n  vp-mixture2d: {data: mixture2d, model: {family: ve}, train: {}}\n", 1))
    with pytest.raises(ConfigError, match="'vp-mixture2d' appears twice"):
        load_yaml(path)
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n", "--cores", "1",
                          "--configfile", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "appears twice" in out.stdout + out.stderr


def test_non_finite_gradients_stop_training_and_the_last_checkpoint_stays_good(tmp_path):
    """A huge clip threshold let the gradient norm go to inf from step 3 while the loss stayed finite: rc 0."""
    cfg = toy_cfg(steps=40, lr=1e12, grad_clip=1e30, ckpt_every=1)
    with pytest.raises(NonFiniteLossError, match="gradient|weight|optimizer|loss"):
        train(cfg, tmp_path / "run")
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    for c in ckpts:
        state = torch.load(c, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in state.values())


def test_an_infinite_gradient_with_a_finite_loss_stops_before_the_update(tmp_path):
    """The gradient guard itself: the loss stays finite while the gradient norm is inf."""
    cfg = toy_cfg(steps=5, grad_clip=1e30)
    t = Trainer(cfg, load_dataset(cfg["data"]), tmp_path / "run")
    next(t.model.parameters()).register_hook(lambda g: g * float("inf"))
    with pytest.raises(NonFiniteLossError, match="gradient norm became inf"):
        t.run()
    assert not list((tmp_path / "run" / "checkpoints").glob("step_*.pt"))


@pytest.mark.parametrize("poisoned,caught_by,kept", [(4, "loss", []), (5, "weight", []),
                                                     (7, "loss", ["step_00000005.pt"])])
def test_a_non_finite_weight_never_reaches_a_checkpoint(tmp_path, poisoned, caught_by, kept):
    """Weights are looked at before each checkpoint (ckpt_every 5), losses every step: a weight made inf by the update
    of step 5 stops the run before checkpoint 5; one made inf at step 4 or 7 shows in the next step's loss. Whatever
    was kept is finite."""
    cfg = toy_cfg(steps=20, ckpt_every=5)
    t = Trainer(cfg, load_dataset(cfg["data"]), tmp_path / "run")
    real_step = t.opt.step

    def step():
        real_step()
        if t.step + 1 == poisoned:
            with torch.no_grad():
                next(t.model.parameters())[0, 0] = float("inf")

    t.opt.step = step
    with pytest.raises(NonFiniteLossError, match=rf"{caught_by}.* at step {poisoned + (caught_by == 'loss')}"):
        t.run()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    assert names == kept
    for name in names:
        state = torch.load(tmp_path / "run" / "checkpoints" / name, weights_only=True)
        assert all(torch.isfinite(v).all() for part in ("model", "ema") for v in state[part].values())


def test_a_rerun_replaces_its_mlflow_run(tmp_path):
    """--forcerun evaluate added a second active run per job; a search must return one current run per job."""
    from sgm_bench.tracking import Tracker

    t = Tracker(f"sqlite:///{tmp_path}/m.db", "e", str(tmp_path / "art"))
    t.log_run("key-old", "m/pc/10/0", {}, {"fid": 3.0}, {}, job="m-pc-10-0")
    t.log_run("key-new", "m/pc/10/0", {}, {"fid": 2.0}, {}, job="m-pc-10-0")
    runs = t.client.search_runs([t.exp_id])
    assert len(runs) == 1 and runs[0].data.metrics["fid"] == 2.0


def test_writers_racing_on_the_same_keys_leave_one_run_per_key(tmp_path):
    """Two writers logging the same 20 run keys into one SQLite store at once: one active run per key (without the
    settle step, 40), and each writer's ids name the runs that stay."""
    import subprocess
    import sys

    from sgm_bench.tracking import Tracker

    uri = f"sqlite:///{tmp_path}/m.db"
    Tracker(uri, "e")  # the store and experiment exist before the race (their creation has its own test)
    script = ("import json, sys; from sgm_bench.tracking import Tracker\n"
              f"t = Tracker({uri!r}, 'e')\n"
              "ids = [t.log_run(f'k{i}', f'r{i}', {}, {'fid': float(i)}, {}, job=f'j{i}')[0] for i in range(20)]\n"
              "print(json.dumps(ids))")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    t = Tracker(uri, "e")
    runs = {r.data.tags["mlflow.runName"]: r.info.run_id for r in t.client.search_runs([t.exp_id], max_results=1000)}
    assert len(runs) == 20 and t.count() == 20
    last = [json.loads(o)[-1] for o, _ in outs]
    assert all(i == runs["r19"] for i in last)  # both writers return the run that stayed


def test_a_rerun_reuses_complete_mlflow_runs_and_rewrites_half_written_ones(tmp_path, monkeypatch):
    """A writer that crashed mid-run leaves a pending run: the next writer deletes and rewrites it, reuses the complete
    ones, and (having looked the runs up once) still sees the runs it wrote itself."""
    from sgm_bench.tracking import Tracker

    uri = f"sqlite:///{tmp_path}/m.db"
    first = Tracker(uri, "e")
    done, _ = first.log_run("k1", "m/pc/10", {}, {"fid": 1.0}, {}, job="m-pc-10")
    monkeypatch.setattr(first.client, "log_batch", lambda *a, **k: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        first.log_run("k2", "m/ode/adaptive", {}, {"fid": 2.0}, {})
    monkeypatch.undo()
    second = Tracker(uri, "e")
    assert second.log_run("k1", "m/pc/10", {}, {"fid": 1.0}, {}, job="m-pc-10") == (done, False)
    rewritten, created = second.log_run("k2", "m/ode/adaptive", {}, {"fid": 2.0}, {})
    assert created and second.log_run("k2", "m/ode/adaptive", {}, {"fid": 2.0}, {}) == (rewritten, False)
    runs = second.client.search_runs([second.exp_id])
    assert sorted(r.info.run_id for r in runs) == sorted([done, rewritten]) and second.count() == 2


def _digits_cache(tmp_path):
    """A one-epoch digits CNN, 40 generated and 60 reference digits, and a statistics cache folder."""
    from sgm_bench.metrics.digits_cnn import train_digits_classifier

    d = load_dataset({"name": "digits"}).images
    w = tmp_path / "cnn.pt"
    train_digits_classifier(d.to_uint8(d.to_model(d.train[:300])), d.train_labels[:300],
                            d.to_uint8(d.to_model(d.test[:50])), d.test_labels[:50], w, epochs=1)
    return w, d.to_uint8(d.to_model(d.train[:40])), d.to_uint8(d.to_model(d.test[:60])), tmp_path / "cache"


def test_a_truncated_statistics_cache_is_computed_again_not_called_code(tmp_path, capsys):
    """A damaged cache file is a cache: set aside and recomputed with a line (the advice once called it a file that
    could run code and asked for 'the real file'). The pickle case keeps its refusal (the test above)."""
    from sgm_bench.metrics.fidelity import DIGITS, fidelity_metrics

    w, gen, ref, cache = _digits_cache(tmp_path)
    first = fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10)
    f = next(iter(sorted(cache.glob("*stat-fid*.pt"))))
    f.write_bytes(f.read_bytes()[:100])  # truncated
    again = fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10)
    assert again["fid"] == pytest.approx(first["fid"], rel=1e-6)
    assert "computed again" in capsys.readouterr().err and f.with_name(f.name + ".unreadable").exists()


def test_edited_statistics_are_recomputed_and_forced_statistics_never_read(tmp_path, capsys):
    """The cache's checksum: well-formed statistics rewritten with other numbers are set aside and recomputed, and
    `fresh` (--forcerun reference) computes them again whatever is cached."""
    import numpy as np

    from sgm_bench.metrics.fidelity import DIGITS, fidelity_metrics

    w, gen, ref, cache = _digits_cache(tmp_path)
    first = fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10)
    f = next(iter(sorted(cache.glob("*stat-fid*.pt"))))
    assert f.with_name(f.name + ".sha256").exists()
    stats = torch.load(f, weights_only=False)
    stats = {k: (v * 0 if isinstance(v, np.ndarray) else v) for k, v in stats.items()} if isinstance(stats, dict) else stats
    torch.save(stats, f)  # a well-formed file with false statistics
    again = fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10)
    assert again["fid"] == pytest.approx(first["fid"], rel=1e-6)
    assert "do not match their checksum" in capsys.readouterr().err
    fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10)
    assert "computed again" not in capsys.readouterr().err  # the recomputed file was sealed afresh, and is trusted
    torch.save(stats, f)  # and again, now with its checksum rewritten too: only a forced run recomputes it
    f.with_name(f.name + ".sha256").write_text(file_hash(f) + "\n")
    fooled = fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10)
    assert fooled["fid"] != pytest.approx(first["fid"], rel=1e-3)  # the forgery is read by a plain call...
    torch.save(stats, f)
    f.with_name(f.name + ".sha256").write_text(file_hash(f) + "\n")
    forced = fidelity_metrics(gen, ref, extractor=DIGITS, weights_path=w, cache_root=cache, kid_subset_size=10,
                              fresh=True)
    assert forced["fid"] == pytest.approx(first["fid"], rel=1e-6) and "forced" in capsys.readouterr().err


def test_a_forced_job_never_reuses_its_kept_parts(tmp_path, monkeypatch, capsys):
    """--forcerun evaluate (the Snakefile exports what it names): the kept evaluation parts are computed again."""
    from types import SimpleNamespace

    from sgm_bench.io import resumable
    from sgm_bench.job import FORCED, forced

    job = SimpleNamespace(rule="evaluate", output=["results/x/metrics/m/samplers.json"])
    for names, expected in [("", False), ("train", False), ("evaluate", True), ("*", True),
                            ("results/x/metrics/m/samplers.json", True), ("report\nevaluate", True)]:
        monkeypatch.setenv(FORCED, names)
        assert forced(job) is expected, names
    path = tmp_path / "part.pt"
    resumable(path, "k", lambda: {"sw": 0.42})
    saved = torch.load(path, weights_only=True)
    saved["value"]["sw"] = 0.001
    saved["digest"] = content_digest(saved["value"])
    torch.save(saved, path)  # a consistent forgery: key and digest match
    assert resumable(path, "k", lambda: {"sw": 0.42})["sw"] == 0.001  # a plain re-run trusts a consistent part
    assert resumable(path, "k", lambda: {"sw": 0.42}, fresh=True)["sw"] == 0.42  # a forced one never does
    assert "forced" in capsys.readouterr().err


def test_fid_on_fewer_images_than_feature_dimensions_is_marked_not_comparable(tmp_path):
    from sgm_bench.metrics.digits_cnn import train_digits_classifier
    from sgm_bench.metrics.fidelity import DIGITS, fidelity_metrics

    d = load_dataset({"name": "digits"}).images
    w = tmp_path / "cnn.pt"
    train_digits_classifier(d.to_uint8(d.to_model(d.train[:300])), d.train_labels[:300],
                            d.to_uint8(d.to_model(d.test[:50])), d.test_labels[:50], w, epochs=1)
    out = fidelity_metrics(d.to_uint8(d.to_model(d.train[:20])), d.to_uint8(d.to_model(d.test)), extractor=DIGITS,
                           weights_path=w, cache_root=tmp_path, kid_subset_size=10)
    assert out["comparable"] is False and "128-d" in out["note"]


# --- one clear message instead of a traceback ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    train(toy_cfg(steps=5, ckpt_every=5), d / "run")
    return d / "run" / "model.pt"


@pytest.mark.parametrize("args,pattern", [
    (["--opt", "snr=abc", "--sampler", "pc"], "snr must be a number"),
    (["--n", "0", "--sampler", "pc"], "must be positive"),
    (["--device", "cuda", "--sampler", "pc"], "no CUDA GPU"),
    (["--sampler", "pc", "--out", "/proc/sgm-bench/x.pt"], "cannot write"),
    (["--sampler", "heun9"], "unknown sampler|heun9"),
    (["--sampler", "ddim_quadratic"], "variant name, not a sampler: run --sampler ddim"),
    (["--sampler", "pc", "--grid", "samples.jpg"], "ending in .png"),
])
def test_cli_sample_refuses_bad_arguments_with_one_line(trained_file, tmp_path, capsys, args, pattern):
    argv = ["sample", str(trained_file), "--out", str(tmp_path / "x.pt"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sgm-bench: error:") and "Traceback" not in err
    import re

    assert re.search(pattern, err), err


def test_cli_sample_of_a_folder_or_a_nan_model_says_so(trained_file, tmp_path, capsys):
    assert main(["sample", str(trained_file.parent), "--sampler", "pc", "--out", str(tmp_path / "x.pt")]) == 2
    assert "is a folder: give its model file" in capsys.readouterr().err
    state = torch.load(trained_file, weights_only=True)
    state["ema"] = {k: v * float("nan") if v.is_floating_point() else v for k, v in state["ema"].items()}
    torch.save(state, tmp_path / "nan.pt")
    assert main(["sample", str(tmp_path / "nan.pt"), "--sampler", "ode", "--n", "6", "--out", str(tmp_path / "y.pt")]) == 2
    err = capsys.readouterr().err
    assert "diverged: 6 of 6 samples are not finite" in err and (tmp_path / "y.pt").exists()


def test_cli_sample_writes_a_png_grid(trained_file, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["sample", str(trained_file), "--sampler", "euler_maruyama", "--steps", "5", "--n", "32",
                 "--out", str(tmp_path / "x.pt"), "--grid", str(grid)]) == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and grid.stat().st_size > 2000


def test_cli_train_refuses_a_file_as_run_dir_and_a_misspelled_loss_option(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(toy_cfg()))
    (tmp_path / "afile").write_text("")
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    bad = toy_cfg()
    bad["loss"] = {"weightin": "g2"}
    cfg.write_text(yaml.safe_dump(bad))
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    assert "weightin" in capsys.readouterr().err
    bad = toy_cfg()
    bad["data"]["n_trian"] = 5
    cfg.write_text(yaml.safe_dump(bad))
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "r2")]) == 2
    assert "n_trian" in capsys.readouterr().err


def test_cli_train_on_a_full_disk_says_so_in_one_line_and_keeps_no_partial_file(tmp_path, monkeypatch, capsys):
    import errno

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(toy_cfg(steps=20)))

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # every atomic write fails as on a full disk
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    errors = [ln for ln in err.splitlines() if ln.startswith("sgm-bench: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(tmp_path / "run") in errors[0], err
    assert "Traceback" not in err and not list((tmp_path / "run").rglob(".*.tmp"))


def test_an_overflowing_learning_rate_stops_with_the_non_finite_message(tmp_path):
    with pytest.raises(NonFiniteLossError):
        train(toy_cfg(steps=30, lr=1e38, grad_clip=1e38), tmp_path / "run")


def test_the_default_profile_is_loaded():
    """Snakemake reads profiles/default beside the Snakefile; workflow/profiles/default was never loaded."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", "config/smoke.yaml"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "profiles/default" in out.stdout + out.stderr


# --- nothing lost --------------------------------------------------------------------------------------------------

def test_a_corrupt_model_file_is_reported_before_any_job_deletes_results(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["work"] = str(tmp_path / "work")
    m = tmp_path / "work" / "models" / "vp-mixture2d" / "model.pt"
    m.parent.mkdir(parents=True)
    m.write_bytes(b"\x80\x02truncated")
    problems = preflight(build_plan(cfg))
    assert any("vp-mixture2d/model.pt" in p and "corrupt" in p for p in problems)


def test_an_unwritable_tracking_store_is_reported_before_compute(tmp_path):
    """The track job failed after all the compute (and removed the old mlflow_runs.json)."""
    (tmp_path / "afile").write_text("")
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["work"] = str(tmp_path / "w")
    cfg["mlflow"]["tracking_uri"] = f"sqlite:///{tmp_path}/afile/m.db"
    assert any("cannot be written" in p for p in preflight(build_plan(cfg)))
    cfg["mlflow"]["tracking_uri"] = f"sqlite:///{tmp_path}/fine/m.db"
    assert not any("cannot be written" in p for p in preflight(build_plan(cfg)))



def test_a_tracking_server_that_does_not_answer_is_reported_before_compute(tmp_path, monkeypatch):
    import http.server
    import threading

    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["work"] = str(tmp_path / "w")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the discard port: nothing listens
    assert any("no MLflow server answers at http://127.0.0.1:9" in p for p in preflight(build_plan(cfg)))

    mlflow_api = [False]

    class Health(http.server.BaseHTTPRequestHandler):  # answers /health; MLflow's API only when mlflow_api[0]
        def do_GET(self):
            api = self.path.startswith("/api/2.0/mlflow/") and mlflow_api[0]
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            if api:
                self.wfile.write(b'{"error_code": "RESOURCE_DOES_NOT_EXIST"}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
    try:
        assert any("answers its health check but not MLflow's API" in p for p in preflight(build_plan(cfg)))
        mlflow_api[0] = True
        assert not any("MLflow" in p for p in preflight(build_plan(cfg)))
    finally:
        server.shutdown()
    for uri in ("file:///tmp/mlruns", "results/mlflow.db"):  # no scheme, or one the workflow cannot share
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert any(f"tracking URI {uri!r} is neither" in p for p in preflight(build_plan(cfg)))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u@localhost/mlflow")  # MLflow's database stores pass
    assert not any("tracking URI" in p for p in preflight(build_plan(cfg)))


def _open_store(uri):
    from sgm_bench.tracking import Tracker

    Tracker(uri, "e")


def test_two_first_writers_of_a_fresh_sqlite_store_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path}/fresh.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_open_store, args=(uri,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]


def test_half_written_checkpoints_are_cleared_and_wall_clock_adds_up_over_resumes(tmp_path):
    cfg = toy_cfg(steps=20)
    t = Trainer(cfg, load_dataset(cfg["data"]), tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        t.run(on_step=lambda s: (_ for _ in ()).throw(KeyboardInterrupt) if s == 12 else None)
    tmp = tmp_path / "run" / "checkpoints" / ".step_00000020.pt.abc.tmp"
    tmp.write_bytes(b"half")
    stats = train(cfg, tmp_path / "run")
    assert not tmp.exists()
    assert stats["seconds"] > stats["seconds_this_run"] > 0


def test_results_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        p = save_json({"a": 1}, tmp_path / "r.json")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o044 == 0o044


# --- files a user hands over are data, not code ---------------------------------------------------------------------

class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "ran"))


def test_a_pickle_as_inception_weights_or_cached_statistics_is_never_executed(tmp_path):
    from sgm_bench.metrics.fidelity import INCEPTION, fidelity_metrics

    marker = tmp_path / "executed"
    evil = tmp_path / "weights.pth"
    evil.write_bytes(pickle.dumps(_Boom(str(marker))))
    imgs = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    with pytest.raises(DataMissingError, match="not a plain tensor file"):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION, weights_path=evil, cache_root=tmp_path / "c", kid_subset_size=4)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ref-digits-cnn-0123.pt").write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(DataMissingError, match="cached reference statistics"):
        fidelity_metrics(imgs, imgs, extractor="digits-cnn", weights_path=evil, cache_root=cache, kid_subset_size=4)
    assert not marker.exists()
    random_bytes = tmp_path / "random.pth"
    random_bytes.write_bytes(os.urandom(256))
    with pytest.raises(DataMissingError, match="not a plain tensor file"):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION, weights_path=random_bytes, cache_root=tmp_path / "c",
                         kid_subset_size=4)


def test_mlflow_artifacts_survive_moving_the_results_folder(tmp_path, monkeypatch):
    import shutil

    from mlflow.tracking import MlflowClient

    from sgm_bench.tracking import Tracker

    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    Path("grid.png").write_bytes(b"png")
    t = Tracker("sqlite:///results/mlflow.db", "e", "results/mlartifacts")
    rid, _ = t.log_run("k", "m/pc/10", {}, {"fid": 1.0}, {}, artifacts=["grid.png"])
    assert t.relocatable("results/mlartifacts") == 1
    shutil.move(str(tmp_path / "a" / "results"), str(tmp_path / "b"))  # the results folder moves elsewhere
    (tmp_path / "c").mkdir()
    shutil.move(str(tmp_path / "b"), str(tmp_path / "c" / "results"))
    monkeypatch.chdir(tmp_path / "c")
    client = MlflowClient("sqlite:///results/mlflow.db")
    assert client.get_run(rid).info.artifact_uri.startswith("results/mlartifacts")
    got = client.download_artifacts(rid, "grid.png", str(tmp_path))
    assert Path(got).read_bytes() == b"png"
    # new runs (a later track job, a new process) are placed under the experiment's now relative location
    assert client.get_experiment_by_name("e").artifact_location == "results/mlartifacts"


def test_a_deleted_artifact_folder_is_logged_again_by_the_next_writer(tmp_path, monkeypatch):
    """A deleted results/mlartifacts left every run pointing at missing files and a re-run of the track job wrote
    nothing: the next writer reusing a run logs again what its folder lost (file, table, document)."""
    import shutil

    import pandas as pd

    from sgm_bench.tracking import Tracker

    monkeypatch.chdir(tmp_path)
    Path("grid.png").write_bytes(b"png")
    kw = dict(artifacts=["grid.png"], tables={"seed_sets.json": pd.DataFrame({"fid": [1.0]})},
              documents={"config.yaml": {"a": 1}})
    uri, art = f"sqlite:///{tmp_path}/results/mlflow.db", str(tmp_path / "results" / "mlartifacts")  # a URI of its
    t = Tracker(uri, "e", art)  # own: MLflow keeps one engine per URI string, and other tests move theirs
    rid, _ = t.log_run("k", "m/pc/10", {}, {"fid": 1.0}, {}, **kw)
    shutil.rmtree(art)
    again = Tracker(uri, "e", art)
    assert again.log_run("k", "m/pc/10", {}, {"fid": 1.0}, {}, **kw) == (rid, False)
    files = {f.path for f in again.client.list_artifacts(rid)}
    assert files == {"grid.png", "seed_sets.json", "config.yaml"}, files
    assert again._restore(rid, **kw) == 0  # nothing lost now: nothing logged twice


def test_a_writer_that_loses_the_race_to_create_the_experiment_uses_the_winners(tmp_path, monkeypatch):
    """On a tracking server, two first writer jobs both saw no experiment and both created it: the loser's create
    failed with RESOURCE_ALREADY_EXISTS and the job died (found by benchmarks/cluster/mlflow_concurrency.py)."""
    from mlflow.tracking import MlflowClient

    from sgm_bench.tracking import Tracker

    uri = f"sqlite:///{tmp_path}/m.db"
    winner = Tracker(uri, "race", description="d")
    real = MlflowClient.get_experiment_by_name
    calls = []

    def not_yet_there(self, name):  # the loser's first look happens before the winner's create lands
        calls.append(name)
        return None if len(calls) == 1 else real(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", not_yet_there)
    loser = Tracker(uri, "race", description="d")
    assert loser.exp_id == winner.exp_id and len(calls) == 2


def test_the_experiment_opens_on_its_runs_in_mlflow_3(tmp_path):
    """MLflow 3's UI shows an untagged experiment in its GenAI mode (an empty traces page); tagged as model development
    it opens on the runs table."""
    from mlflow.tracking import MlflowClient

    from sgm_bench.tracking import Tracker

    uri = f"sqlite:///{tmp_path}/m.db"
    t = Tracker(uri, "kind", description="d")
    tags = MlflowClient(uri).get_experiment(t.exp_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development" and tags["mlflow.note.content"] == "d"



def test_the_compare_link_opens_one_models_sampler_runs_best_first():
    from urllib.parse import parse_qs

    from sgm_bench.tracking import compare_link

    link = compare_link("7", "vp-digits", "fid")
    query = parse_qs(link.split("?", 1)[1])
    assert link.startswith("#/experiments/7/runs?")
    assert query["workflowType"] == ["machine_learning"] and query["orderByAsc"] == ["true"]
    assert query["searchFilter"] == ["tags.kind = 'sampler' and tags.model = 'vp-digits'"]
    assert query["orderByKey"] == ["metrics.`fid`"]
