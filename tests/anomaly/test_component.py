"""anomaly_scorer: config, both modes learning, partial labels, listener contract, edge inputs, serialization."""

import math
import subprocess
import sys

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_modernbert.anomaly.component import AnomalyScorer
from spacy_modernbert.anomaly.model import get_center
from spacy_modernbert.anomaly.scoring import roc_auc

from .conftest import (
    LABEL,
    anomaly_config,
    examples,
    make_records,
    shared_pipeline,
    standalone_pipeline,
    train,
)

TEST_RECORDS = make_records(100, 0.2, seed=123)


def _auc(nlp, records=TEST_RECORDS):
    docs = list(nlp.pipe([text for text, _, _ in records]))
    return roc_auc([gold for _, _, gold in records], [doc._.anomaly_score for doc in docs])


def _scores(nlp, texts):
    return [doc._.anomaly_score for doc in nlp.pipe(texts)]


def _tok2vec_weights(nlp):
    model = nlp.get_pipe("tok2vec").model
    return [
        model.ops.to_numpy(node.get_param(name)).copy()
        for node in model.walk()
        for name in node.param_names
        if node.has_param(name)
    ]


# ---------------------------------------------------------------------------- config


def test_factory_defaults():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("anomaly_scorer")
    assert isinstance(pipe, AnomalyScorer)
    config = nlp.config["components"]["anomaly_scorer"]
    assert config["label"] == "ANOMALY"
    assert config["mode"] == "supervised"
    assert config["threshold"] == 0.5
    assert config["unlabelled_as_normal"] is None
    assert config["pos_weight"] is None
    assert config["scorer"] == {"@scorers": "spacy-modernbert.anomaly_scorer.v1"}
    assert config["model"]["@architectures"] == "spacy-modernbert.AnomalyHead.v1"
    assert config["model"]["pooling"] == "mean"
    assert pipe.cfg["unlabelled_as_normal"] is False  # resolved: supervised
    assert pipe.labels == ("ANOMALY",)
    assert nlp.config["training"]["score_weights"]["anomaly_auc"] == 1.0
    assert Doc.has_extension("anomaly_score") and Doc.has_extension("is_anomaly")


def test_one_class_treats_unlabelled_as_normal_by_default():
    nlp = standalone_pipeline("one_class")
    assert nlp.get_pipe("anomaly_scorer").cfg["unlabelled_as_normal"] is True
    nlp = standalone_pipeline("one_class", unlabelled_as_normal=False)
    assert nlp.get_pipe("anomaly_scorer").cfg["unlabelled_as_normal"] is False


