"""sgm-bench: benchmark and reproducibility suite for score-based generative models."""
__version__ = "0.1.0"
