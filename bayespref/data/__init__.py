"""Data: the :class:`Comparisons` container (validation, readers, encoding) and the bundled datasets."""

from bayespref.data.comparisons import Comparisons
from bayespref.data.datasets import Dataset, list_datasets, load_dataset

__all__ = ["Comparisons", "Dataset", "list_datasets", "load_dataset"]
