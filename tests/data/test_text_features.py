"""Text features: exact built-ins, the lexicon, reduction and standardisation, encoders and embedding
columns, saving with the data and with a fit, bad input, the optional extras, and HH-RLHF."""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.data import text as text_module
from bayespref.data.comparisons import Comparisons
from bayespref.data.text import BUILTINS, DEFAULT_BUILTINS, DEFAULT_LEXICON, TextFeatures, lexicon_pattern
from bayespref.errors import DataError, DataWarning

TINY = dict(chains=1, warmup=150, draws=150, progress=False)

MARKDOWN = ("# Title\n\nSome *text* here.\n\n## Part two\n- one\n- two\n* three\n1. first\n2) second\n"
            "```python\nprint('hi')\n```\nUse `x` and `y`, **bold** and __strong__, [a link](http://x.org).\n"
            "#not a header\n    # indented too far\n-not a list\nWhat? Really?? Yes! Wow!!")
TEXTS = [MARKDOWN, "I'm sorry, but I can't help with that.", "Sure!", "", "a\tb\nc  d   e", "```\nunclosed"]


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kw)


def fake_encoder(texts):
    """Deterministic 6-d vectors: 4 hash-based coordinates, the word count and a refusal flag."""
    out = np.empty((len(texts), 6))
    for i, t in enumerate(texts):
        h = np.frombuffer(hashlib.sha256(t.encode()).digest()[:4], dtype=np.uint8) / 255.0
        out[i, :4] = h
        out[i, 4] = len(t.split())
        out[i, 5] = float("sorry" in t.lower())
    return out


def synthetic_trl(n=120, seed=0):
    """TRL pairs whose chosen response is usually the shorter one (prompt, chosen, rejected)."""
    rng = np.random.default_rng(seed)
    words = np.array("the a cat dog runs fast slow help code answer yes no maybe".split())
    rows = []
    for i in range(n):
        texts = []
        for side in "xy":
            body = " ".join(rng.choice(words, size=rng.integers(2, 40)))
            if rng.random() < 0.2:
                body = "I'm sorry, I can't. " + body
            if rng.random() < 0.3:
                body += " Why?"
            texts.append(f"{body} r{i}{side}")
        short, long = sorted(texts, key=lambda t: len(t.split()))
        chosen, rejected = (short, long) if rng.random() < 0.8 else (long, short)
        rows.append({"prompt": f"p{i % 30}", "chosen": chosen, "rejected": rejected})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# built-ins
# ---------------------------------------------------------------------------------------------
def test_builtins_exact_values():
    names = ("words", "log_words", "chars", "log_chars", "lines", "headers", "lists", "code_blocks",
             "inline_code", "bold", "links", "questions", "exclamations", "refusal")
    fitted = TextFeatures(builtins=names, standardise=False).fit(TEXTS)
    got = fitted.transform(TEXTS)
    assert list(got.columns) == list(names) and got.dtypes.eq(np.float64).all()
    md = got.iloc[0]
    assert md["words"] == len(MARKDOWN.split())
    assert md["log_words"] == pytest.approx(math.log1p(len(MARKDOWN.split())))
    assert md["chars"] == len(MARKDOWN) and md["log_chars"] == pytest.approx(math.log1p(len(MARKDOWN)))
    assert md["lines"] == sum(1 for line in MARKDOWN.splitlines() if line.strip())
    assert md["headers"] == 2            # "# Title", "## Part two"; not "#not", not 4-space indented
    assert md["lists"] == 5              # - one, - two, * three, 1. first, 2) second; not "-not a list"
    assert md["code_blocks"] == 1        # two fence lines
    assert md["inline_code"] == 2 and md["bold"] == 2 and md["links"] == 1
    assert md["questions"] == 2 and md["exclamations"] == 2
    assert md["refusal"] == 0
    table = got[["words", "chars", "lines", "code_blocks", "questions", "exclamations", "refusal"]].iloc[1:]
    assert table.to_numpy().tolist() == [
        [8, 38, 1, 0, 0, 0, 1],          # the apology / refusal
        [1, 5, 1, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],           # empty text
        [5, 12, 2, 0, 0, 0, 0],          # tabs, newlines and runs of spaces separate words
        [2, 12, 2, 1, 0, 0, 0],          # an unclosed fence is a block (the fence is a word)
    ]
    assert got["log_words"].iloc[3] == 0.0


