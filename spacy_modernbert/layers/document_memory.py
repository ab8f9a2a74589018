"""`spacy-modernbert.DocumentMemory.v1`: each token's vector beside the mean of its word's vectors
in the doc (pooled document memory, Akbik et al. 2019, "Pooled Contextualized Embeddings for NER").

Why: names repeat inside a document ("Mr. Smith ... Smith said"), and the occurrence with the
cue tells the one without it what it is. Reading neighbouring sentences through the encoder's
attention (`sentence_context`) did not help the small pretrained checkpoint of issue 33: it
barely attends across sentences (benchmarks/results/context_mlm.json). This layer needs no
attention across sentences: it wraps a tok2vec (normally the `TransformerListener` of a head)
and gives each token [v_t ; mean of v over the doc's tokens with the same key], where the key
is the token's lowercase form (`key="lower"`, default) or its exact form (`key="orth"`).

    [components.ner.model.tok2vec]
    @architectures = "spacy-modernbert.DocumentMemory.v1"
    key = "lower"

    [components.ner.model.tok2vec.tok2vec]
    @architectures = "spacy-transformers.TransformerListener.v1"
    grad_factor = 1.0
    pooling = {"@layers":"reduce_mean.v1"}

Invariants: the output is twice the inner width; a word seen once in its doc gets its own
vector as memory, so a one-sentence doc without repeated words gives [v; v]; each doc is
pooled alone (the output does not depend on the other docs of the batch); the pooling is
linear and symmetric, so backprop is exact: the memory half's gradient is pooled the same way
and reaches every occurrence of the word. The inner tok2vec stays in `model.layers`, so the
`transformer` component finds the listener by walking the head's model.
"""

from typing import Callable, List, Optional, Tuple

import numpy
from spacy.attrs import LOWER, ORTH
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

NAME = "spacy-modernbert.DocumentMemory.v1"
KEYS = {"lower": LOWER, "orth": ORTH}

# one doc's pooling: (group index of each token, 1 / size of each group)
Groups = Tuple[Ints1d, Floats2d]


@registry.architectures(NAME)
def document_memory_v1(
    tok2vec: Model[List[Doc], List[Floats2d]], key: str = "lower"
) -> Model[List[Doc], List[Floats2d]]:
    """tok2vec (Model[List[Doc], List[Floats2d]]): the token vectors to pool (a listener).
    key (str): which tokens share a memory: "lower" (same lowercase form) or "orth" (same text).
    """
    if key not in KEYS:
        raise ValueError(
            f"{NAME}: key {key!r} is not one of {sorted(KEYS)}; set "
            f'`key = "lower"` (same lowercase form) or `key = "orth"` (same text) in the config'
        )
    nO = tok2vec.get_dim("nO") * 2 if tok2vec.has_dim("nO") else None
    return Model(
        "document_memory",
        forward,
        init=init,
        layers=[tok2vec],
        dims={"nO": nO},
        attrs={"key": key},
    )


def init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    inner = model.layers[0]
    inner.initialize(X=X)
    if inner.has_dim("nO") and model.has_dim("nO") is None:
        model.set_dim("nO", inner.get_dim("nO") * 2)


def groups(model: Model, doc: Doc) -> Groups:
    """Which memory each token of `doc` reads: its key's group index and 1 / the group size."""
    keys = doc.to_array(KEYS[model.attrs["key"]]) if len(doc) else numpy.zeros((0,), "uint64")
    _, index, counts = numpy.unique(keys, return_inverse=True, return_counts=True)
    ops = model.ops
    return ops.asarray1i(index.reshape(-1)), ops.asarray2f((1.0 / counts).reshape(-1, 1))


def pool(model: Model, V: Floats2d, group: Groups) -> Floats2d:
    """Row t of the result: the mean of V's rows whose token shares t's key. The map is linear
    and symmetric (it averages within each group), so it is also its own backward."""
    index, inverse_sizes = group
    sums = model.ops.alloc2f(inverse_sizes.shape[0], V.shape[1])
    model.ops.scatter_add(sums, index, V)
    return (sums * inverse_sizes)[index]


def forward(
    model: Model, docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], List[Doc]]]:
    vectors, backprop_inner = model.layers[0](docs, is_train)
    grouping = [groups(model, doc) for doc in docs]
    outputs = [
        model.ops.xp.hstack([V, pool(model, V, g)]).astype(V.dtype, copy=False)
        for V, g in zip(vectors, grouping)
    ]

    def backprop(d_outputs: List[Floats2d]) -> List[Doc]:
        d_vectors = []
        for dY, g in zip(d_outputs, grouping):
            width = dY.shape[1] // 2
            d_vectors.append(dY[:, :width] + pool(model, dY[:, width:], g))
        return backprop_inner(d_vectors)

    return outputs, backprop
