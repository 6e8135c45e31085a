"""TOML run specs are typed strictly and their values checked when the spec is read, before any data
are loaded or anything is fitted: a bool must be a bool, a whole number an int, and [model] and the
method's settings are checked by the same rules as a call (bayespref.validate)."""

from __future__ import annotations

import pathlib

import pytest

from bayespref.cli import main, runspec
from bayespref.errors import ModelError

ROOT = pathlib.Path(__file__).resolve().parents[2]
BASE = {"data": 'dataset = "baseball"', "model": 'family = "BradleyTerry"', "inference": 'method = "nuts"'}


def write(tmp_path, **tables) -> pathlib.Path:
    """A spec with the BASE tables and the lines in ``tables`` (which replace a BASE line of the same
    key; ``top``: top-level keys)."""
    top = tables.pop("top", "")
    text = top + "\n"
    for name in dict.fromkeys([*BASE, *tables]):
        extra = tables.get(name, "")
        base = BASE.get(name, "")
        if base.split(" = ")[0] in {line.split(" = ")[0] for line in extra.splitlines()}:
            base = ""
        text += f"[{name}]\n{base}\n{extra}\n"
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


# the table's rows: each was accepted (or gave a traceback) and is now a ModelError naming the key
TABLE = [
    (dict(inference="draws = 1.5"), "[inference] draws=1.5 must be a whole number >= 1 (or None)."),
    (dict(inference="warmup = -10"), "[inference] warmup=-10 must be a whole number >= 0."),
    (dict(model='position = "yes"'), "[model] BradleyTerry: position='yes' must be True or False."),
    (dict(inference="chains = 0"), "[inference] chains=0 must be a whole number >= 1."),
    (dict(model="worth_scale = -1.0"), "[model] BradleyTerry: worth_scale=-1.0 must be a finite number > 0 "
                                       "(a prior scale)."),
]

MORE = [
    (dict(inference="chains = true"), "[inference] chains=True must be a whole number >= 1."),
    (dict(inference="target_accept = 1"), "[inference] target_accept=1 must be a number in (0, 1) (or None)."),
    (dict(inference="progress = false"), "unknown keys in [inference]"),
    (dict(inference="seed = 1.5"), "[inference] seed=1.5 (float) must be a whole number."),
    (dict(inference="seed = -3"), "[inference] seed=-3 must be a whole number from 0 to 4294967295"),
    (dict(inference='seed = "1"'), "[inference] seed='1' (str) must be a whole number."),
    (dict(inference="log_likelihood = 1"), "[inference] log_likelihood=1 (int) must be True or False."),
    (dict(inference='method = "svi"\nsteps = 2.0'), "[inference] steps=2.0 must be a whole number >= 1."),
    (dict(inference='method = "svi"\nlr = nan'), "[inference] lr=nan must be a finite number > 0."),
    (dict(model="ties = 1"), "[model] BradleyTerry: ties=1 must be one of (False, True, 'davidson', 'half')"),
    (dict(model='family = "LatentTypes"\nn_types = 2.0'), "[model] LatentTypes: n_types=2.0 must be a whole number "
                                                        "from 1 to 7"),
    (dict(model='family = "Hierarchical"\ncentring = inf'), "[model] Hierarchical: centring=inf must be a number "
                                                           "in [0, 1]"),
    (dict(model="family = 3"), "[model] family = 3 is unknown"),
    (dict(data="features = 3"), "[data] features=3 (int) must be a string or a list of strings."),
    (dict(data="user_covariates = [1, 2]"), "[data] user_covariates=[1, 2] (list) must be a string or a list of "
                                             "strings."),
    (dict(output="reference = true"), "[output] reference=True (bool) must be a string or a whole number."),
    (dict(sensitivity="n_grid = 2.5"), "[sensitivity] n_grid=2.5 (float) must be a whole number."),
    (dict(sensitivity="seed = -1"), "[sensitivity] seed=-1 must be a whole number from 0 to 4294967295"),
    (dict(top="name = 3"), "name=3 (int) must be a string."),
]


@pytest.mark.parametrize("tables, message", TABLE + MORE, ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_bad_values_are_refused_when_the_spec_is_read(tmp_path, tables, message):
    path = write(tmp_path, **tables)
    with pytest.raises(ModelError) as err:
        runspec.load_spec(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


@pytest.mark.parametrize("tables, message", TABLE, ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_the_cli_exits_2_naming_the_key(tmp_path, capsys, tables, message):
    path = write(tmp_path, **tables)
    out = tmp_path / "out"
    assert main(["fit", str(path), "--quick", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bayespref: error:") and message in err and "Traceback" not in err
    assert not out.exists()


def test_good_values_pass(tmp_path):
    path = write(tmp_path, model="position = true\nworth_scale = 2", inference="chains = 2\nseed = 7",
                 output="reference = 1", data='features = "x"')
    spec = runspec.load_spec(path)
    assert spec["model"]["worth_scale"] == 2 and spec["inference"]["seed"] == 7


def test_bundled_specs_pass():
    for path in sorted((ROOT / "models").glob("*.toml")):
        runspec.load_spec(path)
