"""Course experiment 4 and controllable generation: classifier guidance, classifier-free guidance, inpainting and
colorization, each measured (accuracy of an independent clean classifier, per-class FID, error on the unknown part)."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid

from .. import samplers
from ..data import GaussianMixture
from ..errors import ConfigError
from ..spec import load_dataset
from ..guidance import (Colorization, Inpainting, classifier_free, classifier_guided, classifier_log_prob,
                        train_time_classifier)
from ..models import build_sde
from ..report.plots import plt, save
from ..report.stats import spread
from .registry import EXPERIMENTS


def _per_class(d, draw, scales, per_class: int, clean_path, cache_root, fid_extractor: str = "digits-cnn",
               fid_weights=None) -> tuple[dict, dict]:
    """draw(w, y) -> samples for labels y, per guidance scale w: the clean classifier's accuracy, the mean per-class FID
    (against the test images of that class; features of the clean classifier unless `fid_extractor` says otherwise),
    and a grid of 8 samples per class."""
    from ..metrics.digits_cnn import accuracy, load_digits_cnn
    from ..metrics.fidelity import fidelity_metrics

    clean = load_digits_cnn(clean_path)
    y = torch.arange(d.num_classes).repeat_interleave(per_class)
    refs = [d.images.to_uint8(d.test[d.test_labels == c]) for c in range(d.num_classes)]
    res, grids = {}, {}
    for w in scales:
        x = draw(w, y).clamp(-1, 1)
        res[f"accuracy[w={w:g}]"] = accuracy(clean, d.images.to_uint8(x), y)
        fids = [fidelity_metrics(d.images.to_uint8(x[y == c]), ref, extractor=fid_extractor,
                                 weights_path=fid_weights or clean_path, cache_root=cache_root, isc=False,
                                 kid=False)["fid"] for c, ref in enumerate(refs)]
        res[f"per_class_fid_mean[w={w:g}]"] = float(np.mean(fids))
        grids[w] = x.reshape(d.num_classes, per_class, *x.shape[1:])[:, :8].transpose(0, 1).flatten(0, 1)
    # the floor of the mean per-class FID: `per_class` real training images of each class against the same test
    # references, over 5 random draws (mean and 5-95 % range)
    floor = []
    for draw_seed in range(5):
        g = torch.Generator().manual_seed(draw_seed)
        floor.append(np.mean([fidelity_metrics(
            d.images.to_uint8(real[torch.randperm(len(real), generator=g)[:per_class]]), ref, extractor=fid_extractor,
            weights_path=fid_weights or clean_path, cache_root=cache_root, isc=False, kid=False)["fid"]
            for real, ref in ((d.train[d.train_labels == c], refs[c]) for c in range(d.num_classes))]))
    res.update({f"per_class_fid_floor_{k}": v for k, v in spread(floor).items() if k != "draws"})
    return res, grids


def _show(ax, images, title: str, nrow: int = 10):
    """A grid of uint8 images, or of floats in [0, 1]."""
    ax.imshow(make_grid(images, nrow=nrow, padding=1).permute(1, 2, 0).numpy())
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _grid_figure(d, grids, res, extra: int = 0):
    fig, axes = plt.subplots(1, len(grids) + extra, figsize=(3.2 * (len(grids) + extra), 3.6), squeeze=False)
    for ax, (w, g) in zip(axes[0], grids.items()):
        _show(ax, d.images.to_uint8(g), f"w = {w:g}: accuracy {res[f'accuracy[w={w:g}]']:.2f}")
    return fig, axes[0]


def inpainting_errors(draw, truth, mask, baselines: dict, repeats: int = 4) -> tuple[dict, torch.Tensor]:
    """Squared error on the unknown region per pixel. Exact posterior samples have twice the posterior variance, so
    one sample loses to the mean image under MSE; the mean of `repeats` inpaintings estimates the posterior mean and
    should beat the mean image (prior variance) when the observation is informative. draw(seed) -> completions;
    baselines: {name: images or one image} scored the same way, as `<name>_mse_masked`."""
    hidden = 1 - mask
    mse = lambda a: float(((a - truth) ** 2 * hidden).sum() / hidden.sum())  # noqa: E731
    fills = [draw(s) for s in range(repeats)]
    return {"inpaint_mse_masked": float(np.mean([mse(f) for f in fills])),
            f"inpaint_mean_of_{repeats}_mse_masked": mse(torch.stack(fills).mean(0)),
            **{f"{k}_mse_masked": mse(v.expand_as(truth)) for k, v in baselines.items()}}, fills[0]


@EXPERIMENTS.register("classifier_guidance")
def classifier_guidance(out, model_path, classifier_path, scales=(0.0, 1.0, 2.0, 4.0), per_class: int = 50,
                        steps: int = 100, sampler: str = "euler_maruyama", time_classifier: dict | None = None,
                        classifier_steps: int = 3000, data: dict | None = None, n_inpaint: int = 200,
                        fid_extractor: str = "digits-cnn", fid_weights=None, cache_root="work/fidelity-cache",
                        device="cpu", seed: int = 0):
    """4. Classifier guidance with a time-dependent classifier p_t(y | x(t)) (MLP on the pixels and t, 2x128, or the
    U-Net encoder): samples per scale w scored by the independent clean classifier, and inpainting of the bottom half
    of held-out test images (error on the masked region)."""
    from ..train import load_model

    d = load_dataset(data or {"name": "digits"})
    model = load_model(model_path, device=device)
    clf = train_time_classifier(model.sde, d.train, d.train_labels, d.num_classes, steps=classifier_steps, seed=seed,
                                net=time_classifier, device=device)
    shape = tuple(d.train.shape[1:])

    def draw(w, y):
        fn = classifier_guided(model.score_fn(), classifier_log_prob(clf, y.to(device)), w)
        return samplers.sample(sampler, fn, model.sde, (len(y), *shape), steps=steps, seed=seed, device=device).x.cpu()

    res, grids = _per_class(d, draw, scales, per_class, classifier_path, cache_root, fid_extractor, fid_weights)
    truth = d.test[:n_inpaint]
    mask = torch.zeros_like(truth)
    mask[..., : shape[-2] // 2, :] = 1  # the top half is observed

    truth_d, mask_d = truth.to(device), mask.to(device)

    def inpaint(s):
        con = Inpainting(model.sde, truth_d, mask_d, torch.Generator(device).manual_seed(seed + s))
        return samplers.sample(sampler, model.score_fn(), model.sde, truth.shape, steps=steps, seed=seed + s,
                               constraint=con, device=device).x.clamp(-1, 1).cpu()

    free = samplers.sample(sampler, model.score_fn(), model.sde, truth.shape, steps=steps, seed=seed + 99,
                           device=device).x.clamp(-1, 1).cpu()
    errors, filled = inpainting_errors(inpaint, truth, mask, {"mean_image": d.train.mean(0, keepdim=True),
                                                              "unconditional": free})
    res.update(errors)
    fig, axes = _grid_figure(d, grids, res, extra=1)
    show = torch.cat([truth[:10] * mask[:10] - (1 - mask[:10]), filled[:10], truth[:10]])
    _show(axes[-1], d.images.to_uint8(show),
          f"inpainting (observed / filled / truth)\nmasked MSE {res['inpaint_mse_masked']:.3f}")
    save(fig, out)
    return res


@EXPERIMENTS.register("classifier_free_guidance")
def classifier_free_guidance(out, model_path, classifier_path, scales=(0.0, 1.0, 2.0, 4.0), per_class: int = 50,
                             steps: int = 100, sampler: str = "euler_maruyama", data: dict | None = None,
                             fid_extractor: str = "digits-cnn", fid_weights=None, cache_root="work/fidelity-cache",
                             device="cpu", seed: int = 0):
    """4b. Classifier-free guidance (Ho & Salimans 2022): a class-conditional model trained with label dropout, sampled
    with (1 + w) s(x, t, y) - w s(x, t, null); w = 0 is the conditional model, w = -1 the unconditional one."""
    from ..train import load_model

    d = load_dataset(data or {"name": "digits"})
    model = load_model(model_path, device=device)
    if not getattr(model.net.cond, "num_classes", 0):
        raise ConfigError(f"{model_path}: classifier-free guidance needs a model trained with model.class_conditional: "
                          "true and train.label_dropout > 0")
    shape = tuple(d.train.shape[1:])

    def draw(w, y):
        fn = classifier_free(model.score_fn(y.to(device)), model.score_fn(), w)
        return samplers.sample(sampler, fn, model.sde, (len(y), *shape), steps=steps, seed=seed, device=device).x.cpu()

    res, grids = _per_class(d, draw, (-1.0, *scales), per_class, classifier_path, cache_root, fid_extractor,
                            fid_weights)
    fig, _ = _grid_figure(d, grids, res)
    save(fig, out)
    return res


def _colorize_figure(out, grey, x, truth, chroma_mse: float):
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    for ax, (imgs, title) in zip(axes, [(grey.expand_as(truth), "grey input"),
                                        (x, f"colorized: chroma MSE {chroma_mse:.4f}"), (truth, "truth")]):
        _show(ax, ((imgs[:24] + 1) / 2).clamp(0, 1), title, nrow=6)
    save(fig, out)


def _chroma_errors(x, truth, grey) -> dict:
    """Mean squared error of the chroma (x minus its grey level) against the truth's, beside the grey image's own."""
    chroma = lambda a: a - a.mean(1, keepdim=True)  # noqa: E731
    err = lambda a: float((chroma(a) - chroma(truth)).pow(2).mean())  # noqa: E731
    return {"chroma_mse": err(x), "grey_chroma_mse": err(grey.expand_as(truth)),
            "grey_preserved_max_error": float((x.mean(1, keepdim=True) - grey).abs().max())}


@EXPERIMENTS.register("colorization")
def colorization(out, model_path, data: dict, n: int = 200, steps: int = 1000, sampler: str = "pc", device="cpu",
                 seed: int = 0):
    """Colorization of held-out RGB test images by a trained model (Song et al. 2021, App. I.2): the grey image is
    imposed in a decoupled colour basis at every step; chroma error against the truth and the grey image's."""
    from ..train import load_model

    d = load_dataset(data)
    if d.train.shape[1] != 3:
        raise ConfigError(f"colorization needs RGB data; {data.get('name')} has {d.train.shape[1]} channel(s)")
    model = load_model(model_path, device=device)
    truth = d.test[:n]
    grey = truth.mean(1, keepdim=True)
    con = Colorization(model.sde, grey.to(device), torch.Generator(device).manual_seed(seed))
    x = samplers.sample(sampler, model.score_fn(), model.sde, truth.shape, steps=steps, seed=seed, constraint=con,
                        device=device).x.cpu()
    res = _chroma_errors(x, truth, grey)  # before clamping to the pixel range, which may move the grey level
    _colorize_figure(out, grey, x, truth, res["chroma_mse"])
    return res


