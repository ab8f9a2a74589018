"""Exact per-token decomposition of a pooled-vector detector's raw score (explain "decompose").

Why: `knn` and `mahalanobis` score one vector per doc, the pooled (mean, or IDF-weighted mean)
of its token vectors, scaled to unit length. Occlusion and "alone" re-score the doc without a
passage or the passage by itself, i.e. they explain a *different* doc; on docs of 6 SMS
messages the pooled vector of one message barely moves, and they pointed at the inserted spam
in only 0.66-0.67 of the test docs (BENCHMARKS.md). Both scores are, given the doc, linear or
quadratic in the pooled direction `z`, and `z` is a weighted sum of token vectors, so the raw
score splits *exactly* into one term per token, from the one pooled vector scored:

* `z = sum_t a_t`, `a_t = c_t u_t / ||m||`: `u_t` the token's vector (pooling "mean") or its
  unit vector ("idf"), `c_t` its pooling weight (`1 / n`, or `w_t / sum w` for IDF), `m` the
  pooled vector before normalization (`z = m / ||m||`).
* knn: raw = the mean cosine distance to the doc's `k` nearest normal vectors `b_j`
  = `1 - z . b`, `b` their mean, so `raw = sum_t (s_t - a_t . b)`;
* mahalanobis: raw = `(z - mu)^T P (z - mu)` = `sum_t (a_t - s_t mu)^T P (z - mu)`, also each
  token's Shapley value in the quadratic form `||sum_S e_t||^2` of the whitened terms
  `e_t = L (a_t - s_t mu)` (`P = L^T L`: a pairwise term `e_s . e_t` split evenly between
  its two tokens);

where `s_t` shares the constant (1, or the reference `mu`) among the tokens, any shares
summing to 1 giving an exact split. Three are offered (`SPLITS`; explain methods "decompose",
"decompose_projected" and "decompose_calibrated", chosen per detector on dev docs):
"weights", `s_t = c_t`, the pooling weights; "projection", `s_t = a_t . z`, each token's part
of the unit direction (`sum_t a_t . z = z . z = 1`), so that for knn
`raw = z . (z - b) = sum_t a_t . (z - b)`: a token counts by how far its part of the doc
direction leans away from the normal neighbours, and a token orthogonal to `z` shares none of
the constant; "linear": only the part of the score that is linear in `z` is split by the
tokens' terms, the rest is shared by pooling weight. For knn that is the "weights" split
(`1 = z . z` is the constant). For mahalanobis, `raw = z^T P z - 2 mu^T P z + mu^T P mu`:
the token term is `c_t (z^T P z + mu^T P mu) - 2 a_t^T P mu` (`z^T P z` stays between P's
extreme eigenvalues on the unit sphere: it is shared like knn's `z . z`). Why it matters:
with mean pooling the token vectors have unequal norms (a word of several pieces is their
mean, a shorter vector), and the "weights" and "projection" splits of the quadratic form
follow `a_t`'s size (the passage with the longest token vectors is the SMS benchmark's
inserted spam in 0.02-0.04 of its dev docs, the one with the shortest in 0.81: a spam message
is full of numbers, codes and rare words): those splits pointed below the random baseline
there (0.16-0.33 on the dev docs, random 0.25). The "linear" split counts a token by how
little it pulls the doc toward the normal centre, a short vector included (0.77 dev).

Faithful: the terms sum to the raw score the detector gave the doc (same neighbours, same
fitted state; float rounding aside: a test checks it), and a passage's share is the sum of
its tokens' terms. Cheap: one neighbour search (knn) or one matrix product (mahalanobis) per
doc, the same work as scoring. Under outlier exposure the terms decompose the detector's own
raw score, not the regression added to it (as the "tokens" method does). Only the
length-robust linear poolings decompose: a doc pooled by max has no such sum (refused in
`explain.resolve_method`).

Numpy only (the component imports this module).
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy

SPLITS = ("weights", "projection", "linear")


def _shares(a: numpy.ndarray, c: numpy.ndarray, z: numpy.ndarray, split: str) -> numpy.ndarray:
    """Each token's share of the constant (they sum to 1 for a doc with tokens)."""
    if split not in SPLITS:
        raise ValueError(f"decomposition split must be one of {SPLITS}, got {split!r}")
    return a @ z if split == "projection" else c


