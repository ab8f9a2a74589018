"""Exact nearest-neighbour search and Gaussian distances for the one-class detectors.

Why a module of its own: `detectors.py` says *what* each registered detector computes; the
arithmetic they share lives here, written once: the length-robust embedding (`normalize`),
the exact kNN search by one matrix product per chunk of queries (`nearest_distances`, with
owners to leave a doc's own rows out of its fit), the per-token search (`token_distances`,
`token_knn_scores`, `fit_token_bank`) and the Mahalanobis distance.
Invariants: float64 results; every function takes the array module `xp` (numpy or cupy) of
the arrays it gets and never moves them between devices, except the per-token distances (numpy, one
array per doc) and `token_knn_scores`' float64 per-doc result; leave-one-out fits never count a doc as its own neighbour.
"""

from typing import Any, Dict, Sequence

import numpy

# Normal docs whose leave-one-doc-out token scores set a token detector's statistics.
STATS_DOCS = 1000
# The token distance of a doc without tokens (cosine similarity 0 to every normal token).
EMPTY_DOC_DISTANCE = 1.0
# Queries per chunk of the exact kNN search (bounds the (queries, bank) similarity matrix).
QUERY_CHUNK = 1024


def normalize(X, xp=numpy):
    """Length-robust embeddings: each row scaled to unit L2 norm (a zero row stays zero)."""
    Z = xp.asarray(X, dtype="float64")
    norms = xp.sqrt((Z * Z).sum(axis=1, keepdims=True))
    return Z / xp.maximum(norms, 1e-12)


def subsample_indices(n: int, size: int, seed: int = 0) -> numpy.ndarray:
    """`size` of `range(n)` drawn uniformly without replacement (sorted); all when n <= size."""
    if n <= size:
        return numpy.arange(n)
    return numpy.sort(numpy.random.RandomState(seed).choice(n, size=size, replace=False))


def fit_token_bank(name: str, tokens, shape, k: int, size: int, seed: int, top_k: int = 0):
    """The token bank (a seeded uniform sample of all normal tokens, never the first N) and the
    leave-one-doc-out raw scores of up to STATS_DOCS docs: (state, those docs' indices, scores).

    top_k > 0: a doc's score is the mean of its `top_k` largest token distances, less the
    length trend of the fit docs (`length_trend`), stored as `length_slope`."""
    if tokens is None or len(tokens) != shape[0]:
        raise ValueError(
            f"the {name} detector needs the token vectors of each of the {shape[0]} documents"
        )
    tokens = [numpy.asarray(t, dtype="float32").reshape(-1, shape[1]) for t in tokens]
    lengths = numpy.asarray([len(t) for t in tokens])
    if lengths.sum() < 2:
        raise ValueError(
            f"the {name} detector needs normal documents with at least 2 tokens in all, got {int(lengths.sum())}"
        )
    if not all(numpy.isfinite(t).all() for t in tokens):
        raise ValueError(
            f"the {name} detector got non-finite token vectors: the encoder's output is not finite"
        )
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)])
    keep = subsample_indices(int(starts[-1]), size, seed)
    doc_of = numpy.searchsorted(starts, keep, side="right") - 1
    bank = normalize(numpy.stack([tokens[d][i - starts[d]] for d, i in zip(doc_of, keep)])).astype(
        "float32"
    )
    state = {"token_bank": bank, "token_neighbors": numpy.asarray(k)}
    with_tokens = numpy.flatnonzero(lengths > 0)
    stats_docs = with_tokens[subsample_indices(len(with_tokens), STATS_DOCS, seed)]
    fit = token_knn_scores(
        [tokens[i] for i in stats_docs],
        bank,
        k,
        numpy,
        query_docs=stats_docs,
        bank_docs=doc_of,
        top_k=top_k,
    )
    if top_k > 0:
        state["top_k_tokens"] = numpy.asarray(top_k)
        state["length_slope"] = numpy.asarray(length_trend(fit, lengths[stats_docs]))
        fit = detrended(state, fit, lengths[stats_docs])
    return state, stats_docs, fit


def length_trend(scores, lengths) -> float:
    """The least-squares slope of `scores` on log(tokens) (0 when the lengths do not vary).

    Why: a top-k mean of token distances grows with the number of tokens it picks from (the
    maximum of more draws), so long normal docs would look more anomalous; subtracting
    `slope * log(tokens)` (`detrended`) removes that trend as the normal docs show it."""
    x = numpy.log(numpy.maximum(numpy.asarray(lengths, dtype="float64"), 1.0))
    y = numpy.asarray(scores, dtype="float64")
    var = float(((x - x.mean()) ** 2).sum())
    return 0.0 if var <= 1e-12 else float(((x - x.mean()) * (y - y.mean())).sum() / var)


def detrended(state: Dict[str, Any], scores, lengths):
    """Token scores less the length trend fitted on normal docs (`state["length_slope"]`)."""
    slope = float(state.get("length_slope", 0.0))
    if not slope:
        return scores
    x = numpy.log(numpy.maximum(numpy.asarray(lengths, dtype="float64"), 1.0))
    return scores - slope * x