def test_extensions_idempotent_and_not_forced():
    # A second component (and a second pipeline) must not re-register or clobber values.
    nlp = standalone_pipeline()
    nlp.add_pipe("anomaly_scorer", name="second", config=anomaly_config(label="OTHER"))
    doc = nlp.make_doc("x")
    doc._.anomaly_score = 0.25
    standalone_pipeline()
    assert doc._.anomaly_score == 0.25


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "isolation_forest"}, "mode"),
        ({"threshold": float("nan")}, "threshold"),
        ({"pos_weight": -1.0}, "pos_weight"),
        ({"label": ""}, "label"),
        ({"model": {"pooling": "median"}}, "pooling"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    nlp = spacy.blank("en")
    settings = dict(settings)
    mode = settings.pop("mode", "supervised")
    with pytest.raises(Exception, match=message):
        nlp.add_pipe("anomaly_scorer", config=anomaly_config(mode, **settings))


# ---------------------------------------------------------------------------- learning


def test_supervised_learns_separable_toy_set(seeded):
    nlp = shared_pipeline("supervised")
    train_records = make_records(120, 0.1, seed=0)
    _, history = train(nlp, examples(nlp, train_records), epochs=8)
    pipe = nlp.get_pipe("anomaly_scorer")
    n_pos = sum(gold for _, _, gold in train_records)
    assert pipe.cfg["pos_weight"] == pytest.approx((len(train_records) - n_pos) / n_pos)
    assert _auc(nlp) > 0.9
    docs = list(nlp.pipe([text for text, _, _ in TEST_RECORDS]))
    for doc in docs:
        assert doc.cats[LABEL] == doc._.anomaly_score
        assert doc._.is_anomaly == (doc._.anomaly_score >= pipe.threshold)
    # the 0.5 threshold already separates most of the toy test set
    flagged = numpy.array([doc._.is_anomaly for doc in docs])
    gold = numpy.array([g == 1.0 for _, _, g in TEST_RECORDS])
    assert (flagged == gold).mean() > 0.8


def test_one_class_learns_without_anomaly_labels(seeded):
    # Training data: normal docs only, no doc.cats at all (unlabelled counts as normal).
    nlp = shared_pipeline("one_class", detector="svdd")
    train_records = make_records(120, 0.0, seed=0)
    _, history = train(nlp, examples(nlp, train_records, anomaly_labels=False), epochs=8)
    pipe = nlp.get_pipe("anomaly_scorer")
    assert pipe.cfg["n_train_anomalous"] == 0 and pipe.cfg["n_train_unlabelled"] == 120
    assert pipe.cfg["one_class_location"] > 0 and pipe.cfg["one_class_scale"] > 0
    assert history[-1]["anomaly_scorer"] < history[0]["anomaly_scorer"]
    assert _auc(nlp) > 0.8


def test_one_class_ignores_anomalies_in_loss_and_refits_statistics(seeded):
    nlp = standalone_pipeline("one_class", detector="svdd")
    train_records = make_records(80, 0.2, seed=1)
    train(nlp, examples(nlp, train_records), epochs=6)
    pipe = nlp.get_pipe("anomaly_scorer")
    assert _auc(nlp) > 0.8
    normal_docs = list(nlp.pipe([t for t, _, g in train_records if g == 0.0]))
    location, scale = pipe.fit_one_class_statistics(normal_docs)
    assert pipe.cfg["one_class_location"] == location and pipe.cfg["one_class_scale"] == scale
    # after refitting, the median normal doc sits at z = 0, i.e. score sigmoid(-2)
    median = float(numpy.median(_scores(nlp, [d.text for d in normal_docs])))
    assert median == pytest.approx(1 / (1 + math.exp(2.0)), abs=0.02)
    with pytest.raises(ValueError, match="one_class"):
        standalone_pipeline("supervised").get_pipe("anomaly_scorer").fit_one_class_statistics(
            normal_docs
        )


# ---------------------------------------------------------------------------- partial labels, bad labels


@pytest.mark.parametrize("mode", ["supervised", "one_class"])
def test_partial_annotation_gives_no_loss_or_gradient(seeded, mode):
    nlp = standalone_pipeline(
        mode, unlabelled_as_normal=False, **({"detector": "svdd"} if mode == "one_class" else {})
    )
    records = make_records(40, 0.3, seed=2)
    nlp.initialize(lambda: examples(nlp, records))
    pipe = nlp.get_pipe("anomaly_scorer")
    labelled = examples(nlp, records[:10])
    unlabelled = examples(nlp, records[10:20], anomaly_labels=False)
    mixed = labelled + unlabelled
    raw = pipe.model.predict([eg.predicted for eg in mixed])
    loss_mixed, d_mixed = pipe.get_loss(mixed, raw)
    loss_labelled, d_labelled = pipe.get_loss(labelled, raw[:10])
    assert loss_mixed == pytest.approx(loss_labelled, rel=1e-6)
    numpy.testing.assert_allclose(d_mixed[:10], d_labelled, rtol=1e-6)
    assert not numpy.any(d_mixed[10:])
    if mode == "one_class":  # docs labelled 1.0 never pull towards the center
        anomalous = [i for i, (_, _, g) in enumerate(records[:10]) if g == 1.0]
        assert anomalous and not numpy.any(d_mixed[anomalous])
    # a batch without any label: zero loss, zero gradient on the head
    losses = nlp.update(unlabelled, sgd=None)
    assert losses["anomaly_scorer"] == 0.0
    head = pipe.model.get_ref("output_layer")
    for name in head.param_names:
        if head.has_grad(name):
            assert not numpy.any(head.get_grad(name))


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_labels_outside_0_1_raise_clear_errors(bad):
    nlp = standalone_pipeline()
    records = make_records(6, 0.5, seed=3)
    good = examples(nlp, records)
    bad_eg = Example.from_dict(nlp.make_doc("A very odd document ."), {"cats": {LABEL: bad}})
    with pytest.raises(ValueError) as err:
        nlp.initialize(lambda: good + [bad_eg])
    assert (
        LABEL in str(err.value)
        and "A very odd document" in str(err.value)
        and str(bad) in str(err.value)
    )
    optimizer = nlp.initialize(lambda: good)
    with pytest.raises(ValueError, match="A very odd document"):
        nlp.update(good[:2] + [bad_eg], sgd=optimizer)


def test_supervised_warns_without_any_anomaly_label():
    nlp = standalone_pipeline("supervised")
    with pytest.warns(UserWarning, match="one_class"):
        nlp.initialize(lambda: examples(nlp, make_records(10, 0.0, seed=4)))
    assert nlp.get_pipe("anomaly_scorer").cfg["pos_weight"] == 1.0


def test_explicit_pos_weight_is_kept():
    nlp = standalone_pipeline("supervised", pos_weight=7.5)
    nlp.initialize(lambda: examples(nlp, make_records(20, 0.2, seed=5)))
    assert nlp.get_pipe("anomaly_scorer").cfg["pos_weight"] == 7.5


# ---------------------------------------------------------------------------- shared encoder


def _ner_only_step_changes_tok2vec(early_return: bool):
    spacy.util.fix_random_seed(0)
    nlp = shared_pipeline("supervised")
    assert nlp.pipe_names[-1] == "anomaly_scorer"
    pipe = nlp.get_pipe("anomaly_scorer")
    assert nlp.get_pipe("tok2vec").listeners[-1] is pipe.model.get_ref("tok2vec")
    records = make_records(30, 0.2, seed=6)
    optimizer = nlp.initialize(lambda: examples(nlp, records))
    ner_only = examples(nlp, records[:8], anomaly_labels=False)
    if early_return:  # the bug: returning before the backprop when there is no label

        def update(examples, *, drop=0.0, sgd=None, losses=None):
            losses = {} if losses is None else losses
            losses.setdefault(pipe.name, 0.0)
            return losses

        pipe.update = update
    before = _tok2vec_weights(nlp)
    losses = nlp.update(ner_only, sgd=optimizer)
    assert losses["ner"] > 0 and losses["anomaly_scorer"] == 0.0
    # Language.update calls each component's finish_update right after its own update, so
    # the tok2vec applies this batch's gradient at the next step: apply it now.
    nlp.get_pipe("tok2vec").finish_update(optimizer)
    after = _tok2vec_weights(nlp)
    return any(not numpy.array_equal(a, b) for a, b in zip(before, after))


def test_update_without_anomaly_labels_still_updates_shared_tok2vec():
    """The listener contract: anomaly_scorer is the LAST listener, so its backprop runs the
    tok2vec backprop for ner too. A batch with entities but no anomaly label must still
    change the tok2vec weights."""
    assert _ner_only_step_changes_tok2vec(early_return=False)
    # Control: an update that returns before calling the backprop loses the ner update.
    assert not _ner_only_step_changes_tok2vec(early_return=True)


def test_ner_and_anomaly_train_together(seeded):
    nlp = shared_pipeline("supervised")
    records = make_records(120, 0.1, seed=7)
    _, history = train(nlp, examples(nlp, records), epochs=8)
    assert all(h["ner"] > 0 or i > 0 for i, h in enumerate(history))
    assert all("anomaly_scorer" in h and "ner" in h for h in history)
    first, last = history[0], history[-1]
    assert last["ner"] < first["ner"] * 0.5
    assert last["anomaly_scorer"] < first["anomaly_scorer"]
    doc = nlp("Alice reported breach stolen rootkit deploy cache today .")
    assert [(e.text, e.label_) for e in doc.ents] == [("Alice", "PERSON")]
    assert _auc(nlp) > 0.9


# ---------------------------------------------------------------------------- edge inputs


@pytest.mark.parametrize(
    "mode", ["supervised", "one_class:svdd", "one_class:knn", "one_class:mahalanobis"]
)
@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_scores_finite_for_empty_and_very_long_docs(seeded, mode, pooling):
    mode, _, detector = mode.partition(":")
    nlp = standalone_pipeline(
        mode, model={"pooling": pooling}, **({"detector": detector} if detector else {})
    )
    train(nlp, examples(nlp, make_records(30, 0.2, seed=8)), epochs=2)
    long_text = " ".join(f"host{i % 17} restarted" for i in range(10000))
    texts = ["", "   ", "\n", "x", long_text, TEST_RECORDS[0][0]]
    alone = []
    for text in texts:
        doc = nlp(text)
        score = doc._.anomaly_score
        assert isinstance(score, float) and math.isfinite(score) and 0.0 <= score <= 1.0, (
            text[:20],
            score,
        )
        assert isinstance(doc._.is_anomaly, bool)
        alone.append(score)
    assert len(nlp.make_doc(long_text)) == 20000
    batched = _scores(nlp, texts)
    assert batched == pytest.approx(alone, abs=1e-6)
    # a batch of empty docs only (knn: float32 matrix products round differently per batch shape)
    assert _scores(nlp, ["", ""]) == pytest.approx([alone[0], alone[0]], abs=1e-6)


def test_predict_handles_no_docs_and_empty_batches(seeded):
    nlp = standalone_pipeline()
    records = make_records(10, 0.3, seed=9)
    optimizer = nlp.initialize(lambda: examples(nlp, records))
    pipe = nlp.get_pipe("anomaly_scorer")
    assert pipe.predict([]).shape == (0,)
    assert list(nlp.pipe([])) == []
    empty = [
        Example.from_dict(nlp.make_doc(""), {"cats": {LABEL: 1.0}}),
        Example.from_dict(nlp.make_doc(""), {}),
    ]
    losses = nlp.update(empty, sgd=optimizer)
    assert math.isfinite(losses["anomaly_scorer"])


# ---------------------------------------------------------------------------- serialization


@pytest.mark.parametrize(
    "mode", ["supervised", "one_class:svdd", "one_class:knn", "one_class:mahalanobis"]
)
def test_round_trip_keeps_scores_threshold_and_statistics(seeded, mode, tmp_path):
    mode, _, detector = mode.partition(":")
    nlp = standalone_pipeline(mode, **({"detector": detector} if detector else {}))
    train(nlp, examples(nlp, make_records(40, 0.2, seed=10)), epochs=3)
    pipe = nlp.get_pipe("anomaly_scorer")
    pipe.set_threshold(0.3125)
    texts = [t for t, _, _ in TEST_RECORDS[:20]] + [""]
    expected = _scores(nlp, texts)

    # to_bytes / from_bytes into a fresh, untrained pipeline built from the same config
    restored = spacy.blank("en").from_config(nlp.config)
    restored.from_bytes(nlp.to_bytes())
    assert restored.get_pipe("anomaly_scorer").cfg == pipe.cfg
    assert _scores(restored, texts) == expected

    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    loaded_pipe = loaded.get_pipe("anomaly_scorer")
    assert loaded_pipe.cfg == pipe.cfg
    assert loaded_pipe.threshold == 0.3125
    assert _scores(loaded, texts) == expected
    if detector == "svdd":
        assert loaded_pipe.cfg["one_class_location"] is not None
        numpy.testing.assert_array_equal(get_center(loaded_pipe.model), get_center(pipe.model))
    # flags follow the stored threshold
    assert [d._.is_anomaly for d in loaded.pipe(texts)] == [s >= 0.3125 for s in expected]


# ---------------------------------------------------------------------------- spacy evaluate


def test_spacy_evaluate_reports_anomaly_metrics(seeded, tmp_path):
    nlp = shared_pipeline("supervised")
    train(nlp, examples(nlp, make_records(60, 0.2, seed=11)), epochs=4)
    nlp.to_disk(tmp_path / "pipeline")
    dev = DocBin(store_user_data=True)
    for text, ents, gold in make_records(30, 0.3, seed=12):
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=lab) for s, e, lab in ents]
        doc.cats = {LABEL: gold}
        dev.add(doc)
    dev.to_disk(tmp_path / "dev.spacy")

    def evaluate(*extra):
        cmd = [
            sys.executable,
            "-m",
            "spacy",
            "evaluate",
            str(tmp_path / "pipeline"),
            str(tmp_path / "dev.spacy"),
            *extra,
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    # The results table of `spacy evaluate` lists built-in metrics only; the anomaly results
    # appear in its per-label tables, and every anomaly_* metric in --per-component output.
    out = evaluate("--output", str(tmp_path / "metrics.json"))
    assert "Textcat F (per label)" in out and "Textcat ROC AUC (per label)" in out and LABEL in out
    assert "NER F" in out
    metrics = srsly.read_json(tmp_path / "metrics.json")
    assert set(metrics["cats_f_per_type"][LABEL]) == {"p", "r", "f"}
    assert 0.0 <= metrics["cats_auc_per_type"][LABEL] <= 1.0

    evaluate("--output", str(tmp_path / "per_component.json"), "--per-component")
    per_component = srsly.read_json(tmp_path / "per_component.json")["anomaly_scorer"]
    for key in ("anomaly_auc", "anomaly_ap", "anomaly_p", "anomaly_r", "anomaly_f"):
        assert key in per_component and 0.0 <= per_component[key] <= 1.0
    assert per_component["anomaly_auc"] == pytest.approx(metrics["cats_auc_per_type"][LABEL])