COLOURS = torch.tensor([[0.6, -0.3, -0.3], [-0.3, 0.6, -0.3], [0.1, 0.1, 0.7]])  # grey levels 0, 0, 0.3


def _colour_posterior(gm, grey, var: float, gen) -> torch.Tensor:
    """Exact samples of x | grey for the flat-colour mixture: the colour by its posterior given the grey image, the
    chroma from that component (isotropic noise: chroma and grey are independent within a component)."""
    n, g_k = len(grey), COLOURS.mean(1)
    loglik = -((grey.flatten(1)[:, None, :] - g_k[None, :, None]) ** 2).sum(2) / (2 * var / 3)
    k = torch.multinomial(torch.softmax(loglik + gm.weights.log().float(), 1), 1, generator=gen)[:, 0]
    z = gm.means[k].float().reshape(grey.shape[0], 3, *grey.shape[2:]) + var**0.5 * torch.randn(
        (n, 3, *grey.shape[2:]), generator=gen)
    return z - z.mean(1, keepdim=True) + grey


@EXPERIMENTS.register("colorization_oracle")
def colorization_oracle(out, n: int = 600, size: int = 4, steps: int = 500, sampler: str = "pc", snr: float = 0.16,
                        seed: int = 0):
    """Colorization on RGB data with an exact score: 3 x size x size images of three flat colours (pixel noise 0.1), two
    of the same grey level. The grey image identifies the third colour and leaves the other two 50 / 50; measured: the
    chroma error beside the exact posterior's and the grey image's, and how often the identifiable colour comes back
    (exact posterior: always; the replacement method is an approximation and falls short). snr: the Langevin step of
    score_sde's colorizer (its VE configs' 0.16), kept on this VP process (Table 5's VP value is 0.01)."""
    D, var = 3 * size * size, 0.01
    means = COLOURS[:, :, None].expand(3, 3, size * size).reshape(3, D).double()
    gm = GaussianMixture([1 / 3] * 3, means, torch.eye(D, dtype=torch.float64)[None].expand(3, D, D) * var)
    sde = build_sde("vp")
    gen = torch.Generator().manual_seed(seed)
    truth = gm.sample(n, gen).float().reshape(n, 3, size, size)
    grey = truth.mean(1, keepdim=True)
    flat = lambda f: lambda x, t: f(x.flatten(1), t).reshape(x.shape)  # noqa: E731
    x = samplers.sample(sampler, flat(gm.score_fn(sde)), sde, truth.shape, steps=steps, seed=seed,
                        constraint=Colorization(sde, grey, gen), **({"snr": snr} if sampler == "pc" else {})).x
    colour = lambda a: (a.flatten(2).mean(2)[:, None, :] - COLOURS).pow(2).sum(2).argmin(1)  # noqa: E731
    first_two = colour(truth) < 2
    res = _chroma_errors(x, truth, grey) | {
        "exact_posterior_chroma_mse": _chroma_errors(_colour_posterior(gm, grey, var, gen), truth, grey)["chroma_mse"],
        "identifiable_colour_recovered": float((colour(x)[~first_two] == 2).double().mean()),
        "ambiguous_pair_first_share": float((colour(x)[first_two] == 0).double().mean())}
    _colorize_figure(out, grey, x, truth, res["chroma_mse"])
    return res
