"""sgm-bench: benchmark and reproducibility suite for score-based generative models."""
__version__ = "0.1.0"


def load_model(path, device="cpu"):
    """A trained or imported model file as a ScoreModel (EMA weights, frozen): `model.score(x, t)`, `model.sde`."""
    from .train import load_model as _load

    return _load(path, device=device)
