"""Data: the :class:`Comparisons` and :class:`Rankings` containers (validation, readers, encoding), text
features and the bundled datasets."""

from bayespref.data.comparisons import Comparisons
from bayespref.data.datasets import Dataset, list_datasets, load_dataset
from bayespref.data.rankings import Rankings
from bayespref.data.text import TextFeatures

__all__ = ["Comparisons", "Dataset", "Rankings", "TextFeatures", "list_datasets", "load_dataset"]
