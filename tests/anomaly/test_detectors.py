"""One-class detectors (knn, mahalanobis): length robustness, fitting with the right encoder,
the memory bank's bound, serialization, refusals, calibration from unlabelled normal docs."""

import math

import numpy
import pytest
import spacy
from spacy.tokens import DocBin

from spacy_modernbert.anomaly import detectors, search
from spacy_modernbert.anomaly.calibration import calibrate_pipeline
from spacy_modernbert.anomaly.model import pooled_docs
from spacy_modernbert.anomaly.scoring import roc_auc

from .conftest import examples, make_records, shared_pipeline, standalone_pipeline, train

TEST_RECORDS = make_records(100, 0.2, seed=123)


def _scores(nlp, texts):
    return [doc._.anomaly_score for doc in nlp.pipe(texts)]


def _auc(nlp, records=TEST_RECORDS):
    return roc_auc([g for _, _, g in records], _scores(nlp, [t for t, _, _ in records]))


def _embeddings(nlp, texts):
    """The pooled embeddings the anomaly_scorer sees, recomputed with the pipeline's encoder."""
    pipe = nlp.get_pipe("anomaly_scorer")
    docs = list(nlp.pipe(texts))
    return numpy.asarray(pipe.model.ops.to_numpy(pooled_docs(pipe.model, docs)), dtype="float64")


def _token_vectors(nlp, texts):
    """All token vectors the anomaly_scorer sees (docs in order), recomputed with the pipeline's encoder."""
    pipe = nlp.get_pipe("anomaly_scorer")
    docs = list(nlp.pipe(texts))
    return numpy.concatenate(
        [pipe.model.ops.to_numpy(t) for t in pipe.model.get_ref("tok2vec").predict(docs)]
    )


# ---------------------------------------------------------------------------- numpy level


def test_normalized_embedding_ignores_the_norm_that_tracks_length():
    direction = numpy.random.RandomState(0).normal(size=16)
    # the same direction pooled over few or many tokens: only the norm differs
    Z = search.normalize(numpy.stack([3.0 * direction, 0.1 * direction, numpy.zeros(16)]))
    numpy.testing.assert_allclose(Z[0], Z[1], atol=1e-12)
    numpy.testing.assert_allclose(numpy.linalg.norm(Z[:2], axis=1), 1.0)
    assert not Z[2].any()  # an empty doc stays the zero vector (finite)


@pytest.mark.parametrize("name", ["knn", "mahalanobis"])
def test_detector_scores_far_points_higher_and_in_unit_interval(name):
    rng = numpy.random.RandomState(1)
    normal = rng.normal(size=(200, 8)) * 0.1 + numpy.eye(8)[rng.randint(0, 2, 200)]
    state = detectors.make_detector(name, n_neighbors=5).fit(normal)
    queries = numpy.concatenate([normal[:20], -normal[:20], numpy.zeros((1, 8))])
    raw = detectors.make_detector(name).raw_scores(state, queries)
    unit = detectors.unit_scores(state, raw)
    assert numpy.isfinite(unit).all() and (unit >= 0).all() and (unit <= 1).all()
    assert raw[20:40].min() > raw[:20].max()
    # the bank's own docs sit at the robust location: about sigmoid(-2)
    assert float(numpy.median(detectors.unit_scores(state, raw[:20]))) < 0.3


def test_knn_fit_statistics_are_leave_one_out():
    # Duplicated docs: without leave-one-out every doc would be its own neighbour (distance 0).
    rng = numpy.random.RandomState(2)
    X = rng.normal(size=(50, 6))
    state = detectors.make_detector("knn", n_neighbors=1).fit(X)
    assert float(state["location"]) > 0.05


def test_subsample_is_uniform_not_the_first_n():
    idx = search.subsample_indices(1000, 100, seed=0)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert idx.max() > 500 and list(idx) != list(range(100))
    assert list(search.subsample_indices(10, 100)) == list(range(10))


