"""IntentConfidenceDetector.v1, the shared doc.cats refusal and intent_acc."""

import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import NumpyOps

from spacy_modernbert.anomaly import detectors
from spacy_modernbert.anomaly.intent_confidence import IntentConfidenceDetector, renyi_entropy
from spacy_modernbert.intent_metrics import intent_scores

CONFIDENT = [0.97, 0.02, 0.01]
UNSURE = [0.4, 0.35, 0.25]


def test_renyi_entropy_limits():
    P = numpy.asarray([UNSURE])
    shannon = -(P * numpy.log(P)).sum()
    assert renyi_entropy(P, 1.0)[0] == pytest.approx(shannon)
    assert renyi_entropy(P, 1.0 + 1e-6)[0] == pytest.approx(shannon, rel=1e-4)
    assert renyi_entropy(P, 200.0)[0] == pytest.approx(-numpy.log(0.4), rel=0.02)
    uniform = numpy.full((1, 4), 0.25)
    assert renyi_entropy(uniform, 2.0)[0] == pytest.approx(numpy.log(4))


@pytest.mark.parametrize("score", ["energy", "max_prob"])
def test_unsure_docs_score_higher_and_state_round_trips(score):
    detector = IntentConfidenceDetector(score=score, temperature=0.5)
    rng = numpy.random.default_rng(0)
    fit = numpy.asarray([sorted(rng.dirichlet([0.1] * 3), reverse=True) for _ in range(50)])
    state = detector.fit(fit)
    scores = detector.scores(state, numpy.asarray([CONFIDENT, UNSURE]))
    assert 0.0 <= scores[0] < scores[1] <= 1.0
    loaded = detectors.state_from_bytes(detectors.state_to_bytes(state), detector, width=64)
    assert numpy.allclose(detector.scores(loaded, numpy.asarray([UNSURE])), scores[1])
    with pytest.raises(ValueError, match="fitted on 3 classes"):
        detector.scores(state, numpy.asarray([[0.5, 0.5]]))


def test_energy_sees_more_than_the_top_class():
    """Same top probability, different spread: max_prob ties, energy does not."""
    peaked, spread = [0.5, 0.5, 0.0, 0.0], [0.5, 0.2, 0.2, 0.1]
    state = {"mean_probs": numpy.full(4, 0.25), "temperature": numpy.asarray(0.5)}
    X = numpy.asarray([peaked, spread])
    max_prob = IntentConfidenceDetector(score="max_prob").raw_scores(state, X)
    energy = IntentConfidenceDetector(score="energy").raw_scores(state, X)
    assert max_prob[0] == pytest.approx(max_prob[1])
    assert energy[0] < energy[1]


def test_bad_settings_and_docs_without_cats():
    with pytest.raises(ValueError, match="score must be one of"):
        IntentConfidenceDetector(score="softmax")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        IntentConfidenceDetector(temperature=0)
    nlp = spacy.blank("en")
    detector = IntentConfidenceDetector()
    detector.bind_label("OOS")
    doc = nlp("hello")
    doc.cats = {"OOS": 0.9}
    with pytest.raises(ValueError, match="put a textcat"):
        detector.doc_features(_Ops(), [doc])


class _Ops:
    """A stand-in for the component's model: only its ops are read."""

    ops = NumpyOps()


def test_features_are_sorted_probabilities_without_the_anomaly_label():
    nlp = spacy.blank("en")
    detector = IntentConfidenceDetector()
    doc = nlp("hello")
    doc.cats = {"a": 0.1, "ANOMALY": 0.99, "b": 0.7, "c": 0.2}
    X = detector.doc_features(_Ops(), [doc])
    assert numpy.allclose(X, [[0.7, 0.2, 0.1]])


def _examples(nlp, anomaly_label="ANOMALY"):
    egs = []
    for text, intent in [("set an alarm", "alarm"), ("weather today", "weather"), ("joke", None)]:
        doc = nlp.make_doc(text)
        doc.cats = {anomaly_label: 1.0} if intent is None else {intent: 1.0, anomaly_label: 0.0}
        egs.append(Example(nlp.make_doc(text), doc))
    return egs


def test_anomaly_label_shared_with_a_textcat_is_refused():
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat")
    nlp.add_pipe("anomaly_scorer")
    for label in ("alarm", "weather", "ANOMALY"):
        textcat.add_label(label)
    egs = _examples(nlp)
    with pytest.raises(ValueError, match="also a label of 'textcat'"):
        nlp.initialize(lambda: egs)


def test_textcat_with_its_own_labels_trains_beside_anomaly_scorer():
    nlp = spacy.blank("en")
    textcat = nlp.add_pipe("textcat")
    nlp.add_pipe("anomaly_scorer")
    egs = _examples(nlp)
    # inferred from the docs, the textcat's labels would include ANOMALY: given, they do not
    nlp.config["initialize"]["components"]["textcat"] = {"labels": ["alarm", "weather"]}
    nlp.initialize(lambda: egs)
    assert textcat.labels == ("alarm", "weather")
    losses = nlp.update(egs)
    assert set(losses) == {"textcat", "anomaly_scorer"}
    doc = nlp("set an alarm")
    assert set(doc.cats) == {"alarm", "weather", "ANOMALY"}


def test_intent_acc_counts_in_scope_docs_only():
    nlp = spacy.blank("en")
    egs = _examples(nlp)
    egs[0].predicted.cats = {"alarm": 0.8, "weather": 0.2, "ANOMALY": 0.1}
    egs[1].predicted.cats = {"alarm": 0.6, "weather": 0.4, "ANOMALY": 0.9}
    egs[2].predicted.cats = {"alarm": 0.5, "weather": 0.5, "ANOMALY": 0.9}
    assert intent_scores(egs, "ANOMALY") == {"intent_acc": 0.5, "intent_n": 2}
    assert intent_scores(egs[2:], "ANOMALY") == {"intent_acc": None, "intent_n": 0}
