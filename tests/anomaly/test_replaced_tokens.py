"""The replaced_tokens detector (replaced_tokens.py): corrupted copies are seeded and keep the
docs' whitespace, the head fitted on them ranks corrupted and foreign docs above normal ones,
its state round-trips and is refused when damaged, and bad settings are refused clearly."""

import numpy
import pytest
import spacy

from spacy_modernbert.anomaly import detectors
from spacy_modernbert.anomaly.replaced_tokens import (
    ReplacedTokensDetector,
    corrupt_docs,
    corrupt_words,
)
from spacy_modernbert.anomaly.scoring import roc_auc

from .conftest import (
    ANOMALY_WORDS,
    examples,
    make_records,
    standalone_pipeline,
    tok2vec_config,
)

# A wider random tok2vec than the other tests': a linear head reads context from it better.
WIDE = 256

CONFIG = {"@anomaly_detectors": "spacy-modernbert.ReplacedTokensDetector.v1"}


def test_corruption_is_seeded_replaces_from_the_docs_words_and_keeps_whitespace():
    docs = [f"w{i} w{i + 1} w{i + 2} , w{i + 3}".split() for i in range(200)]
    words, masks = corrupt_words(docs, 0.3, seed=4)
    vocab = {w for d in docs for w in d}
    flat = numpy.concatenate(masks)
    assert 0.2 < flat.mean() < 0.4, flat.mean()
    for old, new, mask in zip(docs, words, masks):
        assert len(new) == len(old) == len(mask)
        assert all((o != n) == bool(m) for o, n, m in zip(old, new, mask))
        assert set(new) <= vocab
    again, again_masks = corrupt_words(docs, 0.3, seed=4)
    assert again == words and all((a == b).all() for a, b in zip(again_masks, masks))
    assert corrupt_words(docs, 0.3, seed=5)[0] != words
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Hello ,  world! again")
    (copy,), (mask,) = corrupt_docs([doc] * 1, 0.99, seed=0)
    assert [bool(t.whitespace_) for t in copy] == [bool(t.whitespace_) for t in doc]
    assert len(copy) == len(doc) and mask.shape == (len(doc),)


SLOTS = [
    "Alice Bob Carol Dave Erin".split(),
    "restarted deployed patched rebooted upgraded".split(),
    ["the"],
    "server cluster database cache gateway".split(),
    "at in near behind".split(),
    "Berlin Paris Oslo Rome Madrid".split(),
    ["."],
]


def grammar_texts(n, seed):
    """Normal text with structure: each position draws from its own word class."""
    rng = numpy.random.RandomState(seed)
    return [" ".join(slot[rng.randint(len(slot))] for slot in SLOTS) for _ in range(n)]


def _pipeline():
    nlp = standalone_pipeline(
        "one_class",
        detector=dict(CONFIG, replace_rate=0.2),
        tok2vec=dict(tok2vec_config(), width=WIDE),
    )
    egs = examples(nlp, [(t, [], 0.0) for t in grammar_texts(200, seed=0)], entities=False)
    nlp.initialize(lambda: egs)
    return nlp


def test_detector_ranks_corrupted_and_foreign_docs_above_normal_ones(seeded):
    nlp = _pipeline()
    normal = grammar_texts(60, seed=1)
    corrupted, masks = corrupt_docs([nlp.make_doc(t) for t in normal], 0.4, seed=9)
    foreign = [
        " ".join(numpy.random.RandomState(i).permutation(ANOMALY_WORDS)[:6]) for i in range(30)
    ]
    s_normal = [d._.anomaly_score for d in nlp.pipe(normal)]
    s_corrupted = [d._.anomaly_score for d in nlp.pipe(d.text for d in corrupted)]
    s_foreign = [d._.anomaly_score for d in nlp.pipe(foreign)]
    gold = [0] * len(s_normal)
    assert roc_auc(gold + [1] * len(s_corrupted), s_normal + s_corrupted) > 0.8
    assert roc_auc(gold + [1] * len(s_foreign), s_normal + s_foreign) > 0.8
    # explanations by token (the detector's token logits) keep the doc scores predict gives,
    # and point at the replaced words of a corrupted doc more often than not
    pipe = nlp.get_pipe("anomaly_scorer")
    explained = pipe.explain(list(nlp.pipe(d.text for d in corrupted)))
    numpy.testing.assert_allclose([d._.anomaly_score for d in explained], s_corrupted, rtol=1e-6)
    hits = [
        float(numpy.mean([m[s.start : s.end].max() for s in list(doc.spans["anomaly"])[:1]]))
        for doc, m in zip(explained, masks)
        if m.any() and len(doc.spans["anomaly"])
    ]
    assert len(hits) > 20 and numpy.mean(hits) > 0.5, numpy.mean(hits)