def test_default_builtins_are_documented():
    assert set(DEFAULT_BUILTINS) <= set(BUILTINS)
    for name in BUILTINS:
        assert f"``{name}``" in text_module.__doc__
    assert TextFeatures().builtins == DEFAULT_BUILTINS and TextFeatures().lexicon == DEFAULT_LEXICON


def test_lexicon_rules_and_override():
    pat = lexicon_pattern(DEFAULT_LEXICON)
    s = pd.Series(["I’m SORRY about that", "i  cannot\ndo it", "As an AI I must say", "Not sorry at all",
                   "scanner cannot", "I can't wait!"], dtype=object)
    assert s.str.contains(pat, regex=True).tolist() == [True, True, True, False, False, True]
    assert not pd.Series(["Icannot"]).str.contains(pat, regex=True).iloc[0]   # whole words only
    # the merged (trie) pattern matches exactly where one of the phrases matches on its own
    ds = quiet(bp.load_dataset("hh_rlhf_harmless").comparisons)
    texts = pd.Series(ds.options[:1500], dtype=object)
    one = [r"(?i)(?<!\w)" + r"\s+".join(re.escape(w).replace("'", "['’]") for w in p.split()) + r"(?!\w)"
           for p in DEFAULT_LEXICON]
    each = np.column_stack([texts.str.contains(q, regex=True) for q in one]).any(axis=1)
    assert each.sum() > 50 and np.array_equal(texts.str.contains(pat, regex=True).to_numpy(), each)
    own = TextFeatures(builtins=("refusal",), lexicon=("no way",), standardise=False).fit(["No  way!", "ok"])
    assert own.transform(["no way", "I'm sorry", "noway"])["refusal"].tolist() == [1.0, 0.0, 0.0]
    more = TextFeatures(builtins=("refusal",), lexicon=DEFAULT_LEXICON + ("no way",), standardise=False)
    assert more.fit(["no way", "ok"]).transform(["I'm sorry", "no way"])["refusal"].tolist() == [1.0, 1.0]
    with pytest.raises(DataError, match="lexicon must be a non-empty"):
        TextFeatures(lexicon=())


def test_standardise_uses_training_texts_and_drops_constants():
    texts = ["one two", "one two three four", "x", "y z"]
    with pytest.warns(DataWarning, match=r"\['headers', 'code_blocks'\] are constant"):
        fitted = TextFeatures(builtins=("log_words", "headers", "code_blocks", "questions")).fit(
            texts + ["why?"])
    assert fitted.feature_names == ("log_words", "questions") and fitted.dropped == ("headers", "code_blocks")
    train = fitted.transform(texts + ["why?"]).to_numpy()
    assert np.allclose(train.mean(axis=0), 0) and np.allclose(train.std(axis=0), 1)
    raw = np.log1p([2, 4, 1, 2, 1])
    assert fitted.transform(["a b c d e f g"])["log_words"].iloc[0] == pytest.approx(
        (math.log1p(7) - raw.mean()) / raw.std())
    with pytest.raises(DataError, match="every text feature"):
        TextFeatures(builtins=("headers",)).fit(["a", "b"])


def test_transform_is_deterministic_and_matches_fit():
    fitted, table = TextFeatures()._fit(pd.Series(TEXTS, dtype=object), None, str, "test")
    again = fitted.transform(TEXTS)
    assert np.array_equal(table.to_numpy(), again.to_numpy())
    assert np.array_equal(again.to_numpy(), fitted.transform(pd.Series(TEXTS)).to_numpy())
    # the index of a Series is kept
    s = pd.Series(TEXTS[:2], index=["p", "q"])
    assert list(fitted.transform(s).index) == ["p", "q"]