def test_state_round_trip_and_bad_states_refused():
    state = detectors.make_detector("knn", n_neighbors=3).fit(
        numpy.random.RandomState(3).normal(size=(30, 4))
    )
    loaded = detectors.state_from_bytes(
        detectors.state_to_bytes(state), detectors.make_detector("knn"), width=4
    )
    for key in state:
        numpy.testing.assert_array_equal(loaded[key], state[key])
    with pytest.raises(ValueError, match="width"):
        detectors.state_from_bytes(
            detectors.state_to_bytes(state), detectors.make_detector("knn"), width=5
        )
    with pytest.raises(ValueError, match="npz"):
        detectors.state_from_bytes(b"not an npz", detectors.make_detector("knn"))
    bad = dict(state, bank=numpy.full_like(state["bank"], numpy.nan))
    with pytest.raises(ValueError, match="non-finite"):
        detectors.state_from_bytes(detectors.state_to_bytes(bad), detectors.make_detector("knn"))
    with pytest.raises(ValueError, match="lacks"):
        detectors.state_from_bytes(
            detectors.state_to_bytes({k: v for k, v in state.items() if k != "bank"}),
            detectors.make_detector("knn"),
        )


def _token_docs(rng, n_docs, vocab, lengths=(3, 40), noise=0.02):
    """Docs as token-vector arrays: each token one of `vocab`'s directions plus a little noise."""
    docs = []
    for _ in range(n_docs):
        ids = rng.randint(0, len(vocab), rng.randint(*lengths))
        docs.append(vocab[ids] + noise * rng.normal(size=(len(ids), vocab.shape[1])))
    return docs


def _pooled(docs, width):
    return numpy.stack([d.mean(axis=0) if len(d) else numpy.zeros(width) for d in docs])


@pytest.mark.parametrize("name", ("doc_and_token_knn", "token_knn"))
def test_token_detectors_find_one_unseen_token_that_pooling_averages_away(name):
    rng = numpy.random.RandomState(4)
    vocab = rng.normal(size=(30, 16))
    normal = _token_docs(rng, 300, vocab)
    state = detectors.make_detector(
        name, n_neighbors=5, token_neighbors=3, token_bank_size=2000
    ).fit(_pooled(normal, 16), normal)
    assert state["token_bank"].shape == (2000, 16)
    queries = _token_docs(rng, 60, vocab, lengths=(30, 40))
    odd = [d.copy() for d in queries[:30]]
    for d in odd:  # one token in 30-40 becomes a direction no normal doc has
        d[5] = rng.normal(size=16) * 3
    docs = queries[30:] + odd + [numpy.zeros((0, 16))]
    raw = detectors.make_detector(name).raw_scores(state, _pooled(docs, 16), docs)
    assert raw[30:60].min() > raw[:30].max()
    unit = detectors.unit_scores(state, raw)
    assert numpy.isfinite(unit).all() and (unit >= 0).all() and (unit <= 1).all()
    # the pooled vector alone barely moves: one token of 30-40 is averaged away
    knn = detectors.make_detector("knn", n_neighbors=5).fit(_pooled(normal, 16))
    pooled_raw = detectors.make_detector("knn").raw_scores(knn, _pooled(docs, 16))
    assert (
        roc_auc([0] * 30 + [1] * 30, pooled_raw[:60]) < 0.9 < roc_auc([0] * 30 + [1] * 30, raw[:60])
    )


def test_token_score_is_a_mean_over_tokens_so_length_does_not_drive_it():
    from scipy.stats import spearmanr

    rng = numpy.random.RandomState(5)
    vocab = rng.normal(size=(40, 16))
    normal = _token_docs(rng, 300, vocab, lengths=(2, 80))
    for name in ("doc_and_token_knn", "token_knn"):
        state = detectors.make_detector(name, token_bank_size=3000).fit(_pooled(normal, 16), normal)
        queries = _token_docs(rng, 200, vocab, lengths=(2, 80))
        raw = detectors.make_detector(name).raw_scores(state, _pooled(queries, 16), queries)
        assert abs(spearmanr(raw, [len(q) for q in queries]).correlation) < 0.3, name


