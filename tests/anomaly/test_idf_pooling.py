"""IDF pooling (idf_pooling.py, the detectors' `pooling = "idf"` setting): the doc vector
weighs each token by how rare its text is among the normal fit docs, so one unusual word
among common ones is not averaged away; the IDF table is fitted, saved, loaded and checked
with the detector's state."""

import random

import numpy
import pytest
import spacy

from spacy_modernbert.anomaly import detectors, idf_pooling
from spacy_modernbert.anomaly.scoring import roc_auc

from .conftest import ANOMALY_WORDS, NORMAL_WORDS, examples, standalone_pipeline


def _keys(*docs):
    return [numpy.asarray(d, dtype="uint64") for d in docs]


def test_idf_weights_rare_and_unseen_texts_most():
    table = idf_pooling.fit(_keys([1, 2, 2], [1, 3], [1, 2]))
    (w,) = idf_pooling.weights(table, _keys([1, 2, 3, 99]))
    # df: 1 in 3 docs, 2 in 2, 3 in 1, 99 in none (counted once per doc)
    assert w[0] < w[1] < w[2] < w[3]
    numpy.testing.assert_allclose(w[0], numpy.log(4 / 4) + 1)
    numpy.testing.assert_allclose(w[3], numpy.log(4) + 1)
    # an empty table (no fit tokens) weighs every text as unseen
    (w,) = idf_pooling.weights(idf_pooling.fit(_keys([])), _keys([5, 6]))
    numpy.testing.assert_allclose(w, [numpy.log(2) + 1] * 2)


def test_pooled_vector_is_the_weighted_mean_of_unit_token_vectors():
    table = idf_pooling.fit(_keys([1], [1], [1, 2]))
    tokens = [numpy.array([[3.0, 0.0], [0.0, 0.5]]), numpy.zeros((0, 2))]
    X = idf_pooling.pooled(table, tokens, _keys([1, 2], []))
    w1, w2 = idf_pooling.weights(table, _keys([1, 2]))[0]
    numpy.testing.assert_allclose(X[0], [w1 / (w1 + w2), w2 / (w1 + w2)])
    numpy.testing.assert_allclose(X[1], [0.0, 0.0])  # a doc without tokens pools to zeros
    with pytest.raises(ValueError, match="2 token arrays for 1 docs"):
        idf_pooling.pooled(table, tokens, _keys([1]))