def test_to_dict_is_json_and_round_trips():
    fitted = quiet(TextFeatures(prefix="t_").fit, TEXTS)
    d = json.loads(json.dumps(fitted.to_dict()))
    back = TextFeatures.from_dict(d)
    assert back.feature_names == fitted.feature_names and back.feature_names[0] == "t_log_words"
    assert np.array_equal(back.transform(TEXTS[::-1]).to_numpy(), fitted.transform(TEXTS[::-1]).to_numpy())
    with pytest.raises(DataError, match="not a serialised TextFeatures"):
        TextFeatures.from_dict({"format": "other"})


# ---------------------------------------------------------------------------------------------
# encoders, embeddings, PCA
# ---------------------------------------------------------------------------------------------
def test_encoder_reduced_and_whitened_then_reloaded():
    texts = [f"{'word ' * k}text {k}" + (" sorry" if k % 3 == 0 else "") for k in range(30)]
    spec = TextFeatures(builtins=("log_words",), encoder=fake_encoder, reduce=3, whiten=True, standardise=False)
    fitted = spec.fit(texts)
    assert fitted.feature_names == ("log_words", "pc1", "pc2", "pc3")
    pcs = fitted.transform(texts)[["pc1", "pc2", "pc3"]].to_numpy()
    assert np.allclose(pcs.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(np.cov(pcs.T, bias=True), np.eye(3), atol=1e-10)     # whitened: uncorrelated, unit variance
    # PCA by hand: the same subspace
    e = fake_encoder(texts)
    ec = e - e.mean(axis=0)
    _, sv, vt = np.linalg.svd(ec, full_matrices=False)
    assert np.allclose(np.abs(pcs * sv[:3] / np.sqrt(len(texts))), np.abs(ec @ vt[:3].T), atol=1e-8)
    saved = json.loads(json.dumps(fitted.to_dict()))
    assert saved["encoder"] == "fake_encoder" and saved["state"]["encoder_dim"] == 6
    loaded = TextFeatures.from_dict(saved)
    assert loaded.needs_encoder
    with pytest.raises(DataError, match=r"with_text_encoder\(encoder\)"):
        loaded.transform(["new text"])
    new = ["a brand new text", "I'm sorry"]
    assert np.allclose(loaded.with_encoder(fake_encoder).transform(new), fitted.transform(new))
    no_reduce = TextFeatures(builtins=(), encoder=fake_encoder).fit(texts)
    assert no_reduce.feature_names == tuple(f"enc{j}" for j in range(6))


def test_bad_encoders_name_the_rows_and_the_fix():
    texts = ["a", "b c", "d e f"]
    with pytest.raises(DataError, match=r"shape \(2, 6\) for 3 texts.*one row per text"):
        TextFeatures(encoder=lambda t: fake_encoder(t)[:-1]).fit(texts)
    with pytest.raises(DataError, match=r"shape \(3,\) for 3 texts"):
        TextFeatures(encoder=lambda t: np.ones(len(t))).fit(texts)

    def nan_encoder(t):
        out = fake_encoder(t)
        out[[i for i, x in enumerate(t) if x == "b c"]] = np.nan
        return out

    with pytest.raises(DataError, match=r"NaN or infinite values for text\(s\) at 1 row\(s\) \[1\]"):
        TextFeatures(encoder=nan_encoder).fit(texts)
    with pytest.raises(DataError, match="encoder raised RuntimeError: boom"):
        TextFeatures(encoder=lambda t: (_ for _ in ()).throw(RuntimeError("boom"))).fit(texts)
    fitted = quiet(TextFeatures(builtins=(), encoder=fake_encoder).fit, texts)
    with pytest.raises(DataError, match="have 2 columns, but 6 in training"):
        fitted.with_encoder(lambda t: fake_encoder(t)[:, :2]).transform(["x"])
    with pytest.raises(DataError, match="encoder must be a callable"):
        TextFeatures(encoder="all-MiniLM-L6-v2")
    # in comparisons the rows are comparison rows, with their side
    trl = synthetic_trl(6)
    bad_text = trl.loc[4, "rejected"]

    def nan_for(t):
        out = fake_encoder(t)
        out[[i for i, x in enumerate(t) if x == bad_text]] = np.nan
        return out

    with pytest.raises(DataError, match=r"in row\(s\) 4 \(rejected\)"):
        quiet(Comparisons.from_trl, trl, text_features=TextFeatures(encoder=nan_for))


def test_non_string_text_is_an_error_naming_rows():
    with pytest.raises(DataError, match=r"non-string values 3 \(int\), None \(NoneType\).*2 row\(s\) \[1, 3\]"):
        TextFeatures().fit(["a", 3, "b", None])
    with pytest.raises(DataError, match="one string"):
        TextFeatures().fit("just one text")
    df = pd.DataFrame({"a": ["x y", "y z", 7], "b": ["y z", 7.5, "x y"], "outcome": [1, 0, 1]})
    with pytest.raises(DataError, match=r"non-string options 7 \(int\), 7.5 \(float\).*row 2 \(a\), 1 \(b\)"):
        Comparisons.from_frame(df, text_features=TextFeatures())


def test_bad_specs():
    with pytest.raises(DataError, match=r"unknown built-in feature\(s\) \['length'\]"):
        TextFeatures(builtins=("log_words", "length"))
    with pytest.raises(DataError, match="apply to embeddings"):
        TextFeatures(reduce=2)
    with pytest.raises(DataError, match="reduce=0 must be a whole number"):
        TextFeatures(encoder=fake_encoder, reduce=0)
    with pytest.raises(DataError, match="reduce=9 exceeds"):
        TextFeatures(encoder=fake_encoder, reduce=9).fit(["a", "b", "c"])
    with pytest.raises(DataError, match="no features"):
        TextFeatures(builtins=())
    with pytest.raises(DataError, match="not fitted"):
        TextFeatures().transform(["a"])
    with pytest.raises(DataError, match="embedding_columns"):
        TextFeatures(embedding_columns="emb").fit(["a", "b"])


def test_embedding_columns_vectors_reduced_in_comparisons():
    rng = np.random.default_rng(3)
    opts = [f"text {'w ' * k}{k}" for k in range(12)]
    emb = {t: rng.normal(size=5) for t in opts}
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)][:40]
    df = pd.DataFrame({"a": [opts[i] for i, _ in pairs], "b": [opts[j] for _, j in pairs],
                       "outcome": rng.integers(0, 2, len(pairs))})
    df["emb_a"] = [list(emb[t]) for t in df["a"]]
    df["emb_b"] = [emb[t] for t in df["b"]]
    spec = TextFeatures(builtins=("log_words",), embedding_columns="emb", reduce=2)
    data = Comparisons.from_frame(df, text_features=spec)
    assert data.feature_names == ("log_words", "pc1", "pc2")
    direct = data.text_features.transform(pd.Series(opts), embeddings=np.array([emb[t] for t in opts]))
    assert np.allclose(data.option_features.loc[opts].to_numpy(), direct.to_numpy())
    # new option: its embedding comes from the new frame
    new_text, new_emb = "an unseen text", rng.normal(size=5)
    new = pd.DataFrame({"a": [new_text], "b": [opts[0]], "emb_a": [new_emb], "emb_b": [emb[opts[0]]]})
    enc = Comparisons.from_json(data.to_json()).encode(new)
    want = data.text_features.transform([new_text], embeddings=new_emb[None, :]).to_numpy()
    assert enc.a.tolist() == [-1] and np.allclose(enc.xa, want)
    assert np.allclose(enc.xb, data.option_features.loc[[opts[0]]].to_numpy())
    bad = df.copy()
    bad.at[3, "emb_b"] = list(emb[df.at[3, "b"]] + 1)
    with pytest.raises(DataError, match=r"same option text has different embeddings in row 3 \(b\)"):
        Comparisons.from_frame(bad, text_features=spec)
    bad = df.copy()
    bad.at[2, "emb_a"] = [1.0, np.nan, 0, 0, 0]
    with pytest.raises(DataError, match=r"'emb_a' has NaN or infinite values in 1 row\(s\) \[2\]"):
        Comparisons.from_frame(bad, text_features=spec)
    with pytest.raises(DataError, match=r"need a column 'emb_a'"):
        Comparisons.from_frame(df.drop(columns="emb_a"), text_features=spec)