def _noisy_docs(rng, n_docs, vocab, lengths):
    """Token docs whose noise level varies from doc to doc (so their mean distance varies too)."""
    return [
        d + rng.uniform(0.0, 0.6) * rng.normal(size=d.shape)
        for d in _token_docs(rng, n_docs, vocab, lengths)
    ]


@pytest.mark.parametrize("name", ("doc_and_token_knn", "token_knn"))
def test_top_k_tokens_finds_one_hidden_passage_that_the_mean_dilutes(name):
    rng = numpy.random.RandomState(11)
    vocab = rng.normal(size=(30, 16))
    normal = _noisy_docs(rng, 300, vocab, (60, 80))
    queries = _noisy_docs(rng, 80, vocab, (60, 80))
    for d in queries[40:]:  # a passage of 4 tokens no normal doc has, among 60-80 normal ones
        d[10:14] = rng.normal(size=(4, 16)) * 3
    gold = [0] * 40 + [1] * 40
    auc = {}
    for top_k in (0, 4):
        det = detectors.make_detector(name, token_bank_size=4000, top_k_tokens=top_k)
        state = det.fit(_pooled(normal, 16), normal)
        auc[top_k] = roc_auc(gold, det.raw_scores(state, _pooled(queries, 16), queries))
    assert auc[0] < 0.85 and auc[4] > 0.95, auc


def test_top_k_tokens_removes_its_length_trend():
    from scipy.stats import spearmanr

    rng = numpy.random.RandomState(12)
    vocab = rng.normal(size=(40, 16))
    normal = _token_docs(rng, 400, vocab, (2, 80), noise=0.3)
    queries = _token_docs(rng, 200, vocab, (2, 80), noise=0.3)
    lengths = [len(q) for q in queries]
    det = detectors.make_detector("token_knn", token_bank_size=4000, top_k_tokens=5)
    state = det.fit(_pooled(normal, 16), normal)
    assert float(state["length_slope"]) > 0 and int(state["top_k_tokens"]) == 5
    loaded = detectors.state_from_bytes(detectors.state_to_bytes(state), det, width=16)
    raw = det.raw_scores(loaded, _pooled(queries, 16), queries)
    trended = det.raw_scores(
        dict(loaded, length_slope=numpy.asarray(0.0)), _pooled(queries, 16), queries
    )
    assert abs(spearmanr(raw, lengths).correlation) < 0.2
    assert abs(spearmanr(trended, lengths).correlation) > 0.4


def test_token_fit_statistics_leave_the_doc_s_own_tokens_out():
    # Every doc has its own token directions: a doc's nearest tokens would be its own (distance 0).
    rng = numpy.random.RandomState(6)
    docs = [numpy.repeat(rng.normal(size=(2, 8)), 3, axis=0) for _ in range(40)]
    state = detectors.make_detector("token_knn", token_neighbors=1).fit(_pooled(docs, 8), docs)
    assert float(state["location"]) > 0.2


def test_token_bank_is_a_seeded_subsample_of_all_tokens_not_the_first_n():
    rng = numpy.random.RandomState(7)
    docs = [rng.normal(size=(10, 4)) for _ in range(50)]
    state = detectors.make_detector("token_knn", token_bank_size=100).fit(_pooled(docs, 4), docs)
    everything = search.normalize(numpy.concatenate(docs)).astype("float32")
    rows = [int(numpy.abs(everything - row).max(axis=1).argmin()) for row in state["token_bank"]]
    assert len(set(rows)) == 100 and max(rows) >= 400
    again = detectors.make_detector("token_knn", token_bank_size=100).fit(_pooled(docs, 4), docs)
    numpy.testing.assert_array_equal(again["token_bank"], state["token_bank"])


def test_token_detector_refuses_missing_or_empty_token_vectors():
    X = numpy.random.RandomState(8).normal(size=(5, 4))
    with pytest.raises(ValueError, match="token vectors of each"):
        detectors.make_detector("token_knn").fit(X)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        detectors.make_detector("token_knn").fit(X, [numpy.zeros((0, 4))] * 5)
    with pytest.raises(ValueError, match="non-finite token"):
        detectors.make_detector("token_knn").fit(X, [numpy.full((2, 4), numpy.nan)] * 5)


