"""Option features as one (option, feature) matrix, for analyses that work per option."""

from __future__ import annotations

import numpy as np
import pandas as pd


def option_feature_matrix(data, names) -> np.ndarray | None:
    """The ``(option, feature)`` matrix of the features ``names`` of a :class:`~bayespref.Comparisons`.

    From the option-feature table when the data have one; otherwise from the per-comparison columns,
    when every option has the same values wherever it appears. None when they vary by comparison
    (e.g. features of a prompt-response pair); a zero-column matrix when ``names`` is empty.
    """
    if not names:
        return np.zeros((data.n_options, 0))
    if data.option_features is not None:
        return data.option_features.loc[data.options, list(names)].to_numpy(dtype=float)
    idx = [list(data.feature_names).index(f) for f in names]
    opt = np.concatenate([np.asarray(data.a), np.asarray(data.b)])
    x = np.concatenate([np.asarray(data.xa)[:, idx], np.asarray(data.xb)[:, idx]])
    grouped = pd.DataFrame(x).groupby(opt)
    if np.any((grouped.max() - grouped.min()).to_numpy() > 1e-9):
        return None
    first = grouped.first()
    X = np.full((data.n_options, len(idx)), np.nan)
    X[first.index.to_numpy()] = first.to_numpy()
    return X
