"""The anomaly head: pool a doc's token vectors, then one raw score per doc.

`spacy-modernbert.AnomalyHead.v1` = tok2vec >> doc pooling >> anomaly output layer.

The output layer has two heads; the component selects one with `set_head_mode`
(its `mode` setting), so one architecture serves both modes:

* `"supervised"`: a logit `v . x + b` (the component applies a sigmoid).
* `"one_class"`: Deep-SVDD style, the mean squared distance `mean_j (W x - c)_j^2`
  of a bias-free projection `W x` to a fixed center `c`. `c` is a parameter of the
  layer (so it is serialized with the weights) that never receives a gradient: the
  optimizer leaves it alone. The component sets it in `initialize`.

Thinc/numpy only (no torch): this module is imported whenever a config names the
architecture. Everything goes through `model.ops`, so it runs on GPU arrays too.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain, glorot_uniform_init, zero_init
from thinc.types import Floats1d, Floats2d

POOLINGS = ("mean", "max")
MODES = ("supervised", "one_class")


@registry.architectures("spacy-modernbert.AnomalyHead.v1")
def build_anomaly_head(
    tok2vec: Model[List[Doc], List[Floats2d]],
    pooling: str = "mean",
    hidden_width: int = 64,
    nI: Optional[int] = None,
) -> Model[List[Doc], Floats2d]:
    """Build the anomaly head: tok2vec, pooling over each doc's tokens, one raw score per doc.

    tok2vec (Model[List[Doc], List[Floats2d]]): token vectors, typically a
        `spacy-transformers.TransformerListener.v1` or `spacy.Tok2VecListener.v1`.
    pooling (str): "mean" or "max" over the tokens of a doc; a doc without tokens pools to zeros.
    hidden_width (int): width of the one-class projection (unused in supervised mode).
    nI (Optional[int]): width of the token vectors; inferred from tok2vec or at initialization.
    RETURNS (Model[List[Doc], Floats2d]): raw scores of shape (n_docs, 1): a logit in
        supervised mode, a mean squared distance to the center in one-class mode.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"AnomalyHead.v1: pooling must be one of {POOLINGS}, got {pooling!r}")
    if hidden_width < 1:
        raise ValueError(
            f"AnomalyHead.v1: hidden_width must be a positive integer, got {hidden_width!r}"
        )
    if nI is None:
        nI = tok2vec.maybe_get_dim("nO")
    pool = doc_pooling(pooling)
    output_layer = anomaly_output(nP=hidden_width, nI=nI)
    model = chain(tok2vec, pool, output_layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("pooling_layer", pool)
    model.set_ref("output_layer", output_layer)
    model.attrs["pooling"] = pooling
    return model


def set_head_mode(model: Model, mode: str) -> None:
    """Select the head the output layer computes ("supervised" or "one_class")."""
    if mode not in MODES:
        raise ValueError(f"anomaly head mode must be one of {MODES}, got {mode!r}")
    output_layer = model.get_ref("output_layer") if model.has_ref("output_layer") else model
    output_layer.attrs["mode"] = mode


def get_center(model: Model) -> Floats1d:
    """The one-class center `c` (a copy, on the model's device)."""
    return model.get_ref("output_layer").get_param("c").copy()


def set_center(model: Model, center: Floats1d) -> None:
    """Set the one-class center `c` (shape (hidden_width,))."""
    layer = model.get_ref("output_layer")
    center = layer.ops.asarray1f(center)
    if center.shape != (layer.get_dim("nP"),):
        raise ValueError(
            f"one-class center must have shape ({layer.get_dim('nP')},), got {center.shape}"
        )
    layer.set_param("c", center)


def project(model: Model, pooled: Floats2d) -> Floats2d:
    """The bias-free one-class projection `W x` of pooled doc vectors (no gradient)."""
    layer = model.get_ref("output_layer")
    return layer.ops.gemm(layer.ops.asarray2f(pooled), layer.get_param("W"), trans2=True)


def head_begin_update(model: Model, docs: List[Doc]) -> Tuple[Floats2d, Callable]:
    """Raw scores of `docs` and their backprop; a batch with no token at all goes to the output layer.

    Such a batch has nothing to encode (thinc's layers cannot run or backprop 0 rows, and
    spaCy's own components skip it): every doc pools to the zero vector, so the output
    layer scores zeros and only the head learns from it. An empty doc thus gets the same
    score alone as inside a batch.
    """
    if any(len(doc) for doc in docs):
        return model.begin_update(docs)
    return model.get_ref("output_layer").begin_update(zero_pooled(model, len(docs)))


def head_predict(model: Model, docs: List[Doc]) -> Floats2d:
    """Raw scores of `docs` in prediction mode (see `head_begin_update` for a batch with no token)."""
    if any(len(doc) for doc in docs):
        return model.predict(docs)
    return model.get_ref("output_layer").predict(zero_pooled(model, len(docs)))


def pooled_docs(model: Model, docs: List[Doc]) -> Floats2d:
    """The pooled doc vectors (the output layer's input) in prediction mode."""
    if not any(len(doc) for doc in docs):
        return zero_pooled(model, len(docs))
    return model.get_ref("pooling_layer").predict(model.get_ref("tok2vec").predict(docs))


def doc_features(
    model: Model, docs: List[Doc], with_tokens: bool
) -> Tuple[Floats2d, Optional[List[Floats2d]]]:
    """The pooled doc vectors and, if `with_tokens`, each doc's token vectors (prediction mode;
    one tok2vec pass for both). A doc without tokens has a (0, width) token array."""
    if not with_tokens:
        return pooled_docs(model, docs), None
    if not any(len(doc) for doc in docs):
        width = model.get_ref("output_layer").get_dim("nI")
        return zero_pooled(model, len(docs)), [model.ops.alloc2f(0, width) for _ in docs]
    tokens = model.get_ref("tok2vec").predict(docs)
    return model.get_ref("pooling_layer").predict(tokens), tokens


def zero_pooled(model: Model, n_docs: int) -> Floats2d:
    """The pooled vectors of `n_docs` docs without tokens: zeros of the output layer's input width."""
    return model.ops.alloc2f(n_docs, model.get_ref("output_layer").get_dim("nI"))


# ---------------------------------------------------------------------------
# Pooling over each doc's tokens


def doc_pooling(pooling: str = "mean") -> Model[List[Floats2d], Floats2d]:
    """Mean or max over each doc's token vectors; a doc with no tokens pools to zeros."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return Model(f"anomaly_pool_{pooling}", _pool_forward, attrs={"pooling": pooling})


def _pool_forward(model: Model, Xs: List[Floats2d], is_train: bool) -> Tuple[Floats2d, Callable]:
    ops = model.ops
    n_docs = len(Xs)
    width = int(Xs[0].shape[1]) if n_docs else 0
    lengths = ops.asarray1i([int(X.shape[0]) for X in Xs]) if n_docs else ops.alloc1i(0)
    Xf = ops.flatten(Xs) if n_docs else ops.alloc2f(0, 0)
    if not n_docs or Xf.shape[0] == 0:
        # no tokens at all (thinc's reductions need at least one row): all docs pool to zeros

        def backprop_nothing(dY: Floats2d) -> List[Floats2d]:
            return [ops.alloc2f(0, width) for _ in Xs]

        return ops.alloc2f(n_docs, width), backprop_nothing
    if model.attrs["pooling"] == "mean":
        Y = ops.reduce_mean(Xf, lengths)

        def backprop_mean(dY: Floats2d) -> List[Floats2d]:
            return ops.unflatten(ops.backprop_reduce_mean(dY, lengths), lengths)

        return Y, backprop_mean
    # max: only over docs with tokens (thinc refuses empty sequences); empty docs stay zero
    nonempty = [i for i in range(n_docs) if int(Xs[i].shape[0]) > 0]
    Y = ops.alloc2f(n_docs, width)
    lengths_ne = ops.asarray1i([int(Xs[i].shape[0]) for i in nonempty])
    idx = ops.xp.asarray(nonempty, dtype="i")
    Y_ne, which = ops.reduce_max(Xf, lengths_ne)
    Y[idx] = Y_ne

    def backprop_max(dY: Floats2d) -> List[Floats2d]:
        dXf = ops.backprop_reduce_max(ops.xp.ascontiguousarray(dY[idx]), which, lengths_ne)
        return ops.unflatten(dXf, lengths)

    return Y, backprop_max


# ---------------------------------------------------------------------------
# Output layer: supervised logit or one-class squared distance


def anomaly_output(nP: int = 64, nI: Optional[int] = None) -> Model[Floats2d, Floats2d]:
    """Two heads over pooled doc vectors; `attrs["mode"]` selects which one runs."""
    return Model(
        "anomaly_output",
        _output_forward,
        init=_output_init,
        dims={"nI": nI, "nP": nP, "nO": 1},
        params={"v": None, "b": None, "W": None, "c": None},
        attrs={"mode": "supervised"},
    )


def _output_init(model: Model, X: Optional[Floats2d] = None, Y=None) -> None:
    if X is not None and X.ndim == 2 and X.shape[1]:
        model.set_dim("nI", int(X.shape[1]))
    nI, nP = model.get_dim("nI"), model.get_dim("nP")
    model.set_param("v", zero_init(model.ops, (1, nI)))
    model.set_param("b", zero_init(model.ops, (1,)))
    model.set_param("W", glorot_uniform_init(model.ops, (nP, nI)))
    model.set_param("c", zero_init(model.ops, (nP,)))


def _output_forward(model: Model, X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
    ops = model.ops
    mode = model.attrs["mode"]
    if mode == "supervised":
        v, b = model.get_param("v"), model.get_param("b")
        Y = ops.gemm(X, v, trans2=True) + b

        def backprop_supervised(dY: Floats2d) -> Floats2d:
            model.inc_grad("v", ops.gemm(dY, X, trans1=True))
            model.inc_grad("b", dY.sum(axis=0))
            return ops.gemm(dY, v)

        return Y, backprop_supervised
    if mode != "one_class":
        raise ValueError(f"anomaly head mode must be one of {MODES}, got {mode!r}")
    W, c = model.get_param("W"), model.get_param("c")
    nP = W.shape[0]
    D = ops.gemm(X, W, trans2=True) - c
    Y = (D * D).mean(axis=1, keepdims=True)

    def backprop_one_class(dY: Floats2d) -> Floats2d:
        dZ = D * (dY * (2.0 / nP))
        model.inc_grad("W", ops.gemm(dZ, X, trans1=True))
        return ops.gemm(dZ, W)

    return Y, backprop_one_class
