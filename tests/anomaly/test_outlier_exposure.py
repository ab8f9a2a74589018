"""Outlier exposure (outlier_exposure.py): the regression added to a fitted detector learns
which departures from the normal docs look like the pseudo-anomalies; the setting is read and
validated at initialize; the learnt weights are saved and refused when damaged."""

import numpy
import pytest
import spacy

from spacy_modernbert.anomaly import detectors, outlier_exposure
from spacy_modernbert.anomaly.scoring import roc_auc

from .conftest import ANOMALY_WORDS, examples, make_records, standalone_pipeline


def _two_kinds(seed=0, width=16):
    """Normal docs along e0; two kinds of anomalies as far from them, along e1 and e2; the
    outlier-exposure docs look like the e1 kind only."""
    rng = numpy.random.RandomState(seed)
    eye = numpy.eye(width)

    def around(direction, n):
        return direction + 0.15 * rng.normal(size=(n, width))

    normal = around(eye[0], 300)
    return normal, around(eye[0] + eye[1], 40), around(eye[0] + eye[2], 40), around(eye[1], 200)


@pytest.mark.parametrize("name", ["knn", "mahalanobis"])
def test_outlier_exposure_raises_the_docs_that_look_like_the_outliers(name):
    normal, like_outliers, other, outliers = _two_kinds()
    detector = detectors.make_detector(name, n_neighbors=5)
    plain = detector.fit(normal)
    exposed = detector.fit(normal, outliers=(outliers, None))
    assert outlier_exposure.active(exposed) and not outlier_exposure.active(plain)

    def ranked_above(state):  # how often an outlier-like anomaly outranks one of the other kind
        X = numpy.concatenate([like_outliers, other])
        raw = detector.raw_scores(state, X)
        if outlier_exposure.active(state):
            raw = outlier_exposure.raw_scores(state, X, raw)
        return roc_auc([1] * 40 + [0] * 40, raw)

    assert 0.25 < ranked_above(plain) < 0.75  # the detector alone: two kinds, about as far
    assert ranked_above(exposed) > 0.85
    # both kinds still score above the normal docs, which sit near the robust location
    s_normal = detector.scores(exposed, normal[:50])
    assert float(numpy.median(s_normal)) < 0.3
    assert float(numpy.median(detector.scores(exposed, other))) > float(numpy.median(s_normal))


def test_outlier_exposure_with_a_token_detector_uses_the_scored_fit_rows():
    normal, like_outliers, _, outliers = _two_kinds(seed=1, width=8)
    rng = numpy.random.RandomState(3)
    tokens = [x + 0.05 * rng.normal(size=(4, 8)) for x in normal]
    out_tokens = [x + 0.05 * rng.normal(size=(4, 8)) for x in outliers]
    detector = detectors.make_detector("doc_and_token_knn", n_neighbors=5, token_neighbors=1)
    state = detector.fit(normal, tokens, outliers=(outliers, out_tokens))
    query_tokens = [x + 0.05 * rng.normal(size=(4, 8)) for x in like_outliers]
    s = detector.scores(state, like_outliers, query_tokens)
    s_normal = detector.scores(state, normal[:40], tokens[:40])
    assert float(numpy.median(s)) > float(numpy.median(s_normal)) + 0.3


def test_outlier_exposure_state_round_trips_and_damage_is_refused():
    normal, like_outliers, _, outliers = _two_kinds(seed=2)
    detector = detectors.make_detector("knn", n_neighbors=5)
    state = detector.fit(normal, outliers=(outliers, None))
    loaded = detectors.state_from_bytes(detectors.state_to_bytes(state), detector, 16)
    numpy.testing.assert_allclose(
        detector.scores(loaded, like_outliers), detector.scores(state, like_outliers)
    )
    partial = {k: v for k, v in state.items() if k != "oe_bias"}
    with pytest.raises(ValueError, match="outlier-exposure arrays"):
        detector.check_state(partial, 16)
    bad = dict(state, oe_weights=state["oe_weights"][:-1])
    with pytest.raises(ValueError, match="outlier-exposure weights have shape"):
        detector.check_state(bad, 16)