def test_doc_and_token_state_round_trip_and_bad_states_refused():
    rng = numpy.random.RandomState(9)
    docs = [rng.normal(size=(rng.randint(1, 9), 4)) for _ in range(30)]
    state = detectors.make_detector("doc_and_token_knn").fit(_pooled(docs, 4), docs)
    loaded = detectors.state_from_bytes(
        detectors.state_to_bytes(state), detectors.make_detector("doc_and_token_knn"), width=4
    )
    assert set(loaded) == set(state)
    for key in state:
        numpy.testing.assert_array_equal(loaded[key], state[key])
    for bad, message in (
        (dict(state, token_bank=state["token_bank"][:, :3]), "token_bank"),
        (dict(state, token_scale=numpy.asarray(0.0)), "token_scale"),
        ({k: v for k, v in state.items() if k != "token_bank"}, "lacks"),
    ):
        with pytest.raises(ValueError, match=message):
            detectors.state_from_bytes(
                detectors.state_to_bytes(bad), detectors.make_detector("doc_and_token_knn"), width=4
            )


# ---------------------------------------------------------------------------- component


@pytest.mark.parametrize("detector", detectors.EMBEDDING_DETECTORS)
def test_one_class_detector_learns_without_anomaly_labels(seeded, detector):
    nlp = shared_pipeline("one_class", detector=detector, n_neighbors=5)
    normal = make_records(120, 0.0, seed=0)
    _, history = train(nlp, examples(nlp, normal, anomaly_labels=False), epochs=2)
    assert all(h["anomaly_scorer"] == 0.0 for h in history)  # fitted, not trained
    assert _auc(nlp) > 0.9
    scores = _scores(nlp, ["", "x", " ".join(["restarted"] * 5000), TEST_RECORDS[0][0]])
    assert all(isinstance(s, float) and math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)


def test_detector_is_refit_after_the_encoder_changed(seeded):
    nlp = shared_pipeline("one_class")
    records = make_records(60, 0.0, seed=1)
    egs = examples(nlp, records, anomaly_labels=False)
    optimizer = nlp.initialize(lambda: egs)
    pipe = nlp.get_pipe("anomaly_scorer")
    bank_at_init = pipe._fitted.state["bank"].copy()
    train(nlp, egs, epochs=2, optimizer=optimizer)  # ner trains the shared tok2vec
    assert pipe._fitted.encoder_changed
    nlp("Alice reported deploy finished today .")  # the next prediction re-fits
    assert not pipe._fitted.encoder_changed
    texts = [t for t, _, _ in records]
    X = _embeddings(nlp, texts)
    expected = search.normalize(X)
    numpy.testing.assert_allclose(pipe._fitted.state["bank"], expected, atol=1e-5)
    assert not numpy.allclose(bank_at_init, expected, atol=1e-3)  # the encoder did change


def test_null_detector_is_the_measured_default_and_a_named_block_keeps_its_own(seeded):
    """`detector = null` fits DocAndTokenKnnDetector with DEFAULT_DETECTOR_SETTINGS (k5 tk1,
    the best mean validation AUC of BENCHMARKS.md's one-class protocols); a config naming the
    function without settings gets the function's defaults (k10 tk3); the state stores them."""
    records = make_records(40, 0.0, seed=3)
    fitted = {}
    for key, settings in (("null", {}), ("named", {"detector": detectors.DEFAULT_DETECTOR})):
        nlp = standalone_pipeline("one_class", **settings)
        nlp.initialize(lambda nlp=nlp: examples(nlp, records, anomaly_labels=False))
        fitted[key] = nlp.get_pipe("anomaly_scorer")._fitted.state
    assert detectors.DEFAULT_DETECTOR_SETTINGS == {"n_neighbors": 5, "token_neighbors": 1}
    assert int(fitted["null"]["n_neighbors"]) == 5
    assert int(fitted["null"]["token_neighbors"]) == 1
    assert int(fitted["named"]["n_neighbors"]) == 10
    assert int(fitted["named"]["token_neighbors"]) == 3


