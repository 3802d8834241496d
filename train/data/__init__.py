"""Data sets (real loaders for the standard file formats) and batch augmentation."""

from train.data.datasets import DATASETS, Dataset, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
