"""doc.vector, span.vector, token.vector and similarity from the encoder (vectors.py)."""

import warnings

import numpy
import pytest
import spacy

from spacy_modernbert import vectors

SETTER = {"@annotation_setters": "spacy-modernbert.DocVectors.v1"}


def make_nlp(tiny_checkpoint, transformer_config, **setter):
    nlp = spacy.blank("en")
    config = transformer_config(tiny_checkpoint)
    config["set_extra_annotations"] = {**SETTER, **setter}
    nlp.add_pipe("transformer", config=config)
    nlp.initialize()
    return nlp


@pytest.fixture(scope="module")
def nlp(tiny_checkpoint, transformer_config):
    return make_nlp(tiny_checkpoint, transformer_config)


def test_vectors_and_similarity_come_from_the_encoder(nlp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no word vectors loaded" warning
        a = nlp("The server restarted after the backup.")
        b = nlp("The disk was cleaned.")
        assert a.has_vector and a[1].has_vector and a[0:2].has_vector
        sim = a.similarity(b)
        assert -1.0 <= sim <= 1.0 and a.similarity(a) == pytest.approx(1.0, abs=1e-5)
        assert a[0:3].similarity(b) == pytest.approx(
            vectors.cosine(a[0:3].vector, b.vector), abs=1e-6
        )
        assert a[1].similarity(b[1]) == pytest.approx(vectors.cosine(a[1].vector, b[1].vector))
    width = a.tensor.shape[1]
    assert a.tensor.shape == (len(a), width) and a.vector.shape == (width,)
    # mean pooling of the listener's token vectors
    numpy.testing.assert_allclose(a.vector, a.tensor.mean(axis=0), rtol=1e-6)
    numpy.testing.assert_allclose(a[2:4].vector, a.tensor[2:4].mean(axis=0), rtol=1e-6)
    numpy.testing.assert_allclose(a[3].vector, a.tensor[3])
    numpy.testing.assert_allclose(vectors.doc_vector(a), a.vector, rtol=1e-6)


def test_same_vector_alone_and_in_a_batch(nlp):
    texts = ["Backup completed.", "A much longer report about the cache being warmed twice."]
    batch = list(nlp.pipe(texts))
    for text, doc in zip(texts, batch):
        numpy.testing.assert_allclose(nlp(text).vector, doc.vector, atol=1e-5)
    assert not numpy.allclose(batch[0].vector, batch[1].vector)


def test_max_pooling_and_a_bad_pooling(tiny_checkpoint, transformer_config):
    nlp = make_nlp(tiny_checkpoint, transformer_config, pooling="max")
    doc = nlp("Disk full again today.")
    numpy.testing.assert_allclose(doc.vector, doc.tensor.max(axis=0))
    with pytest.raises(ValueError, match="pooling must be one of"):
        vectors.doc_vectors(pooling="cls")


def test_saved_and_reloaded_pipeline_gives_the_same_vectors(nlp, tmp_path):
    doc = nlp("The server restarted after the backup.")
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    numpy.testing.assert_allclose(loaded(doc.text).vector, doc.vector, atol=1e-5)


def test_doc_vector_without_the_setter(tiny_checkpoint, transformer_config, nlp):
    plain = spacy.blank("en")
    plain.add_pipe("transformer", config=transformer_config(tiny_checkpoint))
    plain.initialize()
    doc = plain("The server restarted after the backup.")
    assert doc.tensor.size == 0
    with_setter = nlp("The server restarted after the backup.")
    numpy.testing.assert_allclose(vectors.doc_vector(doc), with_setter.vector, atol=1e-5)
    with pytest.raises(ValueError, match="DocVectors.v1"):
        vectors.doc_vector(spacy.blank("en")("no encoder here"))