def test_state_round_trips_and_a_loaded_pipeline_cannot_refit(tmp_path, seeded):
    nlp = _pipeline()
    texts = [t for t, _, _ in make_records(20, 0.3, seed=3)]
    before = [d._.anomaly_score for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert [d._.anomaly_score for d in loaded.pipe(texts)] == pytest.approx(before)
    pipe = loaded.get_pipe("anomaly_scorer")
    with pytest.raises(ValueError, match="corrupted copies of the normal docs.*nlp.initialize"):
        pipe.fit_detector(list(loaded.pipe(texts)))
    # in the process that initialized it, fit_detector refits (corrupting the new docs)
    state = nlp.get_pipe("anomaly_scorer").fit_detector(list(nlp.pipe(texts * 3)))
    assert state["rtd_weights"].shape == (WIDE,)


def test_damaged_state_is_refused(seeded):
    detector = ReplacedTokensDetector()
    state = _pipeline().get_pipe("anomaly_scorer")._fitted.state
    detector.check_state(state, WIDE)
    for damaged, match in (
        ({k: v for k, v in state.items() if k != "rtd_bias"}, "lacks \\['rtd_bias'\\]"),
        (dict(state, rtd_weights=state["rtd_weights"][None, :]), "rtd_weights of shape"),
        (dict(state, rtd_weights=state["rtd_weights"] * numpy.nan), "non-finite"),
        (dict(state, rtd_bias=numpy.zeros(2)), "rtd_bias of shape"),
    ):
        with pytest.raises(ValueError, match=match):
            detector.check_state(damaged, WIDE)
    with pytest.raises(ValueError, match=f"width {WIDE}, the model gives 16"):
        detector.check_state(state, 16)
    data = detectors.state_to_bytes(state)
    with pytest.raises(ValueError, match="not a valid .npz"):
        detectors.state_from_bytes(data[:40], detector, WIDE)


@pytest.mark.parametrize(
    "settings,match",
    [
        (dict(replace_rate=0.0), "replace_rate must be a number between 0 and 1"),
        (dict(replace_rate=1.0), "replace_rate"),
        (dict(replace_rate=True), "replace_rate"),
        (dict(replace_rate="0.1"), "replace_rate"),
        (dict(top_k_tokens=-1), "top_k_tokens must be an integer >= 0"),
        (dict(memory_bank_size=1), "memory_bank_size must be an integer >= 2"),
    ],
)
def test_bad_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        standalone_pipeline("one_class", detector=dict(CONFIG, **settings))


def test_fit_without_corrupted_copies_or_with_mismatched_ones_is_refused():
    detector = ReplacedTokensDetector()
    X = numpy.ones((3, 4))
    tokens = [numpy.ones((2, 4))] * 3
    with pytest.raises(ValueError, match="fitted on corrupted copies"):
        detector.fit(X, tokens)
    with pytest.raises(ValueError, match="differ in number"):
        detector.fit(X, tokens, corrupted=(tokens, [numpy.zeros(3)] * 3))
    with pytest.raises(ValueError, match="both replaced and original"):
        detector.fit(X, tokens, corrupted=(tokens, [numpy.zeros(2)] * 3))


def test_top_k_removes_the_length_trend_of_normal_docs():
    rng = numpy.random.RandomState(0)
    lengths = rng.randint(2, 40, size=300)
    tokens = [rng.normal(size=(n, 8)) for n in lengths]
    masks = [(rng.random_sample(n) < 0.3).astype("float32") for n in lengths]
    corrupted = [t + 2.0 * m[:, None] * numpy.eye(8)[0] for t, m in zip(tokens, masks)]
    X = numpy.stack([t.mean(0) for t in tokens])
    from scipy.stats import spearmanr

    plain = ReplacedTokensDetector(top_k_tokens=0).fit(X, tokens, corrupted=(corrupted, masks))
    top = ReplacedTokensDetector(top_k_tokens=3)
    state = top.fit(X, tokens, corrupted=(corrupted, masks))
    assert float(state["length_slope"]) > 0  # the top-3 of more tokens is larger
    assert abs(spearmanr(top.raw_scores(state, X, tokens), lengths).correlation) < 0.2
    assert (
        abs(spearmanr(ReplacedTokensDetector().raw_scores(plain, X, tokens), lengths).correlation)
        < 0.2
    )
    # the head found the replaced direction
    assert state["rtd_weights"][0] > 3 * numpy.abs(state["rtd_weights"][1:]).max()


def test_detrend_length_removes_a_length_trend_of_the_mean():
    from scipy.stats import spearmanr

    rng = numpy.random.RandomState(1)
    lengths = rng.randint(2, 40, size=300)
    shift = numpy.eye(8)[1]
    # the token vectors of short normal docs lean towards the replaced direction (as on SMS)
    tokens = [rng.normal(size=(n, 8)) + (3.0 / n) * numpy.eye(8)[0] + shift for n in lengths]
    masks = [(rng.random_sample(n) < 0.3).astype("float32") for n in lengths]
    corrupted = [t + 2.0 * m[:, None] * numpy.eye(8)[0] for t, m in zip(tokens, masks)]
    X = numpy.stack([t.mean(0) for t in tokens])
    scores = {}
    for detrend in (False, True):
        detector = ReplacedTokensDetector(detrend_length=detrend)
        state = detector.fit(X, tokens, corrupted=(corrupted, masks))
        assert ("length_slope" in state) == detrend
        scores[detrend] = detector.raw_scores(state, X, tokens)
    assert abs(spearmanr(scores[False], lengths).correlation) > 0.4
    assert abs(spearmanr(scores[True], lengths).correlation) < 0.2
    with pytest.raises(ValueError, match="detrend_length must be true or false"):
        ReplacedTokensDetector(detrend_length="yes")