# ---------------------------------------------------------------------------------------------
# Comparisons and fits
# ---------------------------------------------------------------------------------------------
def test_trl_text_features_encode_and_json_round_trip():
    trl = synthetic_trl(40)
    spec = TextFeatures(builtins=("log_words", "questions", "refusal"))
    data = Comparisons.from_trl(trl, text_features=spec)
    assert data.feature_names == ("log_words", "questions", "refusal")
    assert data.option_features.index.equals(data.options)
    assert np.allclose(data.xa, data.option_features.loc[trl["chosen"]].to_numpy())
    assert data.text_features.is_fitted and not spec.is_fitted
    back = Comparisons.from_json(data.to_json())
    assert np.array_equal(back.xa, data.xa) and back.text_features.feature_names == data.feature_names
    new = pd.DataFrame({"prompt": ["p0", "q"], "chosen": [trl.loc[0, "chosen"], "Why? Why not?"],
                        "rejected": ["I'm sorry, I cannot do that for you.", trl.loc[1, "rejected"]]})
    for d in (data, back):
        enc = d.encode(new)
        assert enc.a.tolist()[0] >= 0 and enc.a.tolist()[1] == -1 and enc.b.tolist()[0] == -1
        want = data.text_features.transform([new.loc[1, "chosen"], new.loc[0, "rejected"]]).to_numpy()
        assert np.allclose(enc.xa[1], want[0]) and np.allclose(enc.xb[0], want[1])
        assert np.allclose(enc.xa[0], data.xa[0])
    # a fitted spec is applied as it is (e.g. fitted on other training data)
    other = Comparisons.from_trl(synthetic_trl(10, seed=9), text_features=data.text_features)
    assert other.text_features is data.text_features


