"""Released checkpoints: score_sde's networks and checkpoints against fixtures computed once with score_sde_pytorch's
own code (tests/fixtures/score_sde/README.md), and diffusers' DDPM folders against diffusers itself."""
import json
from pathlib import Path

import pytest
import torch

import sgm_bench
from sgm_bench import samplers
from sgm_bench.cli import main
from sgm_bench.errors import CheckpointError, ConfigError
from sgm_bench.spec import model_from_spec
from sgm_bench.released import diffusers_standin, import_checkpoint, score_sde_configs, score_sde_spec

FIXTURES = Path(__file__).parent / "fixtures" / "score_sde"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "checkpoint.pth").is_file()) if FIXTURES.is_dir() else []


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("folder", sorted(score_sde_configs()))
def test_released_networks_have_the_reference_parameter_count(folder):
    """Every released CIFAR-10 configuration builds score_sde's network: its parameter count, and state-dict keys in
    score_sde's order (what makes a released checkpoint load by name)."""
    ref = json.loads((FIXTURES / "param_counts.json").read_text())[folder]
    with torch.device("meta"):
        net = model_from_spec(score_sde_spec(score_sde_configs()[folder])).net
    assert sum(p.numel() for p in net.parameters()) == ref["params"]
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == ref["trainable"]
    keys = list(net.state_dict())
    assert ref["first_keys"][0] == "sigmas" and len(keys) == ref["state_dict_keys"] - 1  # sigmas: the process's here
    assert keys[:5] == ref["first_keys"][1:] and keys[-4:] == ref["last_keys"]


def test_released_configurations_match_score_sde_config_files():
    """The packaged settings of the 11 folders equal score_sde's own config files (its config.to_dict())."""
    ref = json.loads((FIXTURES / "released_configs.json").read_text())
    assert sorted(ref) == sorted(score_sde_configs())
    for folder, cfg in score_sde_configs().items():
        for section in ("data", "model", "training"):
            for key, value in cfg[section].items():
                if key not in ref[folder][section]:  # a shared default the file does not set, and its network ignores
                    assert key == "fourier_scale" and cfg["model"]["embedding_type"] == "positional", (folder, key)
                    continue
                assert value == ref[folder][section][key], (folder, section, key)


@pytest.mark.parametrize("case", CASES)
def test_score_sde_checkpoint_imports_to_the_reference_score(case, tmp_path):
    """Import (EMA weights), load, score: equal to score_sde's get_score_fn on the same EMA weights."""
    io = torch.load(FIXTURES / case / "io.pt", weights_only=True)
    out = import_checkpoint(FIXTURES / case / "checkpoint.pth", "score_sde", tmp_path / "m.pt",
                            str(FIXTURES / case / "config.json"))
    model = sgm_bench.load_model(out)
    with torch.no_grad():
        score = model.score(io["x"], io["t"])
    assert rel_err(score, io["score"]) < 1e-4
    assert torch.allclose(model.label(io["t"]).double(), io["labels"].double(), rtol=1e-5, atol=1e-4)


def _diffusers_folder(root: Path, nested: bool):
    return diffusers_standin(root, size=8, nested=nested)


@pytest.mark.parametrize("nested", [False, True])
def test_diffusers_folder_imports_to_its_own_score(nested, tmp_path):
    """A UNet2DModel + DDPMScheduler folder (flat as google/ddpm-cifar10-32, or unet/ + scheduler/): the model's score
    at time t is -eps(x, i) / sqrt(1 - alpha-bar_i) with i = floor(t (N - 1)); 4 samples come out finite."""
    unet, sched = _diffusers_folder(tmp_path / "ddpm", nested)
    assert main(["import", str(tmp_path / "ddpm"), "--format", "diffusers", "--out", str(tmp_path / "m.pt")]) == 0
    model = sgm_bench.load_model(tmp_path / "m.pt")
    i = torch.tensor([999, 500, 37, 0])
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        ref = -unet(x, i).sample / (1 - sched.alphas_cumprod[i]).sqrt()[:, None, None, None]
        score = model.score(x, i / 999)
    assert rel_err(score, ref) < 1e-4
    r = samplers.sample_batched("ddim", model.score_fn(), model.sde, 4, model.shape, steps=5, family="ddpm")
    assert r.x.shape == (4, 3, 8, 8) and torch.isfinite(r.x).all()


def test_foreign_and_corrupt_files_get_one_message(tmp_path, capsys):
    """Not a checkpoint of the format, a truncated file, a pickle that would run code, a wrong configuration: one
    line each, exit 2, nothing written."""
    out = tmp_path / "m.pt"
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04 truncated")

    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    torch.save({"model": Evil(), "ema": {}, "step": 1}, tmp_path / "evil.pth")
    cases = [("other.pth", "needs 'model', 'ema' and 'step'"), ("cut.pth", "not a readable"),
             ("evil.pth", "could run code")]
    for name, message in cases:
        argv = ["import", str(tmp_path / name), "--format", "score_sde", "--config", "vp/cifar10_ddpm", "--out", str(out)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "ran code" not in err
    assert not out.exists()
    with pytest.raises(ConfigError, match="neither a released score_sde folder"):
        import_checkpoint(tmp_path / "other.pth", "score_sde", out, "vp/cifar10_dpm")


@pytest.mark.skipif(not CASES, reason="no score_sde fixtures")
def test_checkpoint_of_another_configuration_names_the_first_misfit(tmp_path):
    cfg = json.loads((FIXTURES / "vp_ddpmpp_continuous" / "config.json").read_text())
    cfg["model"]["nf"] = 32
    (tmp_path / "wide.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"tensor 'net\.all_modules\.\d+\.\w+' has shape"):
        import_checkpoint(FIXTURES / "vp_ddpmpp_continuous" / "checkpoint.pth", "score_sde", tmp_path / "m.pt",
                          str(tmp_path / "wide.json"))
    with pytest.raises(CheckpointError, match="tensors missing"):
        import_checkpoint(FIXTURES / "vp_ddpmpp" / "checkpoint.pth", "score_sde", tmp_path / "m.pt",
                          str(FIXTURES / "vp_ddpm" / "config.json"))
    with pytest.raises(CheckpointError, match="holds 1000 noise levels, the configuration 10"):
        import_checkpoint(FIXTURES / "vp_ddpmpp_continuous" / "checkpoint.pth", "score_sde", tmp_path / "m.pt",
                          str(FIXTURES / "vp_ddpmpp" / "config.json"))


def test_an_imported_model_samples_to_a_grid_from_the_cli(tmp_path):
    """sgm-bench sample --grid on an imported file: no dataset to load, the checkpoint's range gives the images."""
    case = FIXTURES / "vp_ddpmpp_continuous"
    assert main(["import", str(case / "checkpoint.pth"), "--format", "score_sde", "--config", str(case / "config.json"),
                 "--out", str(tmp_path / "m.pt")]) == 0
    assert main(["sample", str(tmp_path / "m.pt"), "--sampler", "euler_maruyama", "--steps", "3", "--n", "4",
                 "--out", str(tmp_path / "x.pt"), "--grid", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 1000
