"""One-class detectors on the pooled document embedding and on the doc's token vectors:
`doc_and_token_knn` (the default), `knn`, `token_knn` and `mahalanobis`.

`anomaly_scorer` with `mode = "one_class"` scores a doc by how far its embedding (or its
tokens' vectors) lies from those of normal training docs. No anomaly label is needed; the
detector is *fitted* (not trained) on normal docs.

The embedding is length-robust: `normalize(x) = x / ||x||`, the direction of the mean-pooled
vector (cosine geometry). A mean-pooled vector of n token vectors has a norm that shrinks
as n grows (the token-specific parts average out, roughly like 1/sqrt(n)), so Euclidean
distances of raw pooled vectors, and Deep-SVDD distances, track document length: short
normal docs look far away, long anomalies look close (measured: |Spearman(score, words)|
0.85-0.89 among normal docs for `svdd`, <= 0.10 for `knn`; BENCHMARKS.md). Centering on the
mean of the normal docs before normalizing was measured too (benchmarks/one_class_study.py)
and is *not* done: it amplifies the small doc-specific residual of long docs, made the knn
scores more length-dependent (|Spearman| 0.18-0.23) and lost 6-7 AUC points on news vs SMS,
for 8 points gained on SMS spam, where both stay below the TF-IDF anchor. An empty doc pools to zeros
and stays the zero vector: cosine similarity 0 to every normal doc, a finite, high score.

* `knn`: the mean cosine distance to the `n_neighbors` nearest normal embeddings of a memory
  bank (exact search: one matrix product with the array module of the model's device,
  numpy or cupy, in chunks of queries).
* `token_knn`: the same search one level down, over the doc's *token* vectors (the
  contextual vectors the listener gives each spaCy token), as PatchCore does over image
  patches (Roth et al., CVPR 2022): a token's distance is the mean cosine distance to its
  `token_neighbors` nearest tokens in a bank of normal training tokens (at most
  `token_bank_size`, a seeded uniform subsample of all of them), and the doc's raw score is
  the *mean* over its tokens. A mean of per-token distances does not grow or shrink with the
  number of tokens (a max or a sum would); a doc without tokens gets distance 1 (cosine
  similarity 0). Why tokens: a pooled vector averages away the few tokens that make a doc
  unusual (a phone number, "£1000", "txt" in an otherwise ordinary message), while a token
  that no normal doc has stays far from the whole token bank.
* `doc_and_token_knn` (the default): both, each standardized by its own robust statistics
  on the normal docs (median, scaled MAD), and summed: `z_knn + z_token_knn`. The pooled
  embedding sees the topic and style of the whole doc (news vs text messages), the token
  vectors see unusual pieces inside an ordinary-looking doc; on the benchmark (BENCHMARKS.md)
  the sum was the one choice that beat every TF-IDF anchor on all three tasks.
* `mahalanobis`: a Gaussian fit of the normalized embeddings with Ledoit-Wolf shrinkage
  covariance (scikit-learn); the raw score is the squared Mahalanobis distance.

Raw scores map to [0, 1] as the Deep-SVDD scores do: `sigmoid((raw - location) / scale - 2)`,
location/scale the median and scaled MAD of the raw scores of the bank's own docs
(leave-one-out: a doc is not its own neighbour, nor are its own tokens; the token detectors
use a seeded sample of at most `STATS_DOCS` docs), so 0.5 sits two robust standard deviations
above typical normal docs. `calibrate` can move the threshold for a target false-positive
rate on unlabelled normal docs.

The fitted state is a dict of numpy arrays; `to_bytes`/`from_bytes` store it as an `.npz`
without pickles (`allow_pickle=False`) and validate shapes and values when loading.
"""
import io
from typing import Any, Dict, Optional, Sequence

import numpy

from .one_class import Z_AT_HALF, robust_location_scale

DETECTORS = ("doc_and_token_knn", "knn", "token_knn", "mahalanobis", "svdd")
EMBEDDING_DETECTORS = ("doc_and_token_knn", "knn", "token_knn", "mahalanobis")
# The detectors that need each doc's token vectors, not only the pooled embedding.
TOKEN_DETECTORS = ("doc_and_token_knn", "token_knn")
DEFAULT_DETECTOR = "doc_and_token_knn"
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


