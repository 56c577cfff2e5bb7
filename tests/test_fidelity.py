"""FID / IS / KID through torch-fidelity: digits-CNN extractor, the Inception path, caching, bad input."""
import urllib.error
from unittest import mock

import pytest
import torch

from sgm_bench.data import IMAGES
from sgm_bench.errors import ConfigError, DataMissingError
from sgm_bench.metrics.digits_cnn import train_digits_classifier
from sgm_bench.metrics.fidelity import (DIGITS, INCEPTION, INCEPTION_FILE, DigitsFeatureExtractor, fidelity_metrics, finite_only,
                                        write_untrained_inception)


@pytest.fixture(scope="module")
def digits():
    return IMAGES["digits"]()


@pytest.fixture(scope="module")
def classifier(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "digits_cnn.pt"
    report = train_digits_classifier(digits.to_uint8(digits.to_model(digits.train)), digits.train_labels,
                                     digits.to_uint8(digits.to_model(digits.test)), digits.test_labels, path)
    return path, report


def test_digits_classifier_reaches_97_percent(classifier):
    assert classifier[1]["test_accuracy"] >= 0.97


def test_digits_fid_separates_data_from_noise_and_caches_reference(digits, classifier, tmp_path):
    weights, _ = classifier
    train, test = digits.to_uint8(digits.to_model(digits.train)), digits.to_uint8(digits.to_model(digits.test))
    kw = dict(extractor=DIGITS, weights_path=weights, cache_root=tmp_path, kid_subset_size=100)
    floor = fidelity_metrics(train[:600], test, **kw)
    calls_after_first = DigitsFeatureExtractor.calls
    noise = torch.randint(0, 256, (600, 1, 8, 8), dtype=torch.uint8).repeat(1, 3, 1, 1)
    bad = fidelity_metrics(noise, test, **kw)
    batches_for_600 = DigitsFeatureExtractor.calls - calls_after_first
    assert bad["fid"] > 10 * floor["fid"] and bad["kid"] > floor["kid"]
    assert floor["is"] > 5 > bad["is"]  # a confident 10-class classifier on real digits, not on noise
    assert floor["reference_hash"] == bad["reference_hash"] and floor["domain_features"] is True
    assert floor["n_generated"] == 600 and floor["n_reference"] == len(test) and floor["extractor"] == DIGITS
    # the second evaluation read the reference statistics from the cache: only the generated set went through
    fidelity_metrics(train[600:1200], test, **kw)
    assert DigitsFeatureExtractor.calls - calls_after_first - batches_for_600 == batches_for_600
    assert any(p.name.startswith(f"ref-{DIGITS}-") for p in tmp_path.iterdir())




def test_the_digits_cnn_is_scored_on_the_range_it_was_trained_on(digits, tmp_path):
    """The classifier's first layer sees the same input range when it is trained and when torch-fidelity extracts FID
    features: [-1, 1] for digits (its levels 0 and 16). It once trained on the level centres [-0.94, 0.94] and was
    scored on [-1, 1]."""
    from sgm_bench.metrics.digits_cnn import DigitsCNN, load_digits_cnn

    seen = {"train": [], "score": []}
    phase = ["train"]
    hook = lambda mod, args: seen[phase[0]].append((float(args[0].min()), float(args[0].max())))  # noqa: E731
    with mock.patch.object(DigitsCNN, "features", autospec=True,
                           side_effect=lambda self, x: (hook(None, (x,)), self.fc(self.conv(x)))[1]):
        px = lambda x: digits.to_uint8(digits.to_model(x))  # noqa: E731
        train_digits_classifier(px(digits.train[:256]), digits.train_labels[:256], px(digits.test[:64]),
                                digits.test_labels[:64], tmp_path / "cnn.pt", epochs=1)
        phase[0] = "score"
        fidelity_metrics(px(digits.train[:200]), px(digits.test), extractor=DIGITS, weights_path=tmp_path / "cnn.pt",
                         cache_root=tmp_path, kid_subset_size=50)
    lo = lambda k: min(a for a, _ in seen[k])  # noqa: E731
    hi = lambda k: max(b for _, b in seen[k])  # noqa: E731
    assert (lo("train"), hi("train")) == (lo("score"), hi("score")) == (-1.0, 1.0)
    with pytest.raises(ConfigError, match="uint8"):  # model-range floats are refused, not scaled silently
        load_digits_cnn(tmp_path / "cnn.pt").prepare(digits.to_model(digits.test[:4]))
    old = torch.load(tmp_path / "cnn.pt", weights_only=True)
    del old["input"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(DataMissingError, match="forcerun classifier"):
        load_digits_cnn(tmp_path / "old.pt")


@pytest.mark.slow
def test_inception_path_with_a_weights_file_written_by_the_test(tmp_path):
    weights = tmp_path / INCEPTION_FILE
    write_untrained_inception(weights)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=g)
    out = fidelity_metrics(a, b, extractor=INCEPTION, weights_path=weights, cache_root=tmp_path, kid_subset_size=6)
    assert out["fid"] >= 0 and out["is"] > 0 and out["domain_features"] is False


def test_missing_inception_weights_name_the_file(tmp_path):
    imgs = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(DataMissingError, match=INCEPTION_FILE):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION, weights_path=tmp_path / "nope.pth", cache_root=tmp_path,
                         kid_subset_size=2)
    offline = mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
                         side_effect=urllib.error.URLError("no network"))
    with offline, pytest.raises(DataMissingError, match=INCEPTION_FILE):
        fidelity_metrics(imgs, imgs, extractor=INCEPTION, cache_root=tmp_path, kid_subset_size=2)


