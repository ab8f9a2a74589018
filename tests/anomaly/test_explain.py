"""Explanations of anomaly_scorer (explain.py): token scores, doc.spans["anomaly"], settings."""

import json
from pathlib import Path

import numpy
import pytest
import spacy
from spacy import displacy

from spacy_modernbert.anomaly import explain, search
from spacy_modernbert.anomaly.detectors import make_detector

from .conftest import examples, make_records, standalone_pipeline, train

NORMAL_LINE = "Alice reported server restarted deploy finished today ."
ANOMALOUS_LINE = "Bob reported breach stolen rootkit leaked today ."
TEXT = f"{NORMAL_LINE}\n{ANOMALOUS_LINE}\nCarol reported backup completed cache warmed today ."
EXPLAIN_SVDD = Path(__file__).parents[2] / "benchmarks" / "results" / "explain_svdd.json"
SYSTEMS = [
    ("supervised", None),
    ("one_class", "doc_and_token_knn"),
    ("one_class", "token_knn"),
    ("one_class", "knn"),
    ("one_class", "mahalanobis"),
]


def trained(mode, detector, **settings):
    spacy.util.fix_random_seed(0)
    if detector is not None:
        settings["detector"] = detector
    nlp = standalone_pipeline(mode, **settings)
    records = make_records(80, 0.25 if mode == "supervised" else 0.0, 0)
    train(nlp, examples(nlp, records, entities=False), 3 if mode == "supervised" else 1)
    return nlp


@pytest.fixture(scope="module", params=SYSTEMS, ids=lambda s: s[1] or s[0])
def system(request):
    return trained(*request.param)


def spans(doc):
    group = doc.spans[explain.SPAN_KEY]
    return [(s.start, s.end, s.label_) for s in group], list(group.attrs["scores"])


def test_off_by_default_sets_nothing(system):
    pipe = system.get_pipe("anomaly_scorer")
    assert pipe.explain_settings["explain"] is False
    doc = system(TEXT)
    assert explain.SPAN_KEY not in doc.spans
    assert all(token._.anomaly_score is None for token in doc)


def test_explain_points_at_the_anomalous_line_and_keeps_the_score(system):
    pipe = system.get_pipe("anomaly_scorer")
    plain = system(TEXT)._.anomaly_score
    doc = pipe.explain(system(TEXT))
    assert doc._.anomaly_score == pytest.approx(plain, abs=1e-9)
    group = doc.spans[explain.SPAN_KEY]
    assert len(group) == 1 and group[0].label_ == explain.SPAN_LABEL
    assert group[0].text == ANOMALOUS_LINE
    assert all(0.0 <= token._.anomaly_score <= 1.0 for token in doc)
    assert 0.0 <= group.attrs["scores"][0] <= 1.0


def test_setting_on_equals_the_method_batch_and_single():
    nlp = trained("one_class", "knn", explain=True, explain_spans=2)
    texts = [TEXT, NORMAL_LINE, "", ANOMALOUS_LINE + " " + NORMAL_LINE]
    batch = list(nlp.pipe(texts, batch_size=4))
    for text, doc in zip(texts, batch):
        alone = nlp(text)
        assert spans(alone)[0] == spans(doc)[0]
        assert spans(alone)[1] == pytest.approx(spans(doc)[1], abs=1e-6)
        assert [t._.anomaly_score for t in alone] == pytest.approx(
            [t._.anomaly_score for t in doc], abs=1e-6
        )
    assert len(batch[0].spans["anomaly"]) == 2 and not batch[2].spans["anomaly"]
    assert batch[0].spans["anomaly"][0].text == ANOMALOUS_LINE
    nlp.get_pipe("anomaly_scorer").explain_settings["explain"] = False
    plain = nlp(TEXT)
    # the same score on the scoring path, to float32 rounding (the two paths sum in another order)
    assert plain._.anomaly_score == pytest.approx(batch[0]._.anomaly_score, abs=1e-6)
    assert "anomaly" not in plain.spans


