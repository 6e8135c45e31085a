"""Rendering pieces of the reports: tables as Markdown or HTML, figures as PNG bytes.

Markdown tables are written here (pandas' ``to_markdown`` needs the optional ``tabulate``); numbers
are shown with three decimals (counts as integers, very small or large numbers in exponent form).
"""

from __future__ import annotations

import base64
import html
import io
import numbers

import numpy as np
import pandas as pd


def number(v) -> str:
    """A cell as text: integers as is, floats with three decimals (exponent form when tiny or huge)."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        if not np.isfinite(v):
            return "" if np.isnan(v) else str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.3f}"
    return str(v)


def _flat(table: pd.DataFrame) -> pd.DataFrame:
    """The index as leading columns (unnamed default indexes dropped)."""
    t = table.copy()
    t.columns = [str(c) for c in t.columns]
    if isinstance(t.index, pd.RangeIndex) and t.index.name is None:
        return t.reset_index(drop=True)
    names = [n if n is not None else ("" if t.index.nlevels == 1 else f"level_{i}")
             for i, n in enumerate(t.index.names)]
    t.index = t.index.set_names(names)
    return t.reset_index()


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``table`` (index as leading columns)."""
    t = _flat(table)
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    head = "| " + " | ".join(esc(c) for c in t.columns) + " |"
    rule = "| " + " | ".join("---:" if pd.api.types.is_numeric_dtype(t[c]) and not pd.api.types.is_bool_dtype(t[c])
                             else ":---" for c in t.columns) + " |"
    rows = ["| " + " | ".join(esc(number(v)) for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def html_table(table: pd.DataFrame) -> str:
    """An HTML table of ``table`` (index as leading columns), cells formatted as :func:`number`."""
    t = _flat(table)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(number(v))}</td>" for v in row) + "</tr>"
                   for row in t.itertuples(index=False))
    return f"<table class='bayespref'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def png_bytes(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
