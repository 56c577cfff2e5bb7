"""Datasets: toy distributions with exact densities and scores, and image datasets."""
from .images import IMAGES, ImageData
from .toy import TOYS, GaussianMixture

__all__ = ["IMAGES", "ImageData", "TOYS", "GaussianMixture"]