@pytest.mark.parametrize(
    "mode,detector,method",
    [
        ("supervised", None, "auto"),
        ("one_class", "token_knn", "auto"),
        ("one_class", "knn", "decompose"),
        ("one_class", "mahalanobis", "decompose"),
        ("one_class", "knn", "decompose_calibrated"),
        ("one_class", "mahalanobis", "decompose_calibrated"),
    ],
)
def test_saved_and_reloaded_pipeline_gives_the_same_spans(tmp_path, mode, detector, method):
    nlp = trained(
        mode,
        detector,
        explain=True,
        explain_spans=3,
        explain_method=method,
        explain_length_weight=0.5,
        explain_passages="lines",
    )
    before = nlp(TEXT)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("anomaly_scorer").explain_settings == {
        "explain": True,
        "explain_spans": 3,
        "explain_method": method,
        "explain_length_weight": 0.5,
        "explain_passages": "lines",
    }
    after = loaded(TEXT)
    assert spans(after)[0] == spans(before)[0]
    assert spans(after)[1] == pytest.approx(spans(before)[1], abs=1e-6)
    assert [t._.anomaly_score for t in after] == pytest.approx(
        [t._.anomaly_score for t in before], abs=1e-6
    )


@pytest.mark.parametrize("method", ["occlusion", "alone"])
def test_passage_methods_for_a_token_detector(method):
    nlp = trained("one_class", "doc_and_token_knn", explain=True, explain_method=method)
    doc = nlp(TEXT)
    assert doc.spans["anomaly"][0].text == ANOMALOUS_LINE
    # a passage's tokens carry the passage's score
    scores = {t._.anomaly_score for t in doc.spans["anomaly"][0]}
    assert len(scores) == 1


@pytest.mark.parametrize("detector", ["token_knn", "doc_and_token_knn"])
@pytest.mark.parametrize("method", ["occlusion", "alone"])
def test_token_detector_passages_score_as_their_token_vectors(detector, method):
    """A token detector's occlusion/alone rows, from the distances of the one token search,
    equal the rows scored from their token vectors (a search per row)."""
    from spacy_modernbert.anomaly.model import doc_features

    nlp = trained("one_class", detector, explain_method=method, explain_spans=5)
    pipe = nlp.get_pipe("anomaly_scorer")
    docs = [nlp.make_doc(t) for t in (TEXT, NORMAL_LINE + " " + ANOMALOUS_LINE)]
    for name, proc in nlp.pipeline:
        if name != "anomaly_scorer":
            docs = list(proc.pipe(docs))
    scores, fast = explain.explain_docs(pipe, docs)
    assert numpy.asarray(scores) == pytest.approx(numpy.asarray(pipe.predict(docs)), abs=1e-9)
    pooled, tokens = doc_features(pipe.model, docs, True)
    arrays = [numpy.asarray(t, dtype="float32") for t in tokens]
    rows = explain._row_logits(pipe)
    logits = rows(numpy.asarray(pooled), arrays)
    slow = explain.passage_explanations(docs, arrays, logits, rows, "mean", method, 5)
    for a, b in zip(fast, slow):
        assert [p[:2] for p in a.passages] == [p[:2] for p in b.passages]
        assert [p[2] for p in a.passages] == pytest.approx([p[2] for p in b.passages], abs=1e-9)


