"""The course experiments run and report what they claim (small settings)."""
import math

import pytest

from sgm_bench.errors import ConfigError
from sgm_bench.spec import load_dataset
from sgm_bench.experiments import EXPERIMENTS
from sgm_bench.metrics.digits_cnn import train_digits_classifier
from sgm_bench.train import Trainer


def test_langevin_mixing_numbers(tmp_path):
    out = EXPERIMENTS["langevin_mixing"](tmp_path / "mix", n=1000)
    assert abs(out["langevin_weight_minor"] - 0.2) > 0.15 and out["annealed_error"] < 0.03
    assert (tmp_path / "mix.png").stat().st_size > 1000 and (tmp_path / "mix.pdf").exists()


def test_objective_cost_reports_every_objective(tmp_path):
    out = EXPERIMENTS["objective_cost"](tmp_path / "cost", dims=(2, 16, 32), repeats=1)
    for obj in ("esm", "ssm", "dsm"):
        assert math.isfinite(out[f"loglog_slope[{obj}]"]) and out[f"seconds_per_step_D32[{obj}]"] > 0


@pytest.fixture(scope="module")
def tiny_rgb(tmp_path_factory):
    """A few-step class-conditional VP U-Net on generated RGB images and a one-epoch clean classifier: enough to run the
    controllable-generation experiments end to end (their numbers mean nothing here)."""
    root = tmp_path_factory.mktemp("tiny")
    data_cfg = {"name": "synthetic", "channels": 3}
    cfg = {"data": data_cfg, "model": {"family": "vp", "class_conditional": True,
                                       "net": {"name": "unet", "ch": 8, "ch_mult": [1], "attn_resolutions": []}},
           "train": {"steps": 3, "batch_size": 8, "warmup": 1, "label_dropout": 0.2, "progress": False}}
    d = load_dataset(data_cfg)
    Trainer(cfg, d, root / "cond").run()
    px = d.images.to_uint8
    train_digits_classifier(px(d.train), d.train_labels, px(d.test), d.test_labels, root / "clean.pt", epochs=1,
                            channels=3)
    return {"data": data_cfg, "model_path": root / "cond" / "model.pt", "classifier_path": root / "clean.pt",
            "cache_root": root / "cache"}


def test_classifier_guidance_experiment_runs_with_the_unet_time_classifier(tiny_rgb, tmp_path):
    out = EXPERIMENTS["classifier_guidance"](tmp_path / "g", scales=(0.0, 2.0), per_class=3, steps=5, n_inpaint=6,
                                             classifier_steps=3, time_classifier={"name": "unet", "ch": 8,
                                                                                  "ch_mult": [1, 2], "attn_resolutions": []},
                                             **tiny_rgb)
    for w in ("0", "2"):
        assert 0 <= out[f"accuracy[w={w}]"] <= 1 and math.isfinite(out[f"per_class_fid_mean[w={w}]"])
    assert all(math.isfinite(out[k]) for k in ("inpaint_mse_masked", "inpaint_mean_of_4_mse_masked",
                                               "mean_image_mse_masked", "unconditional_mse_masked"))
    assert (tmp_path / "g.png").exists()


def test_classifier_free_guidance_experiment_reports_every_scale_and_refuses_unconditional_models(tiny_rgb, tmp_path):
    out = EXPERIMENTS["classifier_free_guidance"](tmp_path / "cfg", scales=(0.0, 3.0), per_class=3, steps=5, **tiny_rgb)
    assert {"accuracy[w=-1]", "accuracy[w=0]", "accuracy[w=3]"} <= set(out)
    uncond = tmp_path / "uncond"
    cfg = {"data": tiny_rgb["data"], "model": {"family": "vp", "net": {"name": "mlp", "hidden": 16}},
           "train": {"steps": 2, "batch_size": 8, "warmup": 1, "progress": False}}
    Trainer(cfg, load_dataset(tiny_rgb["data"]), uncond).run()
    with pytest.raises(ConfigError, match="class_conditional"):
        EXPERIMENTS["classifier_free_guidance"](tmp_path / "x", **{**tiny_rgb, "model_path": uncond / "model.pt"})


def test_colorization_experiment_keeps_the_grey_image_and_refuses_grey_data(tiny_rgb, tmp_path):
    out = EXPERIMENTS["colorization"](tmp_path / "col", tiny_rgb["model_path"], tiny_rgb["data"], n=6, steps=5,
                                      sampler="euler_maruyama")
    assert out["grey_preserved_max_error"] < 1e-5 and math.isfinite(out["chroma_mse"])
    with pytest.raises(ConfigError, match="needs RGB data"):
        EXPERIMENTS["colorization"](tmp_path / "g", tiny_rgb["model_path"], {"name": "synthetic"}, n=2, steps=2)
