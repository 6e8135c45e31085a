"""Fixtures shared by the tests of fits on data streamed from Parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayespref as bp


@pytest.fixture(scope="module")
def write_stream(tmp_path_factory):
    """``make(n_users, comparisons_per_user, batch_rows)``: simulated hierarchical judgements (15 options,
    2 features) written by user to 3 Parquet files; returns the reader and the same rows in memory
    (users in the same, label, order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bayespref.data.readers.parquet_stream import ParquetComparisons

    def make(n_users: int, comparisons_per_user: int, batch_rows: int):
        sim = bp.simulate.hierarchical(n_users=n_users, comparisons_per_user=comparisons_per_user, n_options=15,
                                       n_features=2, seed=3)
        data = sim.comparisons()
        xa, xb = np.asarray(data.xa), np.asarray(data.xb)
        df = pd.DataFrame({"a": np.asarray(data.options)[data.a], "b": np.asarray(data.options)[data.b],
                           "y": np.asarray(data.y), "u": np.asarray(data.users)[data.user],
                           "f0_a": xa[:, 0], "f0_b": xb[:, 0], "f1_a": xa[:, 1], "f1_b": xb[:, 1]})
        df = df.sort_values("u", kind="stable").reset_index(drop=True)
        path = tmp_path_factory.mktemp("stream") / "d"
        path.mkdir()
        for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
            pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), path / f"part-{i}.parquet")
        pc = ParquetComparisons(path, a="a", b="b", outcome="y", user="u", features=["f0", "f1"],
                                batch_rows=batch_rows)
        return pc, data

    return make
