"""Data: the :class:`Comparisons` container (validation, readers, encoding), text features and the bundled
datasets."""

from bayespref.data.comparisons import Comparisons
from bayespref.data.datasets import Dataset, list_datasets, load_dataset
from bayespref.data.text import TextFeatures

__all__ = ["Comparisons", "Dataset", "TextFeatures", "list_datasets", "load_dataset"]