def fit_detector(
    name: str,
    X: numpy.ndarray,
    tokens: Optional[Sequence[numpy.ndarray]] = None,
    *,
    n_neighbors: int = 10,
    token_neighbors: int = 3,
    token_bank_size: int = 20000,
    seed: int = 0,
) -> Dict[str, numpy.ndarray]:
    """Fit a detector on normal docs: `X` their pooled embeddings (n_docs, width), `tokens`
    their token vectors (one (n_tokens, width) array per doc; needed by TOKEN_DETECTORS)."""
    X = numpy.asarray(X, dtype="float64")
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"the {name} detector needs the embeddings of at least 2 normal documents, got shape {X.shape}")
    if not numpy.isfinite(X).all():
        raise ValueError(f"the {name} detector got non-finite document embeddings: the encoder's output is not finite")
    Z = normalize(X)
    if name in ("knn", "doc_and_token_knn"):
        state = {"bank": Z.astype("float32"), "n_neighbors": numpy.asarray(n_neighbors)}
        fit_scores = _knn_scores(Z, state["bank"], n_neighbors, numpy, leave_one_out=True)
    elif name == "mahalanobis":
        try:
            from sklearn.covariance import LedoitWolf
        except ImportError:  # pragma: no cover - a declared dependency
            raise ImportError("detector = \"mahalanobis\" needs scikit-learn: pip install scikit-learn") from None
        lw = LedoitWolf().fit(Z)
        state = {"center": lw.location_.astype("float64"), "precision": lw.precision_.astype("float64")}
        fit_scores = _mahalanobis_scores(Z, state, numpy)
    elif name != "token_knn":
        raise ValueError(f"unknown embedding detector {name!r}: use one of {EMBEDDING_DETECTORS}")
    if name in TOKEN_DETECTORS:
        token_state, stats_docs, token_fit = _fit_token_bank(name, tokens, X.shape, token_neighbors, token_bank_size, seed)
        if name == "token_knn":
            state, fit_scores = token_state, token_fit
        else:  # the sum of both standardized scores, over the docs of the token statistics
            doc_location, doc_scale = robust_location_scale(fit_scores)
            token_location, token_scale = robust_location_scale(token_fit)
            state.update(token_state)
            state.update({
                "doc_location": numpy.asarray(doc_location), "doc_scale": numpy.asarray(doc_scale),
                "token_location": numpy.asarray(token_location), "token_scale": numpy.asarray(token_scale),
            })
            fit_scores = _sum_of_z(state, fit_scores[stats_docs], token_fit)
    location, scale = robust_location_scale(fit_scores)
    state["location"] = numpy.asarray(location)
    state["scale"] = numpy.asarray(scale)
    return state


def _fit_token_bank(name: str, tokens, shape, k: int, size: int, seed: int):
    """The token bank (a seeded uniform sample of all normal tokens, never the first N) and the
    leave-one-doc-out raw scores of up to STATS_DOCS docs: (state, those docs' indices, scores)."""
    if tokens is None or len(tokens) != shape[0]:
        raise ValueError(f"the {name} detector needs the token vectors of each of the {shape[0]} documents")
    tokens = [numpy.asarray(t, dtype="float32").reshape(-1, shape[1]) for t in tokens]
    lengths = numpy.asarray([len(t) for t in tokens])
    if lengths.sum() < 2:
        raise ValueError(f"the {name} detector needs normal documents with at least 2 tokens in all, got {int(lengths.sum())}")
    if not all(numpy.isfinite(t).all() for t in tokens):
        raise ValueError(f"the {name} detector got non-finite token vectors: the encoder's output is not finite")
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)])
    keep = subsample_indices(int(starts[-1]), size, seed)
    doc_of = numpy.searchsorted(starts, keep, side="right") - 1
    bank = normalize(numpy.stack([tokens[d][i - starts[d]] for d, i in zip(doc_of, keep)])).astype("float32")
    state = {"token_bank": bank, "token_neighbors": numpy.asarray(k)}
    with_tokens = numpy.flatnonzero(lengths > 0)
    stats_docs = with_tokens[subsample_indices(len(with_tokens), STATS_DOCS, seed)]
    fit = _token_knn_scores([tokens[i] for i in stats_docs], bank, k, numpy, query_docs=stats_docs, bank_docs=doc_of)
    return state, stats_docs, fit