@pytest.mark.parametrize(
    "value,match",
    [
        ("texts.txt", "outlier_exposure"),
        ({"path": "t.txt", "lines": 5}, "unknown settings"),
        ({"n": 5}, "needs path"),
        ({"path": "t.txt", "n": 0}, "n must be an integer >= 1"),
        ({"path": "t.txt", "n": True}, "n must be an integer >= 1"),
    ],
)
def test_bad_outlier_exposure_settings_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        standalone_pipeline("one_class", detector="knn", outlier_exposure=value)


def test_outlier_exposure_needs_a_fitted_one_class_detector():
    with pytest.raises(ValueError, match="outlier_exposure needs mode"):
        standalone_pipeline("supervised", outlier_exposure={"path": "t.txt"})


def _outlier_file(tmp_path, n=60):
    path = tmp_path / "outliers.txt"
    rng = numpy.random.RandomState(0)
    lines = [" ".join(rng.choice(ANOMALY_WORDS, 5)) + " again ." for _ in range(n)]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf8")
    return path


def test_a_missing_or_empty_file_is_named_at_initialize(tmp_path):
    nlp = standalone_pipeline(
        "one_class", detector="knn", outlier_exposure={"path": str(tmp_path / "nope.txt")}
    )
    egs = examples(nlp, make_records(30, 0.0, seed=0), entities=False)
    with pytest.raises(ValueError, match="nope.txt' is not a file"):
        nlp.initialize(lambda: egs)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf8")
    nlp = standalone_pipeline("one_class", detector="knn", outlier_exposure={"path": str(empty)})
    with pytest.raises(ValueError, match="0 non-blank lines"):
        nlp.initialize(lambda: egs)


def test_read_texts_is_a_seeded_sample_of_n_lines(tmp_path):
    path = _outlier_file(tmp_path, n=60)
    a = outlier_exposure.read_texts({"path": str(path), "n": 10}, "x")
    assert len(a) == 10 and a == outlier_exposure.read_texts({"path": str(path), "n": 10}, "x")
    assert len(outlier_exposure.read_texts({"path": str(path), "n": 1000}, "x")) == 60


def test_component_with_outlier_exposure_scores_saves_and_loads(tmp_path, seeded):
    path = _outlier_file(tmp_path)
    nlp = standalone_pipeline(
        "one_class", detector="knn", n_neighbors=3, outlier_exposure={"path": str(path), "n": 40}
    )
    egs = examples(nlp, make_records(80, 0.0, seed=1), entities=False)
    nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("anomaly_scorer")
    assert outlier_exposure.active(pipe._fitted.state)
    texts = [t for t, _, _ in make_records(40, 0.5, seed=7)]
    scores = [doc._.anomaly_score for doc in nlp.pipe(texts)]
    gold = [g for _, _, g in make_records(40, 0.5, seed=7)]
    # the outlier file holds the anomalies' words: they rank higher than without it
    spacy.util.fix_random_seed(0)
    plain = standalone_pipeline("one_class", detector="knn", n_neighbors=3)
    plain.initialize(lambda: egs)
    plain_scores = [doc._.anomaly_score for doc in plain.pipe(texts)]
    assert roc_auc(gold, scores) > roc_auc(gold, plain_scores) + 0.05
    # explaining gives the scores predict gives (occlusion re-scores with the regression too)
    pipe.explain_settings["explain_method"] = "occlusion"
    explained = pipe.explain(list(nlp.pipe(texts)))
    numpy.testing.assert_allclose([doc._.anomaly_score for doc in explained], scores, rtol=1e-6)
    assert all(len(doc.spans["anomaly"]) >= 1 for doc in explained)
    # the file is read at initialize only: the saved pipeline keeps the weights
    nlp.to_disk(tmp_path / "pipe")
    path.unlink()
    loaded = spacy.load(tmp_path / "pipe")
    numpy.testing.assert_allclose([doc._.anomaly_score for doc in loaded.pipe(texts)], scores)
    # refitting in the process that initialized keeps the outlier exposure
    state = pipe.fit_detector(list(nlp.pipe([t for t, _, _ in make_records(30, 0.0, seed=2)])))
    assert outlier_exposure.active(state)
