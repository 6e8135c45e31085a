"""Streaming comparisons from a Parquet directory in user-aligned chunks (issue 24)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.errors import DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from bayespref.data.readers.parquet_stream import ParquetComparisons  # noqa: E402


def _frame(n_users=23, seed=0):
    sim = bp.simulate.hierarchical(n_users=n_users, comparisons_per_user=7, n_options=12, n_features=2, seed=seed)
    data = sim.comparisons()
    xa, xb = np.asarray(data.xa), np.asarray(data.xb)
    df = pd.DataFrame({"a": np.asarray(data.options)[data.a], "b": np.asarray(data.options)[data.b],
                       "y": np.asarray(data.y), "u": np.asarray(data.users)[data.user],
                       "x0_a": xa[:, 0], "x0_b": xb[:, 0], "x1_a": xa[:, 1], "x1_b": xb[:, 1]})
    return df.sort_values("u", kind="stable").reset_index(drop=True), data


def _write(df, path, files=3):
    path.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), files)):
        pq.write_table(pa.Table.from_pandas(df.iloc[part], preserve_index=False), path / f"part-{i}.parquet")
    return path


def test_chunks_hold_whole_users_and_match_the_grouped_layout(tmp_path):
    df, data = _frame()
    pc = ParquetComparisons(_write(df, tmp_path / "d"), a="a", b="b", outcome="y", user="u",
                            features=["x0", "x1"], batch_rows=10)  # batches cut users in two
    assert pc.n_comparisons == len(df) and pc.n_users == df.u.nunique()
    chunks = list(pc.chunks(users=5))
    assert len(chunks) == 5 and all(c["dx"].shape == (5, 2, pc.max_per_user) for c in chunks)
    ids = np.concatenate([c["users"] for c in chunks])
    assert (ids[:pc.n_users] == np.arange(pc.n_users)).all() and (ids[pc.n_users:] == -1).all()
    # each user's judgements, in file order, against the frame
    for c in chunks:
        for k, u in enumerate(c["users"]):
            if u < 0:
                assert not c["mask"][k].any()
                continue
            rows = df[df.u == pc.users[u]]
            m = c["mask"][k]
            np.testing.assert_allclose(c["dx"][k, 0, m], rows.x0_a - rows.x0_b, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(c["y"][k, m], rows.y)


def test_errors_name_the_file_and_row(tmp_path):
    df, _ = _frame()
    bad = df.copy()
    bad.loc[len(df) - 2, "y"] = 3
    with pytest.raises(DataError, match=r"part-2\.parquet.*outcome.*rows \[\d+\]"):
        ParquetComparisons(_write(bad, tmp_path / "y"), a="a", b="b", outcome="y", user="u", features=["x0"])
    shuffled = df.sample(frac=1.0, random_state=1)
    with pytest.raises(DataError, match="ordered by user"):
        ParquetComparisons(_write(shuffled, tmp_path / "s"), a="a", b="b", outcome="y", user="u")
    with pytest.raises(DataError, match=r"no column\(s\) \['len_a', 'len_b'\]"):
        ParquetComparisons(_write(df, tmp_path / "c"), a="a", b="b", outcome="y", user="u", features=["len"])
    nan = df.copy()
    nan.loc[3, "x1_b"] = np.inf
    with pytest.raises(DataError, match=r"part-0\.parquet: feature column x1_b is not finite in rows \[3\]"):
        ParquetComparisons(_write(nan, tmp_path / "n"), a="a", b="b", outcome="y", user="u", features=["x1"])