def raw_scores(name: str, state: Dict[str, Any], X, tokens: Optional[Sequence[Any]] = None, xp=numpy):
    """Raw detector scores (higher = more anomalous) on `xp`'s device, from the pooled
    embeddings `X` and, for TOKEN_DETECTORS, the docs' token vectors."""
    if name in TOKEN_DETECTORS and (tokens is None or len(tokens) != len(X)):
        raise ValueError(f"the {name} detector needs the token vectors of each document")
    if name == "token_knn":
        return _token_knn_scores(tokens, xp.asarray(state["token_bank"]), int(state["token_neighbors"]), xp)
    Z = normalize(X, xp)
    if name == "knn":
        return _knn_scores(Z, xp.asarray(state["bank"]), int(state["n_neighbors"]), xp)
    if name == "doc_and_token_knn":
        doc = _knn_scores(Z, xp.asarray(state["bank"]), int(state["n_neighbors"]), xp)
        token = _token_knn_scores(tokens, xp.asarray(state["token_bank"]), int(state["token_neighbors"]), xp)
        return _sum_of_z(state, doc, token)
    if name == "mahalanobis":
        return _mahalanobis_scores(Z, state, xp)
    raise ValueError(f"unknown embedding detector {name!r}: use one of {EMBEDDING_DETECTORS}")


def _sum_of_z(state: Dict[str, Any], doc, token):
    """`z_knn + z_token_knn`: each raw score standardized by its own robust statistics."""
    return ((doc - float(state["doc_location"])) / float(state["doc_scale"])
            + (token - float(state["token_location"])) / float(state["token_scale"]))


def unit_scores(state: Dict[str, Any], raw, xp=numpy):
    """Raw scores -> [0, 1]: `sigmoid((raw - location) / scale - 2)`."""
    z = (raw - float(state["location"])) / float(state["scale"]) - Z_AT_HALF
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _knn_scores(Z, bank, k: int, xp, leave_one_out: bool = False):
    """Each row's mean cosine distance to its `k` nearest bank rows (row i of a leave-one-out
    fit is bank row i itself, and is left out)."""
    if leave_one_out:  # at most n - 1 neighbours: every slot gets another doc
        ids = xp.arange(int(Z.shape[0]))
        return _nearest_distances(Z, bank, min(int(k), int(bank.shape[0]) - 1), xp, query_owner=ids, bank_owner=ids)
    return _nearest_distances(Z, bank, k, xp)


def _nearest_distances(Q, bank, k: int, xp, query_owner=None, bank_owner=None):
    """Each query row's mean cosine distance to its `k` nearest bank rows (float64; exact
    search in chunks of QUERY_CHUNK rows). With owners (one id per query row and per bank
    row), bank rows of the query's own owner are left out, and a slot left without any
    neighbour counts as similarity -1."""
    k = max(1, min(int(k), int(bank.shape[0])))
    out = []
    for start in range(0, int(Q.shape[0]), QUERY_CHUNK):
        sims = xp.asarray(Q[start:start + QUERY_CHUNK], dtype="float32") @ bank.T
        if query_owner is not None:
            sims[query_owner[start:start + QUERY_CHUNK, None] == bank_owner[None, :]] = -xp.inf
        top = xp.maximum(_top_k(sims, k, xp), -1.0)
        out.append(1.0 - top.astype("float64").mean(axis=1))
    return xp.concatenate(out) if out else xp.zeros((0,), dtype="float64")


def _top_k(sims, k: int, xp):
    """The `k` largest values of each row (in no particular order). On the CPU through torch's
    topk (torch is loaded by then: the encoder runs on it), ~15x faster than numpy's partition
    over a 20,000-column bank; cupy's partition on the GPU."""
    if xp is numpy:
        import torch

        return torch.from_numpy(numpy.ascontiguousarray(sims)).topk(k, dim=1).values.numpy()
    return -xp.partition(-sims, k - 1, axis=1)[:, :k]


def _token_knn_scores(tokens: Sequence[Any], bank, k: int, xp, query_docs=None, bank_docs=None):
    """Per doc, the mean over its tokens of the mean cosine distance to the `k` nearest bank
    tokens (float64; EMPTY_DOC_DISTANCE for a doc without tokens). With `query_docs` (one id
    per doc) and `bank_docs` (one id per bank token), a doc's own tokens are left out."""
    lengths = [int(len(t)) for t in tokens]
    out = numpy.full(len(tokens), EMPTY_DOC_DISTANCE, dtype="float64")
    if not sum(lengths):
        return xp.asarray(out)
    width = int(bank.shape[1])
    Q = normalize(xp.concatenate([xp.asarray(t, dtype="float32").reshape(-1, width) for t in tokens if len(t)]), xp)
    owners = {}
    if query_docs is not None:
        owners = {"query_owner": xp.asarray(numpy.repeat(numpy.asarray(query_docs), lengths)),
                  "bank_owner": xp.asarray(bank_docs)}
    per_token = getattr(xp, "asnumpy", numpy.asarray)(_nearest_distances(Q, bank, k, xp, **owners))
    lengths = numpy.asarray(lengths)
    nonempty = lengths > 0
    starts = (numpy.cumsum(lengths) - lengths)[nonempty]  # where each doc's tokens begin in per_token
    out[nonempty] = numpy.add.reduceat(per_token, starts) / lengths[nonempty]
    return xp.asarray(out)