def sum_of_z(state: Dict[str, Any], doc, token):
    """`z_knn + z_token_knn`: each raw score standardized by its own robust statistics."""
    return (doc - float(state["doc_location"])) / float(state["doc_scale"]) + (
        token - float(state["token_location"])
    ) / float(state["token_scale"])


def knn_scores(Z, bank, k: int, xp, leave_one_out: bool = False):
    """Each row's mean cosine distance to its `k` nearest bank rows (row i of a leave-one-out
    fit is bank row i itself, and is left out)."""
    if leave_one_out:  # at most n - 1 neighbours: every slot gets another doc
        ids = xp.arange(int(Z.shape[0]))
        return nearest_distances(
            Z, bank, min(int(k), int(bank.shape[0]) - 1), xp, query_owner=ids, bank_owner=ids
        )
    return nearest_distances(Z, bank, k, xp)


def nearest_distances(Q, bank, k: int, xp, query_owner=None, bank_owner=None):
    """Each query row's mean cosine distance to its `k` nearest bank rows (float64; exact
    search in chunks of QUERY_CHUNK rows). With owners (one id per query row and per bank
    row), bank rows of the query's own owner are left out, and a slot left without any
    neighbour counts as similarity -1."""
    k = max(1, min(int(k), int(bank.shape[0])))
    out = []
    for start in range(0, int(Q.shape[0]), QUERY_CHUNK):
        sims = xp.asarray(Q[start : start + QUERY_CHUNK], dtype="float32") @ bank.T
        if query_owner is not None:
            sims[query_owner[start : start + QUERY_CHUNK, None] == bank_owner[None, :]] = -xp.inf
        top = xp.maximum(top_k(sims, k, xp), -1.0)
        out.append(1.0 - top.astype("float64").mean(axis=1))
    return xp.concatenate(out) if out else xp.zeros((0,), dtype="float64")


def top_k(sims, k: int, xp):
    """The `k` largest values of each row (in no particular order). On the CPU through torch's
    topk (torch is loaded by then: the encoder runs on it), ~15x faster than numpy's partition
    over a 20,000-column bank; cupy's partition on the GPU."""
    if xp is numpy:
        import torch

        return torch.from_numpy(numpy.ascontiguousarray(sims)).topk(k, dim=1).values.numpy()
    return -xp.partition(-sims, k - 1, axis=1)[:, :k]


def token_distances(tokens: Sequence[Any], bank, k: int, xp, query_docs=None, bank_docs=None):
    """Per doc, each token's mean cosine distance to its `k` nearest bank tokens (a list of
    float64 numpy arrays, one per doc; empty for a doc without tokens). With `query_docs` (one
    id per doc) and `bank_docs` (one id per bank token), a doc's own tokens are left out."""
    lengths = numpy.asarray([int(len(t)) for t in tokens], dtype="int64")
    if not lengths.sum():
        return [numpy.zeros((0,), dtype="float64") for _ in tokens]
    width = int(bank.shape[1])
    Q = normalize(
        xp.concatenate(
            [xp.asarray(t, dtype="float32").reshape(-1, width) for t in tokens if len(t)]
        ),
        xp,
    )
    owners = {}
    if query_docs is not None:
        owners = {
            "query_owner": xp.asarray(numpy.repeat(numpy.asarray(query_docs), lengths)),
            "bank_owner": xp.asarray(bank_docs),
        }
    per_token = getattr(xp, "asnumpy", numpy.asarray)(nearest_distances(Q, bank, k, xp, **owners))
    return numpy.split(per_token, numpy.cumsum(lengths)[:-1])


def mean_token_distances(per_doc: Sequence[numpy.ndarray], top_k: int = 0) -> numpy.ndarray:
    """Each doc's mean token distance, over its `top_k` most distant tokens when top_k > 0 (a
    robust max, which one unusual passage in a long doc cannot dilute); EMPTY_DOC_DISTANCE for
    a doc without tokens."""
    return numpy.asarray(
        [
            float((numpy.sort(d)[-top_k:] if top_k > 0 else d).mean())
            if len(d)
            else EMPTY_DOC_DISTANCE
            for d in per_doc
        ],
        dtype="float64",
    )


def token_knn_scores(
    tokens: Sequence[Any], bank, k: int, xp, query_docs=None, bank_docs=None, top_k: int = 0
):
    """Per doc, the mean over its tokens (over its `top_k` most distant tokens when top_k > 0)
    of the mean cosine distance to the `k` nearest bank tokens (float64; EMPTY_DOC_DISTANCE for
    a doc without tokens; see `token_distances`)."""
    per_doc = token_distances(tokens, bank, k, xp, query_docs, bank_docs)
    return xp.asarray(mean_token_distances(per_doc, top_k))


def mahalanobis_scores(Z, state, xp):
    D = Z - xp.asarray(state["center"])
    return ((D @ xp.asarray(state["precision"])) * D).sum(axis=1)