def pooling_terms(
    pooled: numpy.ndarray,
    tokens: Sequence[numpy.ndarray],
    token_weights: Optional[Sequence[numpy.ndarray]] = None,
) -> List[Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]]:
    """Per doc: (a, c, z): the token terms `a` (n_tokens, width) of the unit doc direction
    `z = sum_t a_t`, the pooling weights `c` (summing to 1) and `z` itself, from the doc's
    pooled vector (`pooled`, as the detector read it) and its token vectors. `token_weights`:
    IDF weights (pooling "idf": unit token vectors, weighted); None: the plain mean."""
    out = []
    for i, H in enumerate(tokens):
        H = numpy.asarray(H, dtype="float64")
        m = numpy.asarray(pooled[i], dtype="float64")
        norm = max(float(numpy.sqrt(m @ m)), 1e-12)
        if not len(H):
            out.append((H, numpy.zeros(0), m / norm))
            continue
        if token_weights is None:
            c = numpy.full(len(H), 1.0 / len(H))
        else:
            H = H / numpy.maximum(numpy.sqrt((H * H).sum(axis=1, keepdims=True)), 1e-12)
            w = numpy.asarray(token_weights[i], dtype="float64")
            c = w / max(float(w.sum()), 1e-12)
        out.append((c[:, None] * H / norm, c, m / norm))
    return out


def knn_terms(
    state: Dict[str, Any],
    pooled: numpy.ndarray,
    tokens: Sequence[numpy.ndarray],
    token_weights: Optional[Sequence[numpy.ndarray]] = None,
    split: str = "weights",
    exclude: Optional[Sequence[int]] = None,
) -> List[numpy.ndarray]:
    """Per doc, each token's term of the knn raw score (1 - z . mean of the doc's k nearest
    bank vectors): `s_t - a_t . b`; they sum to the raw score. `exclude`: per doc, a bank
    row left out of its neighbours (the doc's own, for a doc of the bank: leave-one-out, as
    the detector scores its fit docs)."""
    bank = numpy.asarray(state["bank"], dtype="float64")
    k = max(1, min(int(state["n_neighbors"]), len(bank) - (exclude is not None)))
    out = []
    for i, (a, c, z) in enumerate(pooling_terms(pooled, tokens, token_weights)):
        sims = bank @ z
        if exclude is not None:
            sims[exclude[i]] = -numpy.inf
        nearest = numpy.argpartition(-sims, k - 1)[:k] if k < len(bank) else numpy.arange(k)
        b = bank[nearest].mean(axis=0)
        out.append(_shares(a, c, z, split) - a @ b)
    return out


def mahalanobis_terms(
    state: Dict[str, Any],
    pooled: numpy.ndarray,
    tokens: Sequence[numpy.ndarray],
    token_weights: Optional[Sequence[numpy.ndarray]] = None,
    split: str = "weights",
) -> List[numpy.ndarray]:
    """Per doc, each token's term of the squared Mahalanobis distance:
    `(a_t - s_t mu)^T P (z - mu)` ("linear": `c_t (z^T P z + mu^T P mu) - 2 a_t^T P mu`);
    they sum to the raw score."""
    mu = numpy.asarray(state["center"], dtype="float64")
    P = numpy.asarray(state["precision"], dtype="float64")
    out = []
    for a, c, z in pooling_terms(pooled, tokens, token_weights):
        if split == "linear":
            out.append(c * float(z @ P @ z + mu @ P @ mu) - 2.0 * (a @ (P @ mu)))
            continue
        g = P @ (z - mu)
        out.append(a @ g - _shares(a, c, z, split) * float(mu @ g))
    return out