@pytest.mark.parametrize("method", ["tokens", "occlusion", "alone"])
def test_token_explanation_reuses_the_scoring_search(monkeypatch, method):
    """Every method of a token detector adds one token search (no search per passage)."""
    nlp = trained("one_class", "token_knn", explain_method=method)
    nlp(TEXT)  # the first call re-fits the detector after training
    calls = []
    real = search.nearest_distances

    def counting(Q, *args, **kwargs):
        calls.append(int(Q.shape[0]))
        return real(Q, *args, **kwargs)

    monkeypatch.setattr(search, "nearest_distances", counting)
    nlp(TEXT)
    plain = list(calls)
    calls.clear()
    nlp.get_pipe("anomaly_scorer").explain(nlp(TEXT))
    assert plain and calls == plain + plain  # nlp() once more, then the explanation's one search


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"explain_spans": 0}, "explain_spans"),
        ({"explain_method": "gradient"}, "explain_method"),
        ({"explain_method": "decomposed"}, "explain_method"),
        ({"explain": "yes"}, "explain"),
        ({"explain_length_weight": 5}, "explain_length_weight"),
        ({"explain_length_weight": "long"}, "explain_length_weight"),
        ({"explain_passages": "paragraphs"}, "explain_passages"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        standalone_pipeline("supervised", **settings)


def test_length_weight_ranks_by_value_times_length():
    passages = [(0, 2, 0.5), (2, 10, 0.3), (10, 11, 0.6)]
    assert explain.top_spans(passages, 1, 0.0) == [(10, 11, 0.6)]
    assert explain.top_spans(passages, 1, 1.0) == [(2, 10, 0.3)]  # 2.4 > 1.0 > 0.6
    assert explain.top_spans(passages, 3, 0.5)[0] == (2, 10, 0.3)
    assert explain.top_spans(passages, 2, -0.5) == [(10, 11, 0.6), (0, 2, 0.5)]


def test_auto_and_a_null_weight_follow_the_table(monkeypatch):
    class Knn:
        name = "knn"

    choice = {
        "method": "alone",
        "weights": {"alone": 1.0, "occlusion": -0.5},
        "passages": {"alone": "lines"},
    }
    monkeypatch.setitem(explain.AUTO, "knn", choice)
    settings = dict(explain.EXPLAIN_SETTINGS)
    assert explain.resolve(settings, Knn(), "x") == ("alone", 1.0, "lines")
    settings["explain_method"] = "occlusion"
    assert explain.resolve(settings, Knn(), "x") == ("occlusion", -0.5, "sentences")
    settings["explain_length_weight"] = 0.5
    settings["explain_passages"] = "lines"
    assert explain.resolve(settings, Knn(), "x") == ("occlusion", 0.5, "lines")
    # a detector the table does not name: tokens if it has token scores, weight 0, sentences
    assert explain.resolve(dict(explain.EXPLAIN_SETTINGS), object(), "x") == (
        "occlusion",
        0.0,
        "sentences",
    )


def test_tokens_method_needs_a_token_detector():
    nlp = trained("one_class", "knn", explain_method="tokens")
    with pytest.raises(ValueError, match="token detector"):
        nlp.get_pipe("anomaly_scorer").explain(nlp(TEXT))


def test_segments_follow_sentences_lines_and_punctuation():
    nlp = spacy.blank("en")
    doc = nlp("Disk full. Backup failed!\nRestart scheduled")
    assert [doc[s:e].text.strip() for s, e in explain.segments(doc)] == [
        "Disk full.",
        "Backup failed!",
        "Restart scheduled",
    ]
    doc[3].is_sent_start = True  # "Backup" starts a sentence; the rest follows sentence rules
    for token in doc:
        if token.i not in (0, 3):
            token.is_sent_start = False
    assert [doc[s:e].text for s, e in explain.segments(doc)] == [
        "Disk full.",
        "Backup failed!\nRestart scheduled",
    ]
    # lines: a doc's lines where it has several (sentence starts or not), else its sentences
    assert [doc[s:e].text.strip() for s, e in explain.segments(doc, "lines")] == [
        "Disk full. Backup failed!",
        "Restart scheduled",
    ]
    one_line = nlp("Disk full. Backup failed!")
    assert [one_line[s:e].text for s, e in explain.segments(one_line, "lines")] == [
        "Disk full.",
        "Backup failed!",
    ]
    long_doc = nlp(" ".join(["word"] * (explain.MAX_SEGMENT_TOKENS + 5)))
    assert explain.segments(long_doc) == [
        (0, explain.MAX_SEGMENT_TOKENS),
        (explain.MAX_SEGMENT_TOKENS, explain.MAX_SEGMENT_TOKENS + 5),
    ]


def test_displacy_renders_the_span_group():
    nlp = trained("one_class", "knn", explain=True)
    html = displacy.render(nlp(TEXT), style="span", options={"spans_key": "anomaly"})
    assert explain.SPAN_LABEL in html and "rootkit" in html
    records = explain.span_records(nlp(TEXT))
    assert (
        records[0]["text"] == ANOMALOUS_LINE
        and TEXT[records[0]["start"] : records[0]["end"]] == ANOMALOUS_LINE
    )
    assert numpy.isfinite(records[0]["score"])


def test_explanations_survive_doc_serialization():
    from spacy.tokens import Doc

    nlp = trained("one_class", "token_knn", explain=True, explain_spans=2)
    doc = nlp(TEXT)
    copy = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert spans(copy) == spans(doc)
    assert [t._.anomaly_score for t in copy] == [t._.anomaly_score for t in doc]


@pytest.mark.parametrize("detector", ["knn", "mahalanobis"])
@pytest.mark.parametrize("pooling", ["mean", "idf"])
@pytest.mark.parametrize("method", ["decompose", "decompose_projected"])
def test_decompose_terms_sum_to_the_raw_score(detector, pooling, method):
    """ "decompose": each token's term of a pooled-vector detector's raw score; the terms of a
    doc sum to the raw score the detector gives it, and the explanation keeps predict's score."""
    nlp = trained("one_class", detector, pooling=pooling, explain_method=method)
    pipe = nlp.get_pipe("anomaly_scorer")
    texts = [TEXT, NORMAL_LINE, ANOMALOUS_LINE + " " + NORMAL_LINE, "x"]
    docs = [nlp.make_doc(t) for t in texts]
    fitted = pipe._fitted
    state = fitted.ready_state()
    pooled, tokens = fitted.features(docs, True)
    raw = fitted.detector.raw_scores(state, pooled)
    arrays = [numpy.asarray(t) for t in tokens]
    split = explain.DECOMPOSE_SPLITS[method]
    terms = fitted.detector.raw_terms(
        fitted.state, numpy.asarray(pooled), arrays, fitted.token_weights(docs), split
    )
    assert [len(t) for t in terms] == [len(d) for d in docs]
    assert [float(t.sum()) for t in terms] == pytest.approx(list(raw), rel=1e-4, abs=1e-5)
    assert len({round(float(x), 6) for x in terms[0]}) > 1  # the tokens differ
    scores, explanations = explain.explain_docs(pipe, docs)
    assert numpy.asarray(scores) == pytest.approx(numpy.asarray(pipe.predict(docs)), abs=1e-9)
    for ex, t in zip(explanations, terms):
        assert ex.token_scores == pytest.approx(
            numpy.asarray(
                explain.unit_scores(fitted.state, len(t) * numpy.asarray(t, dtype="float64"))
            )
        )
        # a passage ranks by its tokens' mean term
        shares = [float(t[s:e].mean()) for s, e, _ in ex.passages]
        assert (
            numpy.argsort(shares).tolist() == numpy.argsort([v for *_, v in ex.passages]).tolist()
        )
    doc = pipe.explain(nlp(TEXT))
    assert doc.spans["anomaly"][0].text == ANOMALOUS_LINE


def test_decompose_terms_are_exact_on_known_vectors():
    """The decomposition on hand-made vectors: knn terms s_t - a_t . b, mahalanobis terms
    (a_t - s_t mu)^T P (z - mu), under both splits summing to the detectors' own raw scores."""
    from spacy_modernbert.anomaly import decomposition, detectors

    rng = numpy.random.RandomState(0)
    normal = rng.normal(size=(40, 6)) + 2.0
    tokens = [rng.normal(size=(n, 6)) + 2.0 for n in (1, 3, 7)]
    pooled = numpy.stack([t.mean(axis=0) for t in tokens])
    for name in ("knn", "mahalanobis"):
        detector = detectors.make_detector(name, n_neighbors=4)
        state = detector.fit(normal)
        raw = detector.raw_scores(state, pooled)
        idf = [rng.uniform(1, 3, size=len(t)) for t in tokens]
        idf_pooled = numpy.stack([search.normalize(t).T @ w / w.sum() for t, w in zip(tokens, idf)])
        idf_raw = detector.raw_scores(state, idf_pooled)
        for split in decomposition.SPLITS:  # (float32 search: 1e-6)
            terms = detector.raw_terms(state, pooled, tokens, None, split)
            assert [t.sum() for t in terms] == pytest.approx(list(raw), rel=1e-5, abs=1e-6)
            terms = detector.raw_terms(state, idf_pooled, tokens, idf, split)
            assert [t.sum() for t in terms] == pytest.approx(list(idf_raw), rel=1e-5, abs=1e-6)
        # the splits share the constant differently: the same sum, other terms
        weights, projection, linear = (
            detector.raw_terms(state, pooled, tokens, None, s)[2]
            for s in ("weights", "projection", "linear")
        )
        assert not numpy.allclose(weights, projection)
        if name == "knn":  # knn's score is linear in z plus the constant z . z = 1
            assert linear == pytest.approx(weights)
        else:  # c_t (z^T P z + mu^T P mu) - 2 a_t^T P mu, by hand
            mu, P = state["center"], state["precision"]
            H = tokens[2]
            m = H.mean(axis=0)
            z = m / numpy.linalg.norm(m)
            a = H / (len(H) * numpy.linalg.norm(m))
            by_hand = (z @ P @ z + mu @ P @ mu) / len(H) - 2 * a @ (P @ mu)
            assert linear == pytest.approx(by_hand)
            assert not numpy.allclose(linear, weights)
        with pytest.raises(ValueError, match="split must be one of"):
            detector.raw_terms(state, pooled, tokens, None, "even")
    # one token: its term is the whole score
    ((a, c, z),) = decomposition.pooling_terms(pooled[:1], tokens[:1])
    assert c.tolist() == [1.0] and numpy.allclose(a[0], z)


def test_knn_terms_leave_one_out_sum_to_the_fit_docs_scores():
    """`exclude` (a fit doc's own bank row, as passage_calibration fits the reference): the
    terms sum to the leave-one-out score the detector gives its fit docs."""
    from spacy_modernbert.anomaly import detectors

    rng = numpy.random.RandomState(1)
    tokens = [rng.normal(size=(n, 6)) + 1.0 for n in (2, 4, 5, 3, 6, 2, 7, 3)]
    pooled = numpy.stack([t.mean(axis=0) for t in tokens])
    detector = detectors.make_detector("knn", n_neighbors=3)
    state = detector.fit(pooled)
    loo = search.knn_scores(search.normalize(pooled), state["bank"], 3, numpy, leave_one_out=True)
    terms = detector.raw_terms(state, pooled, tokens, None, "linear", exclude=range(len(tokens)))
    assert [t.sum() for t in terms] == pytest.approx(list(loo), rel=1e-5, abs=1e-6)
    with_self = detector.raw_terms(state, pooled, tokens, None, "linear")
    assert [t.sum() for t in with_self] != pytest.approx(list(loo), rel=1e-5, abs=1e-6)


def test_passage_quantiles_use_the_nearest_lengths(monkeypatch):
    """A passage's value is its quantile (ties half) among the reference passages of the
    lengths nearest its own (log scale), whole lengths, at least NEAREST of them."""
    from spacy_modernbert.anomaly import passage_calibration as pc

    state = {
        "passage_lengths_lines": numpy.array([1, 1, 2, 8, 8, 8, 30]),
        "passage_values_lines": numpy.array([0.1, 0.9, 0.5, 0.2, 0.4, 0.6, 5.0]),
    }
    monkeypatch.setattr(pc, "NEAREST", 3)
    # 8 tokens: the three 8-token passages suffice; 0.4 ties one, beats one
    assert pc.quantiles(state, "lines", [8], [0.4]).tolist() == [0.5]
    # 1 token: the 1-token passages (2), then the 2-token one: 0.6 beats 0.1 and 0.5
    assert pc.quantiles(state, "lines", [1], [0.6]).tolist() == pytest.approx([2 / 3])
    # 16 tokens: 30 is nearer on the log scale (0.63 vs 0.69): the 30, then all the 8s
    assert pc.quantiles(state, "lines", [16], [1.0]).tolist() == [0.75]
    monkeypatch.setattr(pc, "NEAREST", 100)  # more than there are: all of them
    assert pc.quantiles(state, "lines", [3], [10.0]).tolist() == [1.0]
    assert pc.quantiles(state, "lines", [3], [-1.0]).tolist() == [0.0]
    assert not pc.has_reference(state, "sentences") and pc.has_reference(state, "lines")


@pytest.mark.parametrize("detector", ["knn", "mahalanobis"])
@pytest.mark.parametrize("pooling", ["mean", "idf"])
def test_decompose_calibrated_values_passages_by_the_fitted_reference(detector, pooling):
    """ "decompose_calibrated": the fit stores a reference per passage unit (the normal fit
    docs' passages: length, value from the "linear" terms); a passage's value is its
    quantile there, the tokens' scores are the linear terms on the detector's scale."""
    from spacy_modernbert.anomaly import passage_calibration as pc

    nlp = trained("one_class", detector, pooling=pooling, explain_method="decompose_calibrated")
    pipe = nlp.get_pipe("anomaly_scorer")
    fitted = pipe._fitted
    for unit in explain.PASSAGE_UNITS:
        lengths, values = (fitted.state[k] for k in pc.state_keys(unit))
        assert len(lengths) == len(values) > 0 and lengths.min() >= 1
        assert numpy.isfinite(values).all()
    docs = [nlp.make_doc(t) for t in (TEXT, ANOMALOUS_LINE + " " + NORMAL_LINE, "x")]
    scores, explanations = explain.explain_docs(pipe, docs)
    assert numpy.asarray(scores) == pytest.approx(numpy.asarray(pipe.predict(docs)), abs=1e-9)
    pooled, tokens = fitted.features(docs, True)
    terms = fitted.detector.raw_terms(
        fitted.state,
        numpy.asarray(pooled),
        [numpy.asarray(t) for t in tokens],
        fitted.token_weights(docs),
        "linear",
    )
    _, _, unit = explain.resolve(pipe.explain_settings, fitted.detector, pipe.name)
    for ex, t in zip(explanations, terms):
        lengths = [e - s for s, e, _ in ex.passages]
        raw = [len(t) * float(t[s:e].mean()) for s, e, _ in ex.passages]
        assert [v for *_, v in ex.passages] == pytest.approx(
            pc.quantiles(fitted.state, unit, lengths, raw).tolist()
        )
        assert all(0.0 <= v <= 1.0 for *_, v in ex.passages)
        assert ex.token_scores == pytest.approx(
            numpy.asarray(explain.unit_scores(fitted.state, len(t) * numpy.asarray(t)))
        )
    doc = pipe.explain(nlp(TEXT))
    assert doc.spans["anomaly"][0].text == ANOMALOUS_LINE


def test_the_passage_reference_reuses_the_fit_pass_when_the_bank_is_small(monkeypatch):
    """A bank of at most REFERENCE_DOCS docs is encoded once for the detector and its
    reference (the same arrays as encoding the reference apart); a larger bank encodes only
    the reference's subsample a second time."""
    from spacy_modernbert.anomaly import passage_calibration as pc
    from spacy_modernbert.anomaly.fitted import FittedDetector

    nlp = trained("one_class", "knn", explain_method="decompose_calibrated")
    fitted = nlp.get_pipe("anomaly_scorer")._fitted
    docs = list(nlp.pipe([TEXT, NORMAL_LINE, NORMAL_LINE + " " + NORMAL_LINE, "x y z"]))
    calls = []
    encode = FittedDetector._numpy_features

    def counted(self, docs, *args, **kwargs):
        calls.append(len(docs))
        return encode(self, docs, *args, **kwargs)

    monkeypatch.setattr(FittedDetector, "_numpy_features", counted)
    one_pass = {k: v.copy() for k, v in fitted.fit(docs).items()}
    assert calls == [len(docs)]
    monkeypatch.setattr(pc, "REFERENCE_DOCS", 2)
    calls.clear()
    fitted.fit(docs)
    assert calls == [len(docs), 2]
    monkeypatch.setattr(pc, "REFERENCE_DOCS", len(docs))
    features = encode(fitted, docs, None, with_tokens=True)
    apart = fitted._passage_reference(docs, None, one_pass)
    assert fitted._passage_reference(docs, None, one_pass, features).keys() == apart.keys()
    for key, value in apart.items():
        assert one_pass[key] == pytest.approx(value)


def test_decompose_calibrated_refuses_a_state_without_reference():
    from spacy_modernbert.anomaly import detectors

    nlp = trained("one_class", "knn", explain_method="decompose_calibrated")
    pipe = nlp.get_pipe("anomaly_scorer")
    # a stored state of an older version: no passage reference (and nothing to re-fit on)
    old = {k: v for k, v in pipe._fitted.ready_state().items() if not k.startswith("passage_")}
    pipe._fitted.from_bytes(detectors.state_to_bytes(old), None)
    with pytest.raises(ValueError, match="decompose_calibrated.*re-fit"):
        pipe.explain(nlp(TEXT))
    pipe.explain_settings["explain_method"] = "decompose"  # the others need none
    doc = pipe.explain(nlp(TEXT))
    assert doc.spans["anomaly"][0].text == ANOMALOUS_LINE


@pytest.mark.parametrize(
    "change",
    [
        {"passage_values_lines": numpy.zeros(3)},  # lengths and values of two lengths
        {"passage_lengths_lines": numpy.zeros((2, 2), dtype="int64")},
        {"passage_lengths_lines": numpy.array([0.5, 1.5])},  # lengths must be integers
        {"passage_lengths_lines": numpy.array([-1, 2])},
        {"passage_values_other": numpy.zeros(2)},  # a value array without its lengths
    ],
)
def test_a_stored_malformed_passage_reference_is_refused_at_load(change):
    """The passage reference is part of a stored state (a stranger's file): a malformed one
    is refused when the state is loaded, naming the reference and the fix."""
    from spacy_modernbert.anomaly import detectors

    nlp = trained("one_class", "knn", explain_method="decompose_calibrated")
    fitted = nlp.get_pipe("anomaly_scorer")._fitted
    state = dict(fitted.ready_state())
    state["passage_lengths_lines"] = numpy.array([1, 2])
    state["passage_values_lines"] = numpy.array([0.1, 0.2])
    fitted.from_bytes(detectors.state_to_bytes(state), None)  # well formed: loads
    with pytest.raises(ValueError, match="passage reference for .* re-fit"):
        fitted.from_bytes(detectors.state_to_bytes({**state, **change}), None)


def test_decompose_needs_a_pooled_vector_detector_and_mean_pooling():
    for method in ("decompose_projected", "decompose_calibrated"):
        nlp = trained("one_class", "token_knn", explain_method=method)
        with pytest.raises(ValueError, match=f"{method}.*knn or mahalanobis"):
            nlp.get_pipe("anomaly_scorer").explain(nlp(TEXT))
    nlp = trained("supervised", None, explain_method="decompose")
    with pytest.raises(ValueError, match="decompose.*supervised head"):
        nlp.get_pipe("anomaly_scorer").explain(nlp(TEXT))
    nlp = trained("one_class", "knn", explain_method="decompose", model={"pooling": "max"})
    with pytest.raises(ValueError, match='decompose.*pooling = "max"'):
        nlp.get_pipe("anomaly_scorer").explain(nlp(TEXT))


def test_auto_is_chosen_per_detector_and_pooling(monkeypatch):
    """AUTO's "NAME_idf" entry serves a detector with pooling = "idf"; without one, the
    detector's own entry does."""
    from spacy_modernbert.anomaly import detectors

    mean_choice = {"method": "occlusion", "weights": {"occlusion": 0.5}}
    idf_choice = {"method": "decompose", "weights": {"decompose": 1.0}, "passages": {}}
    monkeypatch.setitem(explain.AUTO, "knn", mean_choice)
    monkeypatch.setitem(explain.AUTO, "knn_idf", idf_choice)
    settings = dict(explain.EXPLAIN_SETTINGS)
    knn_idf = detectors.make_detector("knn", pooling="idf")
    assert explain.auto_key(knn_idf) == "knn_idf"
    assert explain.resolve(settings, knn_idf, "x") == ("decompose", 1.0, "sentences")
    assert explain.resolve(settings, detectors.make_detector("knn"), "x")[:2] == ("occlusion", 0.5)
    monkeypatch.delitem(explain.AUTO, "knn_idf")
    assert explain.auto_key(knn_idf) == "knn"
    assert explain.auto_key(None) is None


def test_the_svdd_head_offers_no_explanation_and_says_what_does(tmp_path):
    """explain.NOT_EXPLAINED: the Deep-SVDD head's explanations hit the inserted spam no better
    than a random passage (results/explain_svdd.json), so explain is refused for it, at
    construction when the config turns it on, and when asked later, naming the fix; scoring
    is unchanged, and the detectors that explain are not refused."""
    with pytest.raises(ValueError, match="not offered for the Deep-SVDD head") as err:
        standalone_pipeline("one_class", detector="svdd", explain=True)
    assert "explain = false" in str(err.value) and "doc_and_token_knn" in str(err.value)
    nlp = trained("one_class", "svdd")
    pipe = nlp.get_pipe("anomaly_scorer")
    doc = nlp(TEXT)
    assert 0.0 <= doc._.anomaly_score <= 1.0 and explain.SPAN_KEY not in doc.spans
    with pytest.raises(ValueError, match="anomaly_scorer 'anomaly_scorer': explanations are not"):
        pipe.explain(doc)
    assert explain.SPAN_KEY not in doc.spans and not pipe.explain_settings["explain"]
    # a pipeline saved with svdd and explain turned on in its config later: refused when used
    nlp.to_disk(tmp_path / "svdd")
    loaded = spacy.load(tmp_path / "svdd")
    loaded.get_pipe("anomaly_scorer").explain_settings["explain"] = True
    with pytest.raises(ValueError, match="Deep-SVDD"):
        loaded(TEXT)
    # the ones that explain
    assert explain.refusal(None, "x") is None  # the supervised head
    for name in ("doc_and_token_knn", "token_knn", "knn", "mahalanobis"):
        assert explain.refusal(make_detector(name), "x") is None
    assert "svdd" in explain.NOT_EXPLAINED
    result = json.loads(EXPLAIN_SVDD.read_text(encoding="utf8"))  # the measured reason
    assert result["auto"]["svdd"]["dev"] < 0.8