def test_text_features_beside_other_features():
    trl = synthetic_trl(30)
    trl["score_chosen"], trl["score_rejected"] = np.arange(30.0), np.arange(30.0) / 2
    cols = Comparisons.from_trl(trl, features=["score"], text_features=TextFeatures(builtins=("log_words",)))
    assert cols.feature_names == ("score", "log_words") and cols.option_features is None
    assert {"score_a", "log_words_a", "log_words_b"} <= set(cols.frame.columns)
    new = trl.iloc[:2].assign(chosen=["fresh text one", "fresh two"])
    enc = cols.encode(new)
    assert enc.xa[:, 0].tolist() == [0.0, 1.0]
    assert np.allclose(enc.xa[:, 1], cols.text_features.transform(["fresh text one", "fresh two"]).iloc[:, 0])
    df = pd.DataFrame({"a": ["x y", "y z w", "x y"], "b": ["y z w", "q", "q"], "outcome": [1, 0, 1]})
    table = pd.DataFrame({"quality": [0.1, 0.5, 0.9]}, index=["q", "x y", "y z w"])
    tab = Comparisons.from_frame(df, features=table, text_features=TextFeatures(builtins=("words",)))
    assert tab.feature_names == ("quality", "words") and list(tab.option_features.columns) == ["quality", "words"]
    enc = tab.encode(pd.DataFrame({"a": ["new words here"], "b": ["q"]}),
                     features=pd.DataFrame({"quality": [0.3]}, index=["new words here"]))
    assert enc.xa[0, 0] == 0.3 and enc.xa[0, 1] == pytest.approx(tab.text_features.transform(["a b c"]).iloc[0, 0])
    with pytest.raises(DataError, match="no features for option"):
        tab.encode(pd.DataFrame({"a": ["new words here"], "b": ["q"]}))
    with pytest.raises(DataError, match="prefix="):
        Comparisons.from_frame(df, features=table.rename(columns={"quality": "words"}),
                               text_features=TextFeatures(builtins=("words",)))