def _one_word_records(n, anomaly_rate, seed):
    """Docs of 8 common words and a full stop; an anomaly has one of them replaced by an unseen word."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(NORMAL_WORDS) for _ in range(8)]
        anomalous = rng.random() < anomaly_rate
        if anomalous:
            words[rng.randrange(8)] = rng.choice(ANOMALY_WORDS)
        out.append((" ".join(words) + " .", [], 1.0 if anomalous else 0.0))
    return out


def _fitted(pooling, egs):
    spacy.util.fix_random_seed(0)
    nlp = standalone_pipeline("one_class", detector="knn", n_neighbors=5, pooling=pooling)
    nlp.initialize(lambda: egs)
    return nlp


def test_idf_pooling_finds_one_unseen_word_that_the_mean_dilutes(tmp_path):
    egs = examples(standalone_pipeline(), _one_word_records(150, 0.0, seed=1), entities=False)
    test = _one_word_records(80, 0.5, seed=2)
    texts, gold = [t for t, _, _ in test], [g for _, _, g in test]
    nlp = _fitted("idf", egs)
    scores = [doc._.anomaly_score for doc in nlp.pipe(texts)]
    mean_scores = [doc._.anomaly_score for doc in _fitted("mean", egs).pipe(texts)]
    assert roc_auc(gold, scores) > 0.9
    assert roc_auc(gold, scores) > roc_auc(gold, mean_scores) + 0.05
    state = nlp.get_pipe("anomaly_scorer")._fitted.state
    assert set(idf_pooling.KEYS) <= set(state) and state["idf_keys"].dtype == numpy.uint64
    # saved and loaded: the same scores (the IDF table travels with the detector state)
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    numpy.testing.assert_allclose([d._.anomaly_score for d in loaded.pipe(texts)], scores)
    # explanations re-pool with the IDF weights: the explained scores are predict's, and the
    # passage holding the unseen word is the one pointed at
    pipe = nlp.get_pipe("anomaly_scorer")
    pipe.explain_settings["explain_method"] = "occlusion"
    two = ["server restarted deploy finished . backup ransomware cache warmed ."]
    explained = pipe.explain(list(nlp.pipe(two)))
    numpy.testing.assert_allclose(
        [d._.anomaly_score for d in explained], [d._.anomaly_score for d in nlp.pipe(two)]
    )
    assert "ransomware" in explained[0].spans["anomaly"][0].text


@pytest.mark.parametrize("name", ["knn", "doc_and_token_knn", "mahalanobis"])
def test_bad_pooling_is_refused_at_construction(name):
    with pytest.raises(ValueError, match="pooling must be one of"):
        detectors.make_detector(name, pooling="max")
    assert detectors.make_detector(name, pooling="idf").pooling == "idf"
    with pytest.raises(ValueError, match="pooling must be one of"):
        standalone_pipeline("one_class", detector=name, pooling="IDF")


def test_a_state_without_or_with_a_damaged_idf_table_is_refused():
    rng = numpy.random.RandomState(0)
    X = rng.normal(size=(20, 4))
    detector = detectors.make_detector("knn", n_neighbors=3, pooling="idf")
    state = detector.fit(X)  # the plain fit: no IDF table (FittedDetector adds it)
    with pytest.raises(ValueError, match='pooling = "idf"\\) state lacks'):
        detector.check_state(state, 4)
    state.update(idf_pooling.fit(_keys([3, 1], [2])))
    detector.check_state(state, 4)
    loaded = detectors.state_from_bytes(detectors.state_to_bytes(state), detector, 4)
    numpy.testing.assert_array_equal(loaded["idf_keys"], state["idf_keys"])
    for damage, match in (
        ({"idf_keys": state["idf_keys"][::-1].copy()}, "not sorted"),
        ({"idf_keys": state["idf_keys"].astype("int64")}, "expected uint64"),
        ({"idf_values": state["idf_values"][:1]}, "expected uint64"),
        ({"idf_values": -state["idf_values"]}, "must be positive"),
        ({"idf_unseen": numpy.asarray([2.0, 3.0])}, "scalar idf_unseen"),
    ):
        with pytest.raises(ValueError, match=match):
            detector.check_state(dict(state, **damage), 4)


def test_a_mean_pooled_pipeline_loaded_with_idf_pooling_is_refused(tmp_path):
    egs = examples(standalone_pipeline(), _one_word_records(40, 0.0, seed=3), entities=False)
    _fitted("mean", egs).to_disk(tmp_path / "pipe")
    with pytest.raises(ValueError, match="lacks"):
        spacy.load(
            tmp_path / "pipe",
            config={"components": {"anomaly_scorer": {"detector": {"pooling": "idf"}}}},
        )


def test_doc_and_token_knn_with_idf_pooling_explains_with_the_scores_it_predicts():
    egs = examples(standalone_pipeline(), _one_word_records(60, 0.0, seed=4), entities=False)
    spacy.util.fix_random_seed(0)
    nlp = standalone_pipeline(
        "one_class", detector="doc_and_token_knn", n_neighbors=3, token_neighbors=1, pooling="idf"
    )
    nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("anomaly_scorer")
    texts = [t for t, _, _ in _one_word_records(10, 0.5, seed=5)]
    scores = [d._.anomaly_score for d in nlp.pipe(texts)]
    pipe.explain_settings["explain_method"] = "tokens"
    explained = pipe.explain(list(nlp.pipe(texts)))
    numpy.testing.assert_allclose([d._.anomaly_score for d in explained], scores, rtol=1e-6)
    # the doc part reads the IDF-pooled vector: the same encoder with mean pooling scores otherwise
    spacy.util.fix_random_seed(0)
    mean = standalone_pipeline(
        "one_class", detector="doc_and_token_knn", n_neighbors=3, token_neighbors=1
    )
    mean.initialize(lambda: egs)
    assert not numpy.allclose([d._.anomaly_score for d in mean.pipe(texts)], scores)
