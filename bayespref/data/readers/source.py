"""Where the readers' input comes from: a pandas frame, a file, or a Hugging Face ``datasets.Dataset``.

:func:`as_frame` is the one place that turns a source into a DataFrame (the ``from_trl``,
``from_arena`` and ``from_kwise`` readers call it first, so :meth:`Comparisons.encode` accepts the
same sources). Files are read by their name's ending:

* ``.jsonl``, ``.jsonl.gz``: JSON lines (``pd.read_json(lines=True)``);
* ``.json``, ``.json.gz``: a JSON array of records when the first non-blank character is ``[``,
  otherwise JSON lines (what ``datasets.Dataset.to_json`` writes);
* ``.parquet``: ``pd.read_parquet`` (needs ``pyarrow``; without it a ``DataError`` says
  ``pip install pyarrow``).

JSON is read with ``dtype=False``: values keep their JSON types (a string ``"1"`` stays a string), so
a reader sees the data as written and can name what is wrong. Row labels are 0-based line (record)
numbers; they become the comparison ids and the rows named in error messages.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pandas as pd

from bayespref.errors import DataError

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")


def as_frame(source: Any, where: str) -> pd.DataFrame:
    """``source`` as a DataFrame: a frame as is, a path read by its ending, ``source.to_pandas()``."""
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _read_path(Path(source), where)
    to_pandas = getattr(source, "to_pandas", None)
    if callable(to_pandas):
        df = to_pandas()
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{where}: {type(source).__name__}.to_pandas() returned "
                            f"{type(df).__name__}, not a DataFrame; pass a datasets.Dataset (not an "
                            "IterableDataset) or call .to_pandas() yourself.")
        return df
    hint = (" For a datasets.DatasetDict pick a split, e.g. data['test']."
            if hasattr(source, "keys") and not isinstance(source, dict) else "")
    raise DataError(f"{where}: expected a pandas DataFrame, a path to a {'/'.join(SUFFIXES)} file or a "
                    f"Hugging Face datasets.Dataset (an object with .to_pandas()); got "
                    f"{type(source).__name__}.{hint} Wrap in-memory records with pd.DataFrame(...).")


def _read_path(path: Path, where: str) -> pd.DataFrame:
    name = path.name.lower()
    kind = next((s for s in SUFFIXES if name.endswith(s)), None)
    if kind is None:
        raise DataError(f"{where}: cannot tell the format of {str(path)!r} from its name; supported "
                        f"endings: {', '.join(SUFFIXES)}. Rename the file or read it with pandas and "
                        "pass the DataFrame.")
    if not path.is_file():
        raise DataError(f"{where}: no such file {str(path)!r}.")
    if kind == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError as err:
            raise DataError(f"{where}: reading {str(path)!r} needs pyarrow, which is not installed: "
                            f"pip install pyarrow ({err}).") from None
    lines = kind.startswith(".jsonl") or not _is_json_array(path, kind.endswith(".gz"))
    try:
        return pd.read_json(path, lines=lines, dtype=False, precise_float=True)
    except ValueError as err:
        layout = "one JSON object per line" if lines else "a JSON array of objects"
        raise DataError(f"{where}: {str(path)!r} is not valid JSON ({layout} expected): {err}") from None


def _is_json_array(path: Path, gz: bool) -> bool:
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8") as fh:
        while True:
            ch = fh.read(1)
            if not ch or not ch.isspace():
                return ch == "["
