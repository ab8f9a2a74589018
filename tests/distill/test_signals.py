"""The distillation losses: token-vector distance (gradient checked numerically) and soft anomaly targets."""

import numpy
import pytest
import spacy
from spacy.training import Example
from thinc.api import Linear

from spacy_modernbert.anomaly.loss import SOFT_TARGETS, truths_and_mask
from spacy_modernbert.distill.hidden import DistillHidden, read_vectors, store_vectors


def _example(nlp, target):
    doc = nlp.make_doc("one two three")
    ref = nlp.make_doc("one two three")
    if target is not None:
        store_vectors(ref, target)
    return Example(doc, ref)


@pytest.mark.parametrize("kind", ["mse", "cosine"])
def test_hidden_loss_gradient_matches_finite_differences(kind):
    nlp = spacy.blank("en")
    rng = numpy.random.default_rng(0)
    target = rng.normal(size=(3, 4)).astype("float16").astype("float32")
    guess = rng.normal(size=(3, 4)).astype("float32")
    pipe = DistillHidden(nlp.vocab, Linear(4, 4), "distill_hidden", loss=kind, weight=2.0)
    examples = [_example(nlp, target), _example(nlp, None)]
    loss, grads = pipe.get_loss(examples, [guess, guess])
    assert loss > 0
    assert not grads[1].any()  # a doc without teacher vectors gives no gradient
    eps = 1e-3
    for index in [(0, 0), (1, 2), (2, 3)]:
        up, down = guess.copy(), guess.copy()
        up[index] += eps
        down[index] -= eps
        numeric = (
            pipe.get_loss(examples[:1], [up])[0] - pipe.get_loss(examples[:1], [down])[0]
        ) / (2 * eps)
        assert grads[0][index] == pytest.approx(numeric, rel=1e-2, abs=1e-3)
    same, _ = pipe.get_loss(examples[:1], [target])
    assert same == pytest.approx(0.0, abs=1e-5)


def test_vectors_round_trip_as_float16():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("a b")
    store_vectors(doc, numpy.array([[0.5, -1.0], [2.0, 0.25]], dtype="float32"))
    assert read_vectors(doc).tolist() == [[0.5, -1.0], [2.0, 0.25]]
    assert read_vectors(nlp.make_doc("a")) is None


def test_soft_anomaly_targets_replace_the_label():
    nlp = spacy.blank("en")
    soft = Example.from_dict(nlp.make_doc("x"), {"cats": {"ANOMALY": 1.0}})
    soft.reference.user_data[SOFT_TARGETS] = {"ANOMALY": 0.3}
    unlabelled = Example(nlp.make_doc("y"), nlp.make_doc("y"))
    unlabelled.reference.user_data[SOFT_TARGETS] = {"ANOMALY": 0.9}
    truths, mask = truths_and_mask(
        [soft, unlabelled],
        "ANOMALY",
        "a",
        one_class=False,
        unlabelled_as_normal=False,
        trained=True,
    )
    assert truths.tolist() == pytest.approx([0.3, 0.9]) and mask.tolist() == [1.0, 1.0]
    bad = Example(nlp.make_doc("z"), nlp.make_doc("z"))
    bad.reference.user_data[SOFT_TARGETS] = {"ANOMALY": 1.5}
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        truths_and_mask(
            [bad], "ANOMALY", "a", one_class=False, unlabelled_as_normal=False, trained=True
        )


def test_textcat_teacher_gives_soft_cats_and_gold_docs_keep_their_labels(
    tiny_checkpoint, transformer_config
):
    from spacy_modernbert.distill.teacher import available_signals, teach

    teacher = spacy.blank("en")
    teacher.add_pipe("transformer", config=transformer_config(tiny_checkpoint, max_length=64))
    listener = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "pooling": {"@layers": "reduce_mean.v1"},
    }
    teacher.add_pipe(
        "textcat",
        config={
            "model": {
                "@architectures": "spacy.TextCatReduce.v1",
                "tok2vec": listener,
                "exclusive_classes": True,
                "use_reduce_first": False,
                "use_reduce_last": False,
                "use_reduce_max": False,
                "use_reduce_mean": True,
            }
        },
    )
    examples = [
        Example.from_dict(teacher.make_doc(t), {"cats": {"A": float(a), "B": float(not a)}})
        for t, a in [("good morning", True), ("server down", False)]
    ]
    teacher.initialize(lambda: examples)
    assert available_signals(teacher) == ["hidden", "textcat"]
    student = spacy.blank("en")
    [silver] = teach(teacher, [student.make_doc("server is down again")], ["hidden", "textcat"])
    said = teacher("server is down again")
    assert silver.cats == pytest.approx({k: said.cats[k] for k in ("A", "B")}, abs=1e-5)
    assert 0.0 < silver.cats["A"] < 1.0
    gold = student.make_doc("good morning")
    gold.cats = {"A": 1.0, "B": 0.0}
    [kept] = teach(teacher, [gold], ["hidden"], gold=True)
    assert kept.cats == {"A": 1.0, "B": 0.0}
    assert read_vectors(kept).shape == (2, 64)