def test_kwise_text_features():
    ratings = pd.DataFrame({"prompt": ["p", "p", "p", "q", "q"],
                            "response": ["short", "a much longer answer here", "mid length one", "ok", "no way, sorry"],
                            "score": [3, 5, 4, 1, 2], "emb": [[0.0, 1.0], [1.0, 0.5], [0.3, 0.2], [0.9, 0.9], [0.1, 0.4]]})
    d = quiet(Comparisons.from_kwise, ratings,
              text_features=TextFeatures(builtins=("words",), embedding_columns="emb", standardise=False))
    assert d.feature_names == ("words", "emb0", "emb1")
    assert d.option_features.loc["short"].tolist() == [1.0, 0.0, 1.0]


@pytest.mark.filterwarnings("ignore::bayespref.ConvergenceWarning")  # tiny runs: the wiring is tested
@pytest.mark.slow  # two fits and a reload (~12 s); keeps the default suite within 10 min (CI-like runs: 10:07-10:31 before)
def test_fit_save_load_predict_on_new_texts(tmp_path):
    trl = synthetic_trl(120)
    data = Comparisons.from_trl(trl, text_features=TextFeatures(builtins=("log_words", "refusal"),
                                                                encoder=fake_encoder, reduce=2))
    assert data.feature_names == ("log_words", "refusal", "pc1", "pc2")
    fit = bp.fit(bp.BradleyTerry(), data, seed=1, **TINY)
    new = pd.DataFrame({"prompt": ["new prompt", "p1"],
                        "chosen": ["A short new answer.", "I'm sorry, I can't help. " + "word " * 30],
                        "rejected": [trl.loc[0, "rejected"], "Fine, here it is: " + "more " * 25 + "done"]})
    before = fit.predict(new)
    assert before["a"].tolist() == new["chosen"].tolist()
    path = fit.save(tmp_path / "text_fit.nc")
    loaded = bp.load_fit(path)
    assert loaded.data.text_features.needs_encoder
    with pytest.raises(DataError, match=r"fit.data = fit.data.with_text_encoder\(encoder\)"):
        loaded.predict(new)
    # known options need no encoder: their features are saved
    assert np.allclose(loaded.predict(trl.iloc[:3])["p_a"], fit.predict(trl.iloc[:3])["p_a"])
    with pytest.raises(DataError, match="does not reproduce"):
        loaded.data.with_text_encoder(lambda t: fake_encoder(t) * 2)
    loaded.data = loaded.data.with_text_encoder(fake_encoder)
    after = loaded.predict(new)
    assert np.allclose(after["p_a"], before["p_a"]) and np.allclose(after["p_a_lower"], before["p_a_lower"])
    # builtins only: nothing to pass again
    plain = Comparisons.from_trl(trl, text_features=TextFeatures(builtins=("log_words",)))
    fit2 = bp.fit(bp.BradleyTerry(), plain, method="svi", seed=0, steps=400, progress=False)
    p = bp.load_fit(fit2.save(tmp_path / "plain.nc")).predict(new)
    assert np.allclose(p["p_a"], fit2.predict(new)["p_a"], atol=1e-6)
    assert p["p_a"].iloc[0] > 0.5    # the shorter answer is preferred


# Conditioned (a Hierarchical by condition) runs by default; the two others compile a larger program
# each (~20 s), so they run with the statistical checks (-m slow) to keep the default suite in 10 min
@pytest.mark.parametrize("family", [pytest.param("Hierarchical", marks=pytest.mark.slow),
                                    pytest.param("LatentTypes", marks=pytest.mark.slow), "Conditioned"])
def test_text_features_feed_every_family(family):
    trl = synthetic_trl(120, seed=2)
    trl["user"] = [f"u{i % 12}" for i in range(len(trl))]
    users = pd.DataFrame({"objective": ["helpful" if i % 2 else "harmless" for i in range(12)]},
                         index=[f"u{i}" for i in range(12)])
    data = Comparisons.from_trl(trl, user="user", user_covariates=users,
                                text_features=TextFeatures(builtins=("log_words", "refusal")))
    model = {"Hierarchical": bp.Hierarchical(varying="features"), "LatentTypes": bp.LatentTypes(n_types=2),
             "Conditioned": bp.Conditioned(condition="objective")}[family]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)  # a short run: only the wiring is tested
        warnings.simplefilter("ignore", bp.SeparationWarning)
        settings = TINY if family == "LatentTypes" else dict(method="svi", steps=300, num_samples=100, progress=False)
        fit = bp.fit(model, data, seed=0, **settings)
    assert list(fit.idata.posterior["feature"].values) == ["log_words", "refusal"]
    new = pd.DataFrame({"prompt": ["x"], "chosen": ["Brand new, short."], "rejected": ["Also new " * 20],
                        "user": ["u3"]})
    assert fit.predict(new)["p_a"].between(0, 1).all()


