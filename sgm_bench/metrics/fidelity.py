"""FID / IS / KID (and precision/recall) through torch-fidelity, never by hand.

Natural images use torch-fidelity's `inception-v3-compat`; digits use the registered `digits-cnn` extractor,
whose scores are domain-feature scores, not Inception scores (every record says which extractor made it).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from ..errors import ConfigError, DataMissingError
from ..io import file_hash
from .digits_cnn import load_digits_cnn

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION = "inception-v3-compat"
DIGITS = "digits-cnn"


class DigitsFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity extractor over DigitsCNN: 'penultimate' (128-d) for FID/KID/PRC, 'logits_unbiased' for IS."""

    calls = 0  # forward passes, counted so tests can see cached reference statistics are reused

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None or not Path(feature_extractor_weights_path).exists():
            raise DataMissingError(f"digits-cnn weights not found at {feature_extractor_weights_path}; train them with "
                                   "sgm_bench.metrics.digits_cnn.train_digits_classifier (the workflow's `classifier` rule)")
        self.net = load_digits_cnn(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list():
        return "penultimate", "logits_unbiased"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits_unbiased", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return None

    def forward(self, x):
        DigitsFeatureExtractor.calls += 1
        x = x[:, : self.net.channels].float() / 127.5 - 1  # uint8 3xHxW (grey repeated) back to the CNN's [-1, 1]
        feats = self.net.features(x)
        out = {"penultimate": feats, "logits_unbiased": self.net.head(feats)}
        return tuple(out[f].double() for f in self.features_list)


torch_fidelity.register_feature_extractor(DIGITS, DigitsFeatureExtractor)


class _Images(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def check_images(x: torch.Tensor, what: str) -> torch.Tensor:
    """uint8 [N, 3, H, W] or a clear error."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
        raise ConfigError(f"{what} must be a uint8 tensor [N, 3, H, W] (use ImageData.to_uint8), got "
                          f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ConfigError(f"{what} must have shape [N, 3, H, W], got {list(x.shape)}")
    if len(x) < 2:
        raise ConfigError(f"{what} has {len(x)} image(s); FID / KID need at least 2 (use thousands for real numbers)")
    return x


from .toy import finite_only  # noqa: E402  (re-exported: the same rule for images and toys)


def content_hash(*parts) -> str:
    """sha256 over tensors' bytes and strings: the name reference statistics are cached under."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.contiguous().cpu().numpy().tobytes() if isinstance(p, torch.Tensor) else str(p).encode())
    return h.hexdigest()[:16]


FEATURE_DIMS = {DIGITS: 128, INCEPTION: 2048}  # the features FID and KID are computed on


def _numpy_globals() -> list:
    """What torch-fidelity's cached statistics (NumPy arrays) need beyond tensors: array reconstruction and dtypes,
    none of which can run code."""
    import numpy as np

    dtypes = [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int32", "int64", "uint8", "bool")]
    return [np._core.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def check_data_file(path, what: str) -> None:
    """A file the suite hands to a third-party loader must be plain tensors or arrays: torch.load(weights_only=True)
    refuses a pickle that would run code when loaded (torch-fidelity itself loads with weights_only=False)."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        why = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:200]
        raise DataMissingError(f"{what} {path} is not a plain tensor file ({type(e).__name__}: {why}); "
                               "it was not loaded, since it could run code: replace it with the real file") from e


_CHECKED: set = set()  # (path, size, mtime) of cache files already verified in this process


def check_cache(cache_root) -> None:
    """Every cached statistics file torch-fidelity might load from `cache_root` is plain tensors; each file version is
    read once per process, not at every metric call."""
    for f in sorted(Path(cache_root).glob("*.pt")) if cache_root and Path(cache_root).is_dir() else []:
        st = f.stat()
        if (f, st.st_size, st.st_mtime_ns) not in _CHECKED:
            check_data_file(f, "cached reference statistics")
            _CHECKED.add((f, st.st_size, st.st_mtime_ns))


def write_untrained_inception(path) -> Path:
    """torch-fidelity's Inception-v3 with random weights, saved where `inception_weights` points: the Inception code
    path for smoke runs on machines that cannot download the real weights. Its FID / IS / KID mean nothing."""
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    state = {}
    with mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: state.update(self.state_dict())):
        FeatureExtractorInceptionV3(INCEPTION, ["2048"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return Path(path)


def extractor_kwargs(extractor: str, weights_path=None) -> dict:
    """torch-fidelity arguments for an extractor; Inception without weights or network fails with the file to get."""
    if extractor == DIGITS:
        return {"feature_extractor": DIGITS, "feature_extractor_weights_path": str(weights_path)}
    if extractor == INCEPTION:
        if weights_path is None:
            return {"feature_extractor": INCEPTION}
        if not Path(weights_path).exists():
            raise DataMissingError(f"Inception weights not found at {weights_path}: download {INCEPTION_FILE} "
                                   "(torch-fidelity's release v0.2.0) and put it there, or set metrics.inception_weights")
        check_data_file(weights_path, "Inception weights")
        return {"feature_extractor": INCEPTION, "feature_extractor_weights_path": str(weights_path)}
    raise ConfigError(f"unknown feature extractor {extractor!r}; choose {DIGITS!r} or {INCEPTION!r}")


def fidelity_metrics(generated: torch.Tensor, reference: torch.Tensor, *, extractor: str, weights_path=None,
                     cache_root, isc: bool = True, fid: bool = True, kid: bool = True, prc: bool = False,
                     kid_subset_size: int = 1000, device: str = "cpu", seed: int = 0) -> dict:
    """FID / IS / KID of uint8 images against a reference set, with the bookkeeping every number must carry."""
    generated, reference = check_images(generated, "generated images"), check_images(reference, "reference images")
    if kid and kid_subset_size > min(len(generated), len(reference)):
        raise ConfigError(f"KID subset size {kid_subset_size} exceeds the smaller set ({len(generated)} generated, "
                          f"{len(reference)} reference); lower metrics.kid_subset_size or use more samples")
    kw = extractor_kwargs(extractor, weights_path)
    check_cache(cache_root)
    weights_id = file_hash(weights_path) if weights_path else "default"
    ref_hash = content_hash(reference, extractor, weights_id)
    try:
        out = torch_fidelity.calculate_metrics(
            input1=_Images(generated), input2=_Images(reference), cuda=torch.device(device).type == "cuda",
            isc=isc, fid=fid, kid=kid, prc=prc, kid_subset_size=kid_subset_size, verbose=False, cache=True,
            cache_root=str(cache_root), input2_cache_name=f"ref-{extractor}-{ref_hash}", rng_seed=seed,
            save_cpu_ram=True, **kw)
    except OSError as e:  # download refused: no network and no weights file
        raise DataMissingError(f"could not obtain the {extractor} weights ({e}); download {INCEPTION_FILE} and set "
                               "metrics.inception_weights to its path") from e
    names = {"frechet_inception_distance": "fid", "inception_score_mean": "is", "inception_score_std": "is_std",
             "kernel_inception_distance_mean": "kid", "kernel_inception_distance_std": "kid_std",
             "precision": "precision", "recall": "recall"}
    record = {names[k]: float(v) for k, v in out.items() if k in names}
    record.update(extractor=extractor, n_generated=len(generated), n_reference=len(reference),
                  reference_hash=ref_hash, domain_features=extractor != INCEPTION)
    dim = FEATURE_DIMS.get(extractor)
    if dim and min(len(generated), len(reference)) <= dim:
        record.update(comparable=False, note=f"FID / KID on {min(len(generated), len(reference))} images with {dim}-d "
                      "features: the covariance is singular and the value depends on n; not comparable across n")
    else:
        record["comparable"] = True
    return record
