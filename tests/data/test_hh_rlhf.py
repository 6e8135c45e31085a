"""The bundled HH-RLHF harmless-base test split: files, licence, the exact prompt split, measured facts."""

from __future__ import annotations

import gzip
import hashlib
import json
import tomllib
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import bayespref as bp
from bayespref.data.comparisons import Comparisons
from bayespref.data.readers import trl_long
from bayespref.errors import DataWarning

FOLDER = resources.files("bayespref.data.datasets").joinpath("data", "hh_rlhf_harmless")
SHA256 = "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03"


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    """The file's records, read with the standard library only (independent of pandas)."""
    with gzip.open(FOLDER.joinpath("harmless-base-test.jsonl.gz").open("rb"), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def ds():
    return bp.load_dataset("hh_rlhf_harmless")


@pytest.fixture(scope="module")
def data(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # text options: disconnected by nature
        return ds.comparisons()


def test_files_licence_and_credit(ds):
    assert hashlib.sha256(FOLDER.joinpath("harmless-base-test.jsonl.gz").read_bytes()).hexdigest() == SHA256
    licence = FOLDER.joinpath("LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "Copyright (c) 2022 Anthropic" in licence
    assert "MIT" in ds.licence and "anthropics/hh-rlhf" in ds.licence
    assert "Bai et al. (2022)" in ds.citation and "arXiv:2204.05862" in ds.citation
    assert "`harmless-base-test.jsonl.gz`" in ds.readme.splitlines()[0] and "`LICENSE`" in ds.readme.splitlines()[0]


def test_package_data_ships_the_files():
    table = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = table["package-data"]["bayespref.data.datasets"]
    assert {"data/*/*.jsonl.gz", "data/*/LICENSE", "data/*/README.md"} <= set(patterns)


def test_prompt_split_exact_on_all_pairs(raw, data):
    assert len(raw) == data.n_comparisons == 2312
    f = data.frame
    prompt, a, b = f["prompt"].tolist(), f["a"].tolist(), f["b"].tolist()
    exact = [p + x == r["chosen"] and p + y == r["rejected"] for p, x, y, r in zip(prompt, a, b, raw)]
    assert sum(exact) == 2312
    assert all(p.endswith("\n\nAssistant:") for p in prompt)
    assert all("\n\nHuman:" not in x and "\n\nHuman:" not in y for x, y in zip(a, b))
    assert list(data.comparison_ids) == list(range(2312)) and data.outcome.tolist() == [1.0] * 2312


def test_measured_facts(ds, data):
    f = data.frame
    assert data.n_prompts == 2310 and data.n_options == 4565 and data.n_users == 1
    wc = f["a"].str.split().str.len().to_numpy()
    wr = f["b"].str.split().str.len().to_numpy()
    assert int((wc < wr).sum()) == 1272 and int((wc == wr).sum()) == 45
    assert round(float(np.mean(wc < wr)), 3) == 0.550
    assert np.median(wc) == 21 and np.median(wr) == 27
    # five responses that themselves contain an assistant marker stay whole
    assert sum("\n\nAssistant:" in x for x in f["a"].tolist() + f["b"].tolist()) == 5


def test_dataset_frame_and_reader(ds, data):
    assert list(ds.frame.columns) == ["a", "b", "outcome", "prompt"]
    assert ds.frame["a"].tolist() == data.frame["a"].tolist() and ds.n_options == 4565
    assert ds.reader == "trl" and len(ds.source) == 2312 and list(ds.source.columns) == ["chosen", "rejected"]
    assert data._spec.to_long.func is trl_long and data._spec.to_long.keywords["implicit"] is True
    with pytest.warns(DataWarning, match="disconnected"):
        ds.comparisons()


def test_saved_and_encoded(ds, data):
    back = Comparisons.from_json(data.to_json())
    assert back.frame["prompt"].tolist() == data.frame["prompt"].tolist()
    e = back.encode(ds.source.iloc[:4])
    assert e.a.tolist() == data.a[:4].tolist() and e.prompt.tolist() == data.prompt[:4].tolist()