def test_bad_inputs_fail_clearly(tmp_path, classifier):
    good = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    kw = dict(extractor=DIGITS, weights_path=classifier[0], cache_root=tmp_path, kid_subset_size=5)
    with pytest.raises(ConfigError, match="uint8"):
        fidelity_metrics(good.float(), good, **kw)
    with pytest.raises(ConfigError, match=r"\[N, 3, H, W\]"):
        fidelity_metrics(good[:, :1], good, **kw)
    with pytest.raises(ConfigError, match="at least 2"):
        fidelity_metrics(good[:1], good, **kw)
    with pytest.raises(ConfigError, match="KID subset size 50 exceeds"):
        fidelity_metrics(good, good, **{**kw, "kid_subset_size": 50})
    with pytest.raises(ConfigError, match="unknown feature extractor"):
        fidelity_metrics(good, good, **{**kw, "extractor": "clip"})


def test_non_finite_samples_are_counted_not_used():
    x = torch.randn(6, 1, 8, 8)
    x[1, 0, 0, 0], x[4, 0, 2, 2] = float("nan"), float("inf")
    kept, dropped = finite_only(x)
    assert dropped == 2 and len(kept) == 4 and torch.isfinite(kept).all()


def test_pooled_seed_sets_carry_the_pooled_fid_and_the_jackknife_interval(tmp_path):
    """pool_seed_sets: one FID on all seed sets' images; the rows' mean is that FID and their 95 % t interval the
    delete-one jackknife's over seed sets, sqrt((k - 1) / k sum (leave-out - their mean)^2) times t(k - 1)."""
    import math

    from scipy import stats

    from sgm_bench.evaluation import pooled_quality
    from sgm_bench.plan import Evaluation
    from sgm_bench.report.stats import half_width
    from sgm_bench.spec import load_dataset

    data = load_dataset({"name": "digits"})
    px = data.images.to_uint8
    train_digits_classifier(px(data.train[:300]), data.train_labels[:300], px(data.test[:50]), data.test_labels[:50],
                            tmp_path / "cnn.pt", epochs=1)
    g = torch.Generator().manual_seed(0)
    k, n = 4, 70
    xs = [data.train[i * n:(i + 1) * n] + (0.1 + 0.1 * i) * torch.randn(n, 1, 8, 8, generator=g) for i in range(k)]
    ev = Evaluation(n, k, 20, pool_seed_sets=True)
    rows = pooled_quality(data, xs, ev, tmp_path / "cache", tmp_path / "cnn.pt")
    fid = lambda parts: fidelity_metrics(px(torch.cat(parts)), px(data.train), extractor=DIGITS,  # noqa: E731
                                         weights_path=tmp_path / "cnn.pt", cache_root=tmp_path / "cache",
                                         kid_subset_size=20)["fid"]
    pooled, out = fid(xs), [fid(xs[:i] + xs[i + 1:]) for i in range(k)]
    se = math.sqrt((k - 1) / k * sum((o - sum(out) / k) ** 2 for o in out))
    values = [r["fid"] for r in rows]
    assert sum(values) / k == pytest.approx(pooled, rel=1e-9)
    assert half_width(values) == pytest.approx(stats.t.ppf(0.975, k - 1) * se, rel=1e-9)
    assert [r["fid_leave_out"] for r in rows] == pytest.approx(out)
    assert all(r["n_generated"] == k * n and r["status"] == "ok" for r in rows)
    # a seed set with 20 of 70 non-finite samples: its finite ones are pooled, its row says partial, not diverged
    xs[0][:20] = float("nan")
    rows = pooled_quality(data, xs, ev, tmp_path / "cache", tmp_path / "cnn.pt")
    assert rows[0]["status"] == "partial (20/70 non-finite)" and rows[0]["n_nonfinite"] == 20
    assert all(r["status"] == "ok" and r["n_generated"] == k * n - 20 for r in rows[1:])
    assert sum(r["fid"] for r in rows) / k == pytest.approx(fid([x[20:] if i == 0 else x for i, x in enumerate(xs)]))
