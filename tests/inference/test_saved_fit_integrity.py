"""Saved fits are tamper-evident: Fit.save stores SHA-256 hashes of the data, the labels of every
coordinate, the model description, the inference settings and every group's arrays, and load_fit
refuses a file whose content no longer matches them, naming the part that changed. Every field of
the stored model description is checked like a new model's arguments, with or without hashes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayespref as bp
from bayespref.errors import BayesprefWarning, FitError

pytestmark = [pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")]  # R-hat of one chain


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    data = bp.load_dataset("baseball").comparisons()
    fit = bp.fit(bp.BradleyTerry(), data, seed=2, chains=1, warmup=100, draws=100, progress=False)
    return fit.save(tmp_path_factory.mktemp("integrity") / "fit.nc")


def _edited(src, dst, change):
    """A copy of the saved fit at ``dst`` with ``change(datatree)`` applied (written by xarray)."""
    with xr.open_datatree(src, engine="h5netcdf") as f:
        dt = f.load()
    change(dt)
    dt.to_netcdf(dst, engine="h5netcdf")
    return dst


def _meta(change):
    """A change of the stored ``meta`` record (the model description, data and settings)."""
    def edit(dt):
        meta = json.loads(dt["bayespref"].attrs["meta"])
        change(meta)
        dt["bayespref"].attrs["meta"] = json.dumps(meta)
    return edit


def _data(change):
    """A change of the stored data (the serialised Comparisons inside ``meta``)."""
    def edit(meta):
        data = json.loads(meta["data"])
        change(data)
        meta["data"] = json.dumps(data)
    return _meta(edit)


def _group(name, change):
    def edit(dt):
        dt[name] = xr.DataTree(change(dt[name].to_dataset()))
    return edit


def _without_hashes(*changes):
    def edit(dt):
        del dt["bayespref"].attrs["integrity"]
        for change in changes:
            change(dt)
    return edit


def _reverse_options(ds):
    return ds.assign_coords(option=ds["option"].values[::-1])


def _bump_first_worth(ds):
    ds = ds.copy(deep=True)
    ds["worth"][0, 0, 0] += 1.0
    return ds


def test_untouched_fit_loads_without_warnings(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BayesprefWarning)
        fit = bp.load_fit(saved)
    assert list(fit.idata.posterior["option"].values) == list(fit.data.options)


def test_a_fit_rewritten_unchanged_by_xarray_still_loads(saved, tmp_path):
    bp.load_fit(_edited(saved, tmp_path / "same.nc", lambda dt: None))


# -- the two rows of the issue: edited labels, edited model field ----------------------------------
def test_reversed_option_labels_are_a_fit_error(saved, tmp_path):
    path = _edited(saved, tmp_path / "labels.nc", _group("posterior", _reverse_options))
    with pytest.raises(FitError, match=r"changed since it was saved.*the option labels \(coordinate 'option'\)"):
        bp.load_fit(path)


def test_reversed_option_labels_of_the_stored_data_are_a_fit_error(saved, tmp_path):
    def reverse(data):
        data["options"]["values"] = data["options"]["values"][::-1]

    path = _edited(saved, tmp_path / "data_labels.nc", _data(reverse))
    with pytest.raises(FitError, match=r"the data's field 'options.values'"):
        bp.load_fit(path)


def test_worth_scale_x_is_a_fit_error_naming_the_field(saved, tmp_path):
    path = _edited(saved, tmp_path / "worth_scale.nc", _meta(lambda m: m["spec"].update(worth_scale="x")))
    with pytest.raises(FitError, match=r"the model description .*worth_scale='x'") as exc:
        bp.load_fit(path)
    assert "must be" in str(exc.value)


# -- every part -----------------------------------------------------------------------------------
def test_a_changed_outcome_is_a_fit_error(saved, tmp_path):
    def flip(data):
        y = data["arrays"]["y"]["values"]
        y[0] = 1 - y[0]

    path = _edited(saved, tmp_path / "outcome.nc", _data(flip))
    with pytest.raises(FitError, match=r"the data's field 'arrays.y'"):
        bp.load_fit(path)


def test_a_changed_posterior_value_is_a_fit_error(saved, tmp_path):
    path = _edited(saved, tmp_path / "posterior.nc", _group("posterior", _bump_first_worth))
    with pytest.raises(FitError, match=r"the arrays of group 'posterior'"):
        bp.load_fit(path)


def test_a_removed_group_is_a_fit_error(saved, tmp_path):
    def drop(dt):
        del dt["sample_stats"]

    path = _edited(saved, tmp_path / "removed.nc", drop)
    with pytest.raises(FitError, match=r"the arrays of group 'sample_stats' \(removed\)"):
        bp.load_fit(path)


def test_changed_settings_are_a_fit_error(saved, tmp_path):
    path = _edited(saved, tmp_path / "settings.nc", _meta(lambda m: m["info"].update(method="laplace")))
    with pytest.raises(FitError, match="the inference settings"):
        bp.load_fit(path)


def test_a_damaged_integrity_record_is_a_fit_error(saved, tmp_path):
    def damage(dt):
        dt["bayespref"].attrs["integrity"] = "{not json"

    with pytest.raises(FitError, match="integrity record is damaged"):
        bp.load_fit(_edited(saved, tmp_path / "record.nc", damage))


def test_verify_false_loads_with_a_warning_and_a_new_save_is_clean(saved, tmp_path):
    path = _edited(saved, tmp_path / "labels.nc", _group("posterior", _reverse_options))
    with pytest.warns(BayesprefWarning, match="option labels"):
        fit = bp.load_fit(path, verify=False)
    again = fit.save(tmp_path / "resaved.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BayesprefWarning)
        bp.load_fit(again)


# -- files without hashes (saved before they were added) ----------------------------------------------
def test_a_fit_without_hashes_loads_with_a_warning(saved, tmp_path):
    path = _edited(saved, tmp_path / "old.nc", _without_hashes())
    with pytest.warns(BayesprefWarning, match="without integrity hashes"):
        old = bp.load_fit(path)
    new = pd.DataFrame({"a": ["Boston"], "b": ["Baltimore"]})
    pd.testing.assert_frame_equal(old.predict(new), bp.load_fit(saved).predict(new))


@pytest.mark.parametrize("field, value", [
    ("worth_scale", "x"),
    ("worth_scale", -1.0),
    ("position", "yes"),
    ("link", "cauchy"),
    ("colour", "red"),
])
def test_every_stored_field_is_checked_like_a_new_models_argument(saved, tmp_path, field, value):
    path = _edited(saved, tmp_path / "field.nc", _without_hashes(_meta(lambda m: m["spec"].update({field: value}))))
    with pytest.warns(BayesprefWarning, match="without integrity hashes"):
        with pytest.raises(FitError, match=rf"saved model description is invalid: .*{field}"):
            bp.load_fit(path)


def test_an_unknown_family_is_a_fit_error(saved, tmp_path):
    path = _edited(saved, tmp_path / "family.nc", _without_hashes(_meta(lambda m: m["spec"].update(family="Thurstone"))))
    with pytest.warns(BayesprefWarning), pytest.raises(FitError, match="Thurstone"):
        bp.load_fit(path)


def test_hashes_survive_every_dtype_in_the_file(saved):
    """The stored hashes were computed before writing and match after reading back: the arrays of
    each group have the dtypes NetCDF gives back (bool, int32/int64, float32, text labels)."""
    with xr.open_datatree(saved, engine="h5netcdf") as f:
        kinds = {str(v.dtype.kind) for node in f.subtree for v in node.to_dataset(inherit=False).variables.values()}
    assert {"b", "i", "f", "U"} <= kinds or {"b", "i", "f", "O"} <= kinds
    assert np.isfinite(bp.load_fit(saved).idata.posterior["worth"].values).all()
