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

Memory groups (training only, opt-in per doc): docs of one batch that carry the same group
(`set_memory_group(doc, group)`, kept in `doc.user_data`) are pooled together, as if they were
one doc: a training sentence then reads the memory of its whole block of neighbouring
sentences, which ride in the batch as docs of their own (without NER annotation, spaCy's ner
skips them: no loss of their own; their vectors reach the loss only through the memory). A doc
set with `trained=False` is read for the memory only: the gradient the memory sends it is
dropped, so its encoding gets none. Docs without a group, as every doc at inference, are
pooled alone, as above.
"""

from typing import Callable, Dict, Hashable, List, Optional, Tuple, Union

import numpy
from spacy.attrs import LOWER, ORTH
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

NAME = "spacy-modernbert.DocumentMemory.v1"
KEYS = {"lower": LOWER, "orth": ORTH}
MEMORY_GROUP_KEY = "spacy_modernbert.memory_group"
MEMORY_READ_ONLY_KEY = "spacy_modernbert.memory_read_only"

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


def set_memory_group(doc: Doc, group: Union[int, str], trained: bool = True) -> Doc:
    """Pool `doc` together with the other docs of its batch that carry the same `group` (an int
    or a string): the training-time memory over a block of sentences fed as separate docs. With
    `trained=False` the doc is read for the memory only: its vectors get no gradient from it."""
    if not isinstance(group, (int, str)) or isinstance(group, bool):
        raise TypeError(
            f"set_memory_group(doc, group) takes an int or a str as the group, got "
            f"{type(group).__name__}."
        )
    doc.user_data[MEMORY_GROUP_KEY] = group
    if trained:
        doc.user_data.pop(MEMORY_READ_ONLY_KEY, None)
    else:
        doc.user_data[MEMORY_READ_ONLY_KEY] = True
    return doc


def units(docs: List[Doc]) -> List[List[int]]:
    """The docs pooled together, as lists of batch indices in batch order: the docs sharing a
    memory group form one unit; every doc without a group is a unit of its own."""
    out: List[List[int]] = []
    by_group: Dict[Hashable, List[int]] = {}
    for i, doc in enumerate(docs):
        group = doc.user_data.get(MEMORY_GROUP_KEY)
        if group is None:
            out.append([i])
        elif group in by_group:
            by_group[group].append(i)
        else:
            by_group[group] = [i]
            out.append(by_group[group])
    return out


def groups(model: Model, docs: List[Doc]) -> Groups:
    """Which memory each token of `docs` (one unit, read as one text) reads: its key's group
    index and 1 / the group size."""
    attr = KEYS[model.attrs["key"]]
    arrays = [doc.to_array(attr).reshape(-1) for doc in docs if len(doc)]
    keys = numpy.concatenate(arrays) if arrays else numpy.zeros((0,), "uint64")
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
    pooled = units(docs)
    grouping = [groups(model, [docs[i] for i in unit]) for unit in pooled]

    def pool_units(rows: List[Floats2d]) -> List[Floats2d]:
        """Each row block pooled within its unit (concatenated, pooled, split back)."""
        out: List[Floats2d] = list(rows)
        xp = model.ops.xp
        for unit, g in zip(pooled, grouping):
            if len(unit) == 1:
                out[unit[0]] = pool(model, rows[unit[0]], g)
                continue
            ends = numpy.cumsum([rows[i].shape[0] for i in unit])[:-1]
            parts = xp.split(pool(model, xp.vstack([rows[i] for i in unit]), g), ends)
            for i, part in zip(unit, parts):
                out[i] = part
        return out

    memories = pool_units(vectors)
    outputs = [
        model.ops.xp.hstack([V, M]).astype(V.dtype, copy=False) for V, M in zip(vectors, memories)
    ]

    def backprop(d_outputs: List[Floats2d]) -> List[Doc]:
        width = vectors[0].shape[1] if vectors else 0
        d_memories = pool_units([dY[:, width:] for dY in d_outputs])
        d_vectors = [
            dY[:, :width] + dM if not doc.user_data.get(MEMORY_READ_ONLY_KEY) else dY[:, :width]
            for dY, dM, doc in zip(d_outputs, d_memories, docs)
        ]
        return backprop_inner(d_vectors)

    return outputs, backprop