def test_memory_bank_is_a_seeded_subsample_when_too_big(seeded):
    records = make_records(80, 0.0, seed=2)
    texts = [t for t, _, _ in records]
    nlp = standalone_pipeline("one_class", memory_bank_size=20)
    nlp.initialize(lambda: examples(nlp, records, anomaly_labels=False))
    bank = nlp.get_pipe("anomaly_scorer")._fitted.state["bank"]
    assert bank.shape[0] == 20
    X = _embeddings(nlp, texts)
    rows = []
    for row in bank:  # each bank row is one training doc's embedding
        dist = numpy.abs(search.normalize(X) - row).max(axis=1)
        assert dist.min() < 1e-5
        rows.append(int(dist.argmin()))
    assert max(rows) >= 40  # not the first 20 docs


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"detector": "isolation_forest"}, "detector"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"memory_bank_size": 1}, "memory_bank_size"),
        ({"token_neighbors": 0}, "token_neighbors"),
        ({"token_bank_size": 1.5}, "token_bank_size"),
        ({"top_k_tokens": -1}, "top_k_tokens"),
    ],
)
def test_bad_detector_settings_are_refused(settings, message):
    with pytest.raises(Exception, match=message):
        standalone_pipeline("one_class", **settings)


def test_one_class_without_normal_docs_stops_with_what_to_do():
    nlp = standalone_pipeline("one_class")
    anomalies = examples(nlp, make_records(10, 1.0, seed=3))
    with pytest.raises(ValueError, match="no normal training document.*supervised"):
        nlp.initialize(lambda: anomalies)
    with pytest.raises(ValueError, match="training corpus is empty"):
        nlp.initialize(lambda: [])


def test_unfitted_detector_says_how_to_fit():
    nlp = standalone_pipeline("one_class")
    nlp.initialize(lambda: examples(nlp, make_records(10, 0.0, seed=4)))
    pipe = nlp.get_pipe("anomaly_scorer")
    pipe._fitted.state = None
    with pytest.raises(ValueError, match="fit_detector"):
        nlp("Alice reported deploy finished today .")


def test_threshold_from_unlabelled_normal_docs(seeded):
    nlp = standalone_pipeline("one_class")
    train(nlp, examples(nlp, make_records(80, 0.0, seed=5), anomaly_labels=False), epochs=1)
    dev = examples(nlp, make_records(100, 0.0, seed=6), anomaly_labels=False)
    result = calibrate_pipeline(
        nlp, dev, method="target_fpr", target_fpr=0.1, unlabelled_as_normal=True
    )
    assert result.n_anomalous == 0 and result.n_docs == 100 and result.fpr <= 0.1
    flagged = [doc._.is_anomaly for doc in nlp.pipe([eg.reference.text for eg in dev])]
    assert 0 < sum(flagged) <= 10
    with pytest.raises(ValueError, match="labelled"):  # without the switch there is nothing to use
        calibrate_pipeline(nlp, dev, method="target_fpr")


# ---------------------------------------------------------------------------- spacy train


def test_spacy_train_saves_detector_fitted_with_its_own_encoder(tmp_path):
    """model-best and model-last hold a memory bank computed with their own encoder weights."""
    from spacy.cli.train import train as spacy_train

    nlp = shared_pipeline(
        "one_class", token_bank_size=200
    )  # fewer than the docs' tokens: a subsample
    records = make_records(60, 0.0, seed=7)
    for name, recs in (("train", records), ("dev", make_records(30, 0.3, seed=8))):
        db = DocBin()
        for eg in examples(nlp, recs, anomaly_labels=name == "dev"):
            db.add(eg.reference)
        db.to_disk(tmp_path / f"{name}.spacy")
    config = nlp.config.copy()
    config["paths"]["train"] = str(tmp_path / "train.spacy")
    config["paths"]["dev"] = str(tmp_path / "dev.spacy")
    config["corpora"] = {
        "train": {"@readers": "spacy.Corpus.v1", "path": "${paths.train}"},
        "dev": {"@readers": "spacy.Corpus.v1", "path": "${paths.dev}"},
    }
    config["training"].update({"max_steps": 24, "eval_frequency": 8, "max_epochs": 0, "seed": 0})
    config["training"]["score_weights"] = {"anomaly_auc": 0.5, "ents_f": 0.5}
    config.to_disk(tmp_path / "config.cfg")
    spacy_train(tmp_path / "config.cfg", tmp_path / "out", use_gpu=-1)
    texts = [t for t, _, _ in records]
    for which in ("model-best", "model-last"):
        loaded = spacy.load(tmp_path / "out" / which)
        state = loaded.get_pipe("anomaly_scorer")._fitted.state
        X = _embeddings(loaded, texts)
        numpy.testing.assert_allclose(state["bank"], search.normalize(X), atol=1e-5)
        # the token bank: the same seeded subsample of the recomputed token vectors
        tokens = _token_vectors(loaded, texts)
        keep = search.subsample_indices(
            len(tokens), loaded.get_pipe("anomaly_scorer").detector.token_bank_size, 0
        )
        numpy.testing.assert_allclose(
            state["token_bank"], search.normalize(tokens[keep]), atol=1e-5
        )


