"""TRL preference data: ``chosen`` / ``rejected`` with an explicit ``prompt`` column or an implicit one.

Formats (TRL's own terms), told apart per column:

* *standard*: every value of the column is a string;
* *conversational*: every value is a list of messages ``{"role": str, "content": str}`` (lists, tuples
  or numpy arrays of mappings, as JSON, Parquet and ``datasets`` give them).

A column mixing the two, or holding anything else (NaN, numbers, a message whose content is not a
string), is a ``DataError`` naming the rows. ``chosen`` and ``rejected`` must have the same format.

Implicit prompt (no prompt column; HH-RLHF style): ``chosen`` and ``rejected`` are two whole
transcripts that share everything but the last assistant turn, and the prompt is split off exactly:

* text transcripts (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``): the prompt is the longest shared
  prefix of the two texts that ends with an assistant marker ``"\\n\\nAssistant:"`` (marker
  included: the prompt is what a model is asked to continue); each response is the rest of its
  transcript, verbatim (usually starting with a space). So ``prompt + response == transcript``
  byte for byte. A response that contains the human marker ``"\\n\\nHuman:"`` means the transcripts
  differed in an earlier turn: the prompts differ, a ``DataError``;
* message lists: the prompt is every message before the last ``"assistant"`` message, and must be
  identical (role and content) in the two lists; the response is the messages from the last
  assistant message on (usually that one message).

Labels (option and prompt ids) are texts: a string as is; a list of messages ``render``-ed as the
content of its message when it holds exactly one, otherwise ``"<role>: <content>"`` per message joined
by ``"\\n\\n"``. Options are the response texts (the same text under two prompts is one option);
``a`` = chosen, ``b`` = rejected, outcome 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from bayespref.data.readers.source import as_frame
from bayespref.data.validation import (
    SHOW,
    _check_finite,
    _check_frame,
    _free_name,
    _has_column,
    _require_columns,
    _rows,
)
from bayespref.errors import DataError

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
#: numeric columns kept in ``Comparisons.frame`` by default when present (TRL's margin, scores)
SCORE_COLUMNS = ("margin", "score_chosen", "score_rejected")

WHERE = "Comparisons.from_trl"


def render(messages) -> str:
    """The text label of a message list: the content of a single message, else ``"role: content"``
    lines joined by a blank line."""
    if len(messages) == 1:
        return messages[0][1]
    return "\n\n".join(f"{role}: {content}" for role, content in messages)


def trl_long(df, *, prompt, chosen, rejected, user, implicit=False, scores=(), human_marker=HUMAN,
             assistant_marker=ASSISTANT, require_outcome=True):
    where = WHERE
    df = as_frame(df, where)
    _check_frame(df, where)
    scores = tuple(scores or ())
    roles = {"prompt": None if implicit else prompt, "chosen": chosen, "rejected": rejected, "user": user}
    if not require_outcome:
        scores = tuple(c for c in scores if _has_column(df, c))
    _require_columns(df, {**roles, **{f"scores[{i}]": c for i, c in enumerate(scores)}}, where,
                     required=("chosen", "rejected"))
    _check_scores(df, scores, where)

    kind_c, vals_c = _texts(df, chosen, "chosen", where)
    kind_r, vals_r = _texts(df, rejected, "rejected", where)
    if kind_c != kind_r:
        raise DataError(f"{where}: column {chosen!r} (chosen) is {kind_c} but column {rejected!r} "
                        f"(rejected) is {kind_r}; both must be strings or both lists of messages.")
    same = np.fromiter((x == y for x, y in zip(vals_c, vals_r)), dtype=bool, count=len(df))
    if same.any():
        raise DataError(f"{where}: chosen ({chosen!r}) and rejected ({rejected!r}) are identical in "
                        f"{_rows(df.index, same)}; a preference needs two different responses. Remove "
                        "those rows (they say nothing about which response is preferred).")

    long = df.copy()
    free = pd.Index(list(df.columns))
    if implicit:
        split = _split_text if kind_c == "text" else _split_messages
        p_lab, a_lab, b_lab = split(df.index, vals_c, vals_r, (chosen, rejected),
                                    human_marker, assistant_marker, where)
        prompt_col = _free_name(free, "prompt")
        free = free.append(pd.Index([prompt_col]))
        long[prompt_col] = p_lab
        roles["prompt"] = prompt_col
    else:
        a_lab, b_lab = _responses(df.index, kind_c, vals_c, vals_r, (chosen, rejected), where)
        if prompt is not None:
            kind_p, vals_p = _texts(df, prompt, "prompt", where)
            if kind_p == "messages":
                prompt_col = _free_name(free, f"{prompt}:text")
                free = free.append(pd.Index([prompt_col]))
                long[prompt_col] = np.array([render(m) for m in vals_p], dtype=object)
                roles["prompt"] = prompt_col
    if kind_c == "messages" or implicit:
        a_col = _free_name(free, f"{chosen}:response")
        free = free.append(pd.Index([a_col]))
        b_col = _free_name(free, f"{rejected}:response")
        free = free.append(pd.Index([b_col]))
        long[a_col], long[b_col] = a_lab, b_lab
    else:
        a_col, b_col = chosen, rejected
    out = _free_name(free, "outcome")
    long[out] = 1.0
    return long, {"a": a_col, "b": b_col, "outcome": out, "user": user, "prompt": roles["prompt"],
                  "keep": scores}


def _check_scores(df, scores, where):
    for c in scores:
        s = df[c]
        if not ptypes.is_numeric_dtype(s.dtype) or ptypes.is_bool_dtype(s.dtype):
            raise DataError(f"{where}: score column {c!r} is not numeric (dtype {s.dtype}); convert it "
                            "(pd.to_numeric) or leave it out of scores=.")
        na = s.isna().to_numpy()
        if na.any():
            raise DataError(f"{where}: score column {c!r} has missing values (NaN) in {_rows(df.index, na)}. "
                            "Fill or remove those rows, or leave the column out of scores=; nothing is imputed.")
        _check_finite(s.to_numpy(dtype=np.float64), f"score column {c!r}", df.index, where)


def _is_message_list(v) -> bool:
    return isinstance(v, (list, tuple, np.ndarray)) and all(isinstance(m, Mapping) for m in v)


def _texts(df, col, role, where):
    """``("text", [str, ...])`` or ``("messages", [((role, content), ...), ...])`` for one column."""
    values = df[col].tolist()
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    is_msg = np.fromiter((_is_message_list(v) for v in values), dtype=bool, count=len(values))
    neither = ~(is_str | is_msg)
    if neither.any():
        bad = [values[i] for i in np.flatnonzero(neither)[:3]]
        raise DataError(f"{where}: column {col!r} ({role}) must hold text (strings, or lists of "
                        f"{{'role', 'content'}} messages); found non-string values "
                        f"{', '.join(f'{v!r} ({type(v).__name__})' for v in bad)} in "
                        f"{_rows(df.index, neither)}. Fill or remove those rows; nothing is converted.")
    if is_str.all():
        return "text", values
    if is_str.any():
        minority = is_str if is_str.sum() <= is_msg.sum() else is_msg
        kinds = ("strings", "message lists") if minority is is_str else ("message lists", "strings")
        raise DataError(f"{where}: column {col!r} ({role}) mixes standard text (strings) and "
                        f"conversational data (lists of messages): {kinds[0]} in {_rows(df.index, minority)}, "
                        f"{kinds[1]} elsewhere. Use one format for the whole column.")
    msgs, bad = [], np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        pairs = tuple((m.get("role"), m.get("content")) for m in v)
        bad[i] = not all(isinstance(r, str) and isinstance(c, str) for r, c in pairs)
        msgs.append(pairs)
    if bad.any():
        raise DataError(f"{where}: column {col!r} ({role}) has messages whose 'role' or 'content' is "
                        f"missing or not a string (non-string text) in {_rows(df.index, bad)}. Every "
                        "message needs 'role' and 'content' strings (flatten multi-part content to text).")
    return "messages", msgs


def _no_assistant(index, mask, col, what, where):
    raise DataError(f"{where}: column {col!r} has a conversation with no assistant turn ({what}) in "
                    f"{_rows(index, mask)}. Each transcript must end with the assistant response being "
                    "compared; remove those rows, or give the prompt explicitly (a prompt column) with "
                    "the responses alone in chosen/rejected.")


def _prompts_differ(index, mask, cols, examples, where):
    shown = "; ".join(examples[:SHOW])
    raise DataError(f"{where}: the prompts differ in {_rows(index, mask)}: columns {cols[0]!r} and "
                    f"{cols[1]!r} must share every turn but the last assistant turn ({shown}). Fix or remove "
                    "those rows, or give the prompt explicitly (a prompt column).")


def _split_text(index, chosen, rejected, cols, human, assistant, where):
    n = len(chosen)
    missing = np.array([[assistant not in x, assistant not in y] for x, y in zip(chosen, rejected)], bool)
    for side in (0, 1):
        if missing[:, side].any():
            _no_assistant(index, missing[:, side], cols[side], f"no {assistant!r} marker", where)
    prompt = np.empty(n, dtype=object)
    a, b = np.empty(n, dtype=object), np.empty(n, dtype=object)
    differ, examples = np.zeros(n, dtype=bool), []
    for i, (x, y) in enumerate(zip(chosen, rejected)):
        shared = len(os.path.commonprefix((x, y)))
        k = x.rfind(assistant, 0, shared)
        cut = k + len(assistant)
        if k < 0 or human in x[cut:] or human in y[cut:]:
            differ[i] = True
            if len(examples) < SHOW:
                examples.append(f"row {index[i]!r} first differs at character {shared}: "
                                f"{x[shared:shared + 30]!r} vs {y[shared:shared + 30]!r}")
            continue
        prompt[i], a[i], b[i] = x[:cut], x[cut:], y[cut:]
    if differ.any():
        _prompts_differ(index, differ, cols, examples, where)
    return prompt, a, b


def _split_messages(index, chosen, rejected, cols, human, assistant, where):
    def last_assistant(msgs):
        return next((k for k in range(len(msgs) - 1, -1, -1) if msgs[k][0] == "assistant"), -1)

    kc = np.array([last_assistant(m) for m in chosen])
    kr = np.array([last_assistant(m) for m in rejected])
    for side, k in enumerate((kc, kr)):
        if (k < 0).any():
            _no_assistant(index, k < 0, cols[side], "no message with role 'assistant'", where)
    differ = np.array([x[:i] != y[:j] for x, y, i, j in zip(chosen, rejected, kc, kr)], dtype=bool)
    if differ.any():
        examples = [f"row {index[i]!r}: {kc[i]} vs {kr[i]} messages before the last assistant message"
                    if kc[i] != kr[i] else f"row {index[i]!r}: message "
                    f"{next(t for t in range(kc[i]) if chosen[i][t] != rejected[i][t])} differs"
                    for i in np.flatnonzero(differ)[:SHOW]]
        _prompts_differ(index, differ, cols, examples, where)
    prompt = np.array([render(m[:k]) for m, k in zip(chosen, kc)], dtype=object)
    a = np.array([render(m[k:]) for m, k in zip(chosen, kc)], dtype=object)
    b = np.array([render(m[k:]) for m, k in zip(rejected, kr)], dtype=object)
    return prompt, a, b


def _responses(index, kind, chosen, rejected, cols, where):
    """Explicit prompt: the responses as labels (message lists must hold an assistant message)."""
    if kind == "text":
        return chosen, rejected
    out = []
    for side, vals in enumerate((chosen, rejected)):
        none = np.fromiter((all(r != "assistant" for r, _ in m) for m in vals), dtype=bool, count=len(vals))
        if none.any():
            _no_assistant(index, none, cols[side], "no message with role 'assistant'", where)
        out.append(np.array([render(m) for m in vals], dtype=object))
    return out[0], out[1]
