"""Typed grain transforms applied jointly to image, depth and validity mask (one concept per module)."""

from data_pipelines.transforms.border import RemoveWhiteBorder, white_border_box
from data_pipelines.transforms.cover import CoverResizeCrop, cover_size
from data_pipelines.transforms.finalize import Finalize, ResizeImage
from data_pipelines.transforms.geometric import (
    CenterCropOrPad,
    KBCrop,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotate,
    kb_crop_box,
)
from data_pipelines.transforms.photometric import PhotometricJitter

__all__ = [
    "CenterCropOrPad", "CoverResizeCrop", "Finalize", "KBCrop", "PhotometricJitter", "RandomCrop",
    "RandomHorizontalFlip", "RandomRotate", "RemoveWhiteBorder", "ResizeImage", "cover_size", "kb_crop_box",
    "white_border_box",
]