# ---------------------------------------------------------------------------------------------
# optional extras
# ---------------------------------------------------------------------------------------------
def test_missing_extras_say_how_to_install(monkeypatch):
    monkeypatch.setattr(text_module, "_installed", lambda module: False)
    with pytest.raises(DataError, match=r"needs scikit-learn.*pip install bayespref\[text\]"):
        TextFeatures(bow=4)
    with pytest.raises(DataError, match=r"needs pyphen.*pip install bayespref\[text\]"):
        TextFeatures(builtins=("readability",))


def test_bag_of_words_components():
    trl = synthetic_trl(60)
    spec = TextFeatures(builtins=(), bow=3, bow_options={"ngram_range": [1, 2], "max_features": 200})
    data = Comparisons.from_trl(trl, text_features=spec)
    assert data.feature_names == ("bow1", "bow2", "bow3")
    back = Comparisons.from_json(data.to_json())
    texts = ["the cat runs fast", "I'm sorry, I can't. yes no"]
    assert np.allclose(back.text_features.transform(texts), data.text_features.transform(texts))
    assert np.allclose(data.text_features.transform(pd.Series(data.options[:5])).to_numpy(),
                       data.option_features.iloc[:5].to_numpy())


def test_readability():
    import pyphen

    texts = ["The cat sat on the mat. It was fat!", "Notwithstanding considerable uncertainty, it persists",
             "", "Don't"]
    got = TextFeatures(builtins=("readability",), standardise=False).fit(texts).transform(texts)["readability"]
    assert got.iloc[0] == pytest.approx(206.835 - 1.015 * 9 / 2 - 84.6 * 9 / 9)   # one syllable each
    dic = pyphen.Pyphen(lang="en_US")
    words = ["notwithstanding", "considerable", "uncertainty", "it", "persists"]
    syl = sum(len(dic.positions(w)) + 1 for w in words)
    assert syl > 5 and got.iloc[1] == pytest.approx(206.835 - 1.015 * 5 - 84.6 * syl / 5)
    assert got.iloc[2] == pytest.approx(206.835 - 1.015)          # no words: W = S = 1, Y = 0
    assert got.iloc[3] == pytest.approx(206.835 - 1.015 - 84.6)   # "don't" is one word


# ---------------------------------------------------------------------------------------------
# HH-RLHF: shorter responses are preferred
# ---------------------------------------------------------------------------------------------
def test_hh_rlhf_log_length_weight_is_negative():
    ds = bp.load_dataset("hh_rlhf_harmless")
    data = ds.comparisons(text_features=TextFeatures(builtins=("log_words",)))
    words = data.frame[["a", "b"]].apply(lambda s: s.str.split().str.len()).to_numpy()
    assert np.mean(words[:, 0] < words[:, 1]) == pytest.approx(0.550, abs=5e-4)
    assert np.median(words, axis=0).tolist() == [21, 27]
    raw = np.log1p(words)
    # the feature is log(1 + words), standardised over the 4565 distinct responses
    opts = np.log1p(pd.Series(data.options).str.split().str.len().to_numpy())
    assert np.allclose(data.xa[:, 0] - data.xb[:, 0], (raw[:, 0] - raw[:, 1]) / opts.std())
    fit = bp.fit(bp.BradleyTerry(), data, seed=0, chains=1, warmup=200, draws=400, progress=False)
    w = fit.idata.posterior["weight"].sel(feature="log_words").values.ravel()
    lo, hi = np.quantile(w, [0.05, 0.95])
    assert hi < 0 and w.mean() < 0
    assert -0.45 < w.mean() < -0.2
