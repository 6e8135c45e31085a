"""``method="auto"``: the inference method chosen from the model, the data size and the options given.

The rule, in order (:func:`choose_method`):

1. A settings object (``settings=NutsSettings(...)``) names its method.
2. Options name methods: only methods whose settings take every option given are candidates
   (``chains=2`` means NUTS, ``steps=5000`` SVI, ``importance=16`` Laplace).
3. Up to :data:`NUTS_MAX_OBS` observations, NUTS: exact, and on a CPU a hierarchical fit of 50k
   comparisons samples in about 15 s (benchmarks/RESULTS.md).
4. Above that, the Laplace method where the model qualifies (Hierarchical with every effect varying
   by user (worths and/or feature weights), logit link, no ties or, on many options' worths with
   independent SDs, Davidson ties: 1M judgements in about a minute, also with 100 models' worths
   varying over 20,000 judges), otherwise SVI.

The choice and its reason are printed as one line (unless ``progress=False``) and kept in
``fit.info["method_reason"]``; an explicit ``method=`` always wins.
"""

from __future__ import annotations

import dataclasses
import sys

from bayespref.errors import ModelError
from bayespref.inference.settings import SETTINGS

#: most observations (comparisons or rankings) for which ``method="auto"`` picks NUTS
NUTS_MAX_OBS = 200_000


def _laplace_ready(spec, data) -> bool:
    from bayespref.inference.laplace import check_supported

    try:
        check_supported(spec, data, spec.sizes(data))
    except ModelError:
        return False
    return True


def choose_method(spec, data, settings=None, options=None) -> tuple[str, str]:
    """(method, reason) for ``fit(..., method="auto")``; see the module docstring for the rule."""
    options = options or {}
    for name, cls in SETTINGS.items():
        if isinstance(settings, cls):
            return name, f"settings={cls.__name__}(...) was given"
    offered = [m for m in spec.methods if m != "laplace" or data.obs_dim == "comparison"]
    candidates = [m for m in offered
                  if set(options) <= {f.name for f in dataclasses.fields(SETTINGS[m])}]
    if options and not candidates:
        return "nuts", "no method takes all the options given; NUTS reports which it does not take"
    if options and len(candidates) == 1 < len(offered):
        return candidates[0], f"the options given ({', '.join(sorted(options))}) are {candidates[0]} settings"
    n = int(data.n_obs)
    what = f"{n:,} {data.obs_dim}s"
    if n <= NUTS_MAX_OBS and "nuts" in candidates:
        return "nuts", f"{what} (<= {NUTS_MAX_OBS:,}): NUTS, exact and fast at this size"
    if "laplace" in candidates and _laplace_ready(spec, data):
        return "laplace", (f"{what} (> {NUTS_MAX_OBS:,}) and a model whose effects all vary by user: "
                           "Laplace, the users' effects integrated out")
    if "svi" in candidates:
        return "svi", f"{what} (> {NUTS_MAX_OBS:,}): SVI (approximate intervals; method='nuts' for exact ones)"
    return candidates[0], f"{what}: {candidates[0]} is the only method that takes the options given"


def choose_stream_method(settings=None, options=None) -> tuple[str, str]:
    """(method, reason) for ``fit(..., method="auto")`` on a Parquet dataset streamed from disk.

    Only the Laplace method and SVI read a stream. A settings object or options that only one of
    them takes choose it (``user_batch_size=2000`` means SVI); otherwise the Laplace method, which
    needs no tuning (one pass over the data per L-BFGS evaluation: 20M judgements in about 4 minutes,
    benchmarks/RESULTS.md).
    """
    options = options or {}
    for name in ("laplace", "svi"):
        if isinstance(settings, SETTINGS[name]):
            return name, f"settings={SETTINGS[name].__name__}(...) was given"
    takes = [m for m in ("laplace", "svi") if set(options) <= {f.name for f in dataclasses.fields(SETTINGS[m])}]
    if options and len(takes) == 1:
        return takes[0], f"the options given ({', '.join(sorted(options))}) are {takes[0]} settings"
    return "laplace", ("a Parquet dataset streamed from disk: the Laplace method, one pass over the data per "
                       "evaluation (SVI with user_batch_size=...)")


def announce(method: str, reason: str, quiet: bool) -> None:
    """Print the one-line choice (to stderr, so it shows in notebooks and does not mix with output)."""
    if not quiet:
        print(f"bayespref.fit: method={method!r}: {reason}. Pass method=... to choose.", file=sys.stderr)
