"""`doc.vector`, `span.vector`, `token.vector` and `.similarity` from the encoder.

`spacy-modernbert.DocVectors.v1` is an annotation setter of the `transformer` component
(`[components.transformer.set_extra_annotations]`): after each batch it sets `doc.tensor` to
the token vectors (the encoder's pieces averaged per spaCy token, exactly what a
`TransformerListener` with `reduce_mean` gives the heads) and installs user hooks so that
`doc.vector` / `span.vector` pool those rows ("mean", the default and the pooling of the
one-class detectors, or "max"; both length-invariant) and `.similarity` is their cosine,
without the "no word vectors" warning. `token.vector` is the token's row.

Why an annotation setter and not a component: it needs the encoder's output of the same
batch, which the transformer component hands to exactly this callback. The hooks are plain
functions (picklable); a doc sent between processes keeps `doc.tensor`, whose mean is what
spaCy's own `doc.vector` falls back to. This module imports nothing heavy at import time.
"""

from functools import partial
from typing import Any, Callable, List

import catalogue
import numpy
from spacy.tokens import Doc, Span, Token

POOLINGS = ("mean", "max")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(
            f"spacy-modernbert.DocVectors.v1: pooling must be one of {POOLINGS}, got {pooling!r}"
        )
    return pooling


def pool_rows(rows: numpy.ndarray, pooling: str, width: int) -> numpy.ndarray:
    """The pooled vector of token rows (zeros of `width` for no row)."""
    if not len(rows):
        return numpy.zeros((width,), dtype="float32")
    return rows.max(axis=0) if pooling == "max" else rows.mean(axis=0)


def cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    """Cosine similarity; 0.0 when either vector is zero."""
    na, nb = float(numpy.linalg.norm(a)), float(numpy.linalg.norm(b))
    return float(numpy.dot(a, b) / (na * nb)) if na and nb else 0.0


def _doc_vector(pooling: str, doc: Doc) -> numpy.ndarray:
    return pool_rows(doc.tensor, pooling, _width(doc))


def _span_vector(pooling: str, span: Span) -> numpy.ndarray:
    return pool_rows(span.doc.tensor[span.start : span.end], pooling, _width(span.doc))


def _token_vector(token: Token) -> numpy.ndarray:
    return token.doc.tensor[token.i]


def _width(doc: Doc) -> int:
    return int(doc.tensor.shape[1]) if doc.tensor.ndim == 2 else 0


def _similarity(obj: Any, other: Any) -> float:
    return cosine(obj.vector, other.vector)


def _has_vector(obj: Any) -> bool:
    return True


def token_vectors(docs: List[Doc]) -> List[numpy.ndarray]:
    """Each doc's token vectors (float32 numpy, (n_tokens, width)) from its `doc._.trf_data`,
    aligned as a `TransformerListener` with `reduce_mean` aligns them."""
    from spacy_transformers.layers import trfs2arrays
    from thinc.api import reduce_mean

    layer = trfs2arrays(reduce_mean(), 1.0)
    arrays = layer.predict([doc._.trf_data for doc in docs])
    return [numpy.asarray(layer.ops.to_numpy(a), dtype="float32") for a in arrays]


def set_doc_vectors(docs: List[Doc], pooling: str = "mean") -> None:
    """Set `doc.tensor` and the vector/similarity hooks of docs the encoder has processed."""
    for doc, rows in zip(docs, token_vectors(docs)):
        doc.tensor = rows.reshape(len(doc), -1) if len(doc) else rows.reshape(0, -1)
        doc.user_hooks["vector"] = partial(_doc_vector, pooling)
        doc.user_hooks["similarity"] = _similarity
        doc.user_hooks["has_vector"] = _has_vector
        doc.user_span_hooks["vector"] = partial(_span_vector, pooling)
        doc.user_span_hooks["similarity"] = _similarity
        doc.user_span_hooks["has_vector"] = _has_vector
        doc.user_token_hooks["vector"] = _token_vector
        doc.user_token_hooks["similarity"] = _similarity
        doc.user_token_hooks["has_vector"] = _has_vector


def doc_vector(doc: Doc, pooling: str = "mean") -> numpy.ndarray:
    """The doc's pooled encoder vector (float32): from `doc.tensor` when a setter filled it,
    else from `doc._.trf_data` (a pipeline without `DocVectors.v1`)."""
    check_pooling(pooling)
    if doc.tensor.size:
        return numpy.asarray(pool_rows(doc.tensor, pooling, _width(doc)), dtype="float32")
    if not Doc.has_extension("trf_data") or doc._.trf_data is None:
        raise ValueError(
            "no encoder output on this doc: run it through a pipeline with a `transformer` component "
            "(doc._.trf_data) or set [components.transformer.set_extra_annotations] to "
            '@annotation_setters = "spacy-modernbert.DocVectors.v1"'
        )
    return numpy.asarray(pool_rows(token_vectors([doc])[0], pooling, 0), dtype="float32")


def doc_vectors(pooling: str = "mean") -> Callable[[List[Doc], Any], None]:
    """The annotation setter: `doc.tensor` and vector hooks after each transformer batch.

    pooling (str): "mean" (default) or "max" over a doc's or span's token vectors.
    """
    check_pooling(pooling)

    def set_annotations(docs: List[Doc], trf_data: Any) -> None:
        set_doc_vectors(docs, pooling)

    return set_annotations


# spacy-transformers' registry of annotation setters (catalogue namespace
# ("spacy", "annotation_setters")), without importing spacy-transformers: registering here
# makes the name resolvable once this module is imported; the `spacy_annotation_setters`
# entry point (setup.cfg) makes it resolvable without.
SETTERS = catalogue.Registry(("spacy", "annotation_setters"), entry_points=True)
SETTERS.register("spacy-modernbert.DocVectors.v1", func=doc_vectors)