def _mahalanobis_scores(Z, state, xp):
    D = Z - xp.asarray(state["center"])
    return ((D @ xp.asarray(state["precision"])) * D).sum(axis=1)


# ---------------------------------------------------------------------------- serialization

_REQUIRED = {
    "knn": ("bank", "n_neighbors", "location", "scale"),
    "token_knn": ("token_bank", "token_neighbors", "location", "scale"),
    "doc_and_token_knn": ("bank", "n_neighbors", "token_bank", "token_neighbors", "doc_location", "doc_scale",
                          "token_location", "token_scale", "location", "scale"),
    "mahalanobis": ("center", "precision", "location", "scale"),
}


def state_to_bytes(state: Optional[Dict[str, Any]]) -> bytes:
    """The fitted state as `.npz` bytes (empty bytes for no state)."""
    if not state:
        return b""
    buf = io.BytesIO()
    numpy.savez(buf, **{key: numpy.asarray(value) for key, value in state.items()})
    return buf.getvalue()


def state_from_bytes(data: bytes, name: str, width: Optional[int] = None) -> Optional[Dict[str, numpy.ndarray]]:
    """Load and validate a state written by `state_to_bytes` (no pickles)."""
    if not data:
        return None
    try:
        with numpy.load(io.BytesIO(data), allow_pickle=False) as npz:
            state = {key: numpy.array(npz[key]) for key in npz.files}
    except Exception as err:
        raise ValueError(f"the {name} detector state is not a valid .npz file ({err}); re-save the pipeline") from None
    check_state(name, state, width)
    return state


def check_state(name: str, state: Dict[str, numpy.ndarray], width: Optional[int] = None) -> None:
    """Refuse a state with missing arrays, wrong shapes or non-finite values."""
    missing = [key for key in _REQUIRED.get(name, ()) if key not in state]
    if missing:
        raise ValueError(f"the {name} detector state lacks {missing}; re-fit the detector (nlp.get_pipe(...).fit_detector(docs)) and save again")
    for key, value in state.items():
        if value.dtype.kind not in "fiu" or not numpy.isfinite(value).all():
            raise ValueError(f"the {name} detector state has non-numeric or non-finite values in {key!r}")
    if name not in _REQUIRED:
        raise ValueError(f"unknown embedding detector {name!r}: use one of {EMBEDDING_DETECTORS}")
    vectors = state["center"] if name == "mahalanobis" else state["token_bank" if name == "token_knn" else "bank"]
    d = int(vectors.shape[-1]) if vectors.ndim in (1, 2) else -1
    if d < 1 or (width is not None and d != width):
        raise ValueError(f"the {name} detector state has embeddings of width {d}, the model gives {width}")
    for bank, k in (("bank", "n_neighbors"), ("token_bank", "token_neighbors")):
        if bank not in state:
            continue
        if state[bank].ndim != 2 or state[bank].shape[1] != d or state[bank].shape[0] < 1:
            raise ValueError(f"the {name} detector's {bank} has shape {state[bank].shape}, expected (n, {d})")
        if state[k].ndim != 0 or int(state[k]) < 1:
            raise ValueError(f"the {name} detector state has {k} < 1")
    for key in ("doc_scale", "token_scale"):
        if key in state and float(state[key]) <= 0:
            raise ValueError(f"the {name} detector state has a non-positive {key}")
    if name == "mahalanobis" and (state["precision"].shape != (d, d) or state["center"].shape != (d,)):
        raise ValueError(f"the mahalanobis state has shapes {state['center'].shape} / {state['precision'].shape}, expected ({d},) / ({d}, {d})")
    if float(state["scale"]) <= 0:
        raise ValueError(f"the {name} detector state has a non-positive scale")