# ---------------------------------------------------------------------------- registry


class CentroidDetector(detectors.EmbeddingDetector):
    """A user's detector: cosine distance to the mean normalized embedding."""

    name = "centroid"
    required = ("center",)
    vectors = "center"

    def fit_raw(self, X, tokens, seed):
        Z = search.normalize(X)
        state = {"center": Z.mean(axis=0)}
        return state, self.raw_scores(state, X)

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        return 1.0 - search.normalize(X, xp) @ xp.asarray(state["center"])


@spacy.util.registry.anomaly_detectors("test.CentroidDetector.v1")
def centroid_detector(memory_bank_size: int = 100) -> CentroidDetector:
    return CentroidDetector(memory_bank_size)


def test_a_registered_user_detector_fits_scores_saves_and_loads(seeded, tmp_path):
    nlp = standalone_pipeline(
        "one_class",
        detector={"@anomaly_detectors": "test.CentroidDetector.v1", "memory_bank_size": 50},
    )
    train(nlp, examples(nlp, make_records(80, 0.0, seed=11), anomaly_labels=False), epochs=1)
    pipe = nlp.get_pipe("anomaly_scorer")
    assert isinstance(pipe.detector, CentroidDetector) and pipe.cfg["detector"] == "centroid"
    assert set(pipe._fitted.state) == {"center", "location", "scale"}
    assert _auc(nlp) > 0.55  # better than chance: the user's scores reach doc.cats
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    texts = [t for t, _, _ in TEST_RECORDS]
    assert [d._.anomaly_score for d in loaded.pipe(texts)] == [
        d._.anomaly_score for d in nlp.pipe(texts)
    ]
    assert (
        nlp.config["components"]["anomaly_scorer"]["detector"]["@anomaly_detectors"]
        == "test.CentroidDetector.v1"
    )


def test_detector_settings_appear_only_where_they_apply():
    with pytest.raises(Exception, match="n_neighbors"):  # mahalanobis has no n_neighbors
        standalone_pipeline(
            "one_class",
            detector={"@anomaly_detectors": detectors.DETECTORS["mahalanobis"], "n_neighbors": 3},
        )
    with pytest.raises(ValueError, match="one_class.* only"):  # supervised has no detector
        standalone_pipeline("supervised", detector="knn")
    assert (
        standalone_pipeline("supervised").config["components"]["anomaly_scorer"]["detector"] is None
    )


def test_unit_scores_keep_the_order_of_far_documents():
    # z-scores of hundreds (a small scale): a plain sigmoid gives 1.0 to all of them, tied
    state = {"location": numpy.asarray(0.0), "scale": numpy.asarray(0.01)}
    raw = numpy.asarray([0.0, 0.02, 0.1, 1.0, 2.0, 5.0, 50.0])
    unit = detectors.unit_scores(state, raw)
    assert (numpy.diff(unit) > 0).all() and (unit < 1.0).all()
    # below the knee the score is the plain sigmoid: 0.5 at two robust deviations
    assert unit[1] == pytest.approx(0.5) and unit[0] == pytest.approx(1 / (1 + math.exp(2)))
