"""`nlp.replace_listeners` on our encoder: a component gets its own copy of ModernBERT.

Trained transformer + ner + textcat + anomaly_scorer pipeline on the tiny checkpoint; each
component in turn gets its own encoder, the pipeline is saved and loaded, and the component
is sourced into another pipeline: predictions stay the same everywhere.
"""

import random

import numpy
import pytest
import spacy
from spacy.training import Example

import spacy_modernbert.encoder.architecture  # noqa: F401  (registers Tok2VecModernBert.v1 before install)

TEXTS = [
    "Alice Smith moved to Paris in May .",
    "The server restarted after the backup .",
    "Bob met Carol in Berlin .",
]
LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
}
COMPONENTS = ("ner", "textcat", "anomaly_scorer")


def _train_data(nlp):
    rng = random.Random(0)
    data = []
    for i in range(24):
        name, city = rng.choice(["Alice", "Bob", "Carol"]), rng.choice(["Paris", "Berlin"])
        text = f"{name} went to {city} today ." if i % 2 else "The job finished at noon ."
        doc = nlp.make_doc(text)
        ents = (
            [(0, len(name), "PERSON"), (len(name) + 9, len(name) + 9 + len(city), "GPE")]
            if i % 2
            else []
        )
        cats = {"TRAVEL": float(i % 2), "OTHER": float(1 - i % 2), "ANOMALY": float(i % 6 == 0)}
        data.append(Example.from_dict(doc, {"entities": ents, "cats": cats}))
    return data


@pytest.fixture(scope="module")
def trained(shared_encoder_pipeline, tmp_path_factory):
    """A trained pipeline, saved: every head listens to the one encoder."""
    spacy.util.fix_random_seed(0)
    nlp = shared_encoder_pipeline()
    nlp.add_pipe(
        "textcat_multilabel",
        name="textcat",
        before="anomaly_scorer",
        config={
            "model": {
                "@architectures": "spacy.TextCatReduce.v1",
                "exclusive_classes": False,
                "use_reduce_first": False,
                "use_reduce_last": False,
                "use_reduce_max": False,
                "use_reduce_mean": True,
                "tok2vec": LISTENER,
            }
        },
    )
    # the textcat's own labels (inferred from the cats it would take ANOMALY too, which
    # anomaly_scorer refuses: shared_cats.py)
    nlp.config["initialize"]["components"]["textcat"] = {"labels": ["TRAVEL", "OTHER"]}
    data = _train_data(nlp)
    optimizer = nlp.initialize(lambda: data)
    for _ in range(3):
        nlp.update(data, sgd=optimizer)
    path = tmp_path_factory.mktemp("trained")
    nlp.to_disk(path)
    return path


def _outputs(nlp, name):
    docs = list(nlp.pipe(TEXTS))
    if name == "ner":
        return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]
    if name == "textcat":
        return numpy.asarray([[doc.cats[k] for k in ("TRAVEL", "OTHER")] for doc in docs])
    return numpy.asarray([doc._.anomaly_score for doc in docs])


def _same(a, b):
    if isinstance(a, list):
        assert a == b
    else:
        numpy.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("name", COMPONENTS)
def test_replace_listeners_saves_loads_and_sources(trained, tmp_path, name):
    nlp = spacy.load(trained)
    before = _outputs(nlp, name)
    nlp.replace_listeners("transformer", name, ["model.tok2vec"])
    assert name not in nlp.get_pipe("transformer").listening_components
    assert (
        nlp.config["components"][name]["model"]["tok2vec"]["@architectures"]
        == "spacy-modernbert.Tok2VecModernBert.v1"
    )
    _same(_outputs(nlp, name), before)
    nlp.to_disk(tmp_path / "own")
    loaded = spacy.load(tmp_path / "own")
    _same(_outputs(loaded, name), before)
    # sourced into a pipeline without the shared encoder: it brings its own
    other = spacy.blank("en")
    other.add_pipe(name, source=loaded)
    _same(_outputs(other, name), before)
    other.to_disk(tmp_path / "other")
    _same(_outputs(spacy.load(tmp_path / "other"), name), before)


def test_sourcing_with_replace_listeners_in_the_config(trained, tmp_path):
    """spaCy's config habit: [components.X] source = ..., replace_listeners = ["model.tok2vec"]."""
    config = spacy.blank("en").config
    config["components"] = {
        "anomaly_scorer": {"source": str(trained), "replace_listeners": ["model.tok2vec"]}
    }
    config["nlp"]["pipeline"] = ["anomaly_scorer"]
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    expected = _outputs(spacy.load(trained), "anomaly_scorer")
    _same(_outputs(nlp, "anomaly_scorer"), expected)
    nlp.to_disk(tmp_path / "sourced")
    _same(_outputs(spacy.load(tmp_path / "sourced"), "anomaly_scorer"), expected)


def test_tok2vec_architecture_takes_every_encoder_setting():
    """replace_listeners copies the transformer's settings into Tok2VecModernBert.v1: a setting
    added to ModernBertTransformer.v1 alone would make the rewritten config fail to load."""
    import inspect

    from spacy_modernbert.encoder.architecture import (
        modernbert_transformer_v1,
        tok2vec_modernbert_v1,
    )

    encoder = inspect.signature(modernbert_transformer_v1).parameters
    tok2vec = inspect.signature(tok2vec_modernbert_v1).parameters
    missing = [name for name in encoder if name not in tok2vec]
    assert not missing, f"Tok2VecModernBert.v1 lacks {missing}"
    for name, parameter in encoder.items():
        assert tok2vec[name].default == parameter.default, name
