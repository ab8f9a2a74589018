"""One-class detectors on the pooled document embedding: `knn` and `mahalanobis`.

`anomaly_scorer` with `mode = "one_class"` and `detector = "knn"` or `"mahalanobis"` scores a
doc by how far its embedding lies from the embeddings of normal training docs. No anomaly
label is needed; the detector is *fitted* (not trained) on normal docs.

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
* `mahalanobis`: a Gaussian fit of the normalized embeddings with Ledoit-Wolf shrinkage
  covariance (scikit-learn); the raw score is the squared Mahalanobis distance.

Raw scores map to [0, 1] as the Deep-SVDD scores do: `sigmoid((raw - location) / scale - 2)`,
location/scale the median and scaled MAD of the raw scores of the bank's own docs (for knn
leave-one-out: a doc is not its own neighbour), so 0.5 sits two robust standard deviations
above typical normal docs. `calibrate` can move the threshold for a target false-positive
rate on unlabelled normal docs.

The fitted state is a dict of numpy arrays; `to_bytes`/`from_bytes` store it as an `.npz`
without pickles (`allow_pickle=False`) and validate shapes and values when loading.
"""
import io
from typing import Any, Dict, Optional

import numpy

from .one_class import Z_AT_HALF, robust_location_scale

DETECTORS = ("knn", "mahalanobis", "svdd")
EMBEDDING_DETECTORS = ("knn", "mahalanobis")
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


def fit_detector(name: str, X: numpy.ndarray, *, n_neighbors: int = 10) -> Dict[str, numpy.ndarray]:
    """Fit `knn` or `mahalanobis` on the pooled embeddings `X` (n_docs, width) of normal docs."""
    X = numpy.asarray(X, dtype="float64")
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"the {name} detector needs the embeddings of at least 2 normal documents, got shape {X.shape}")
    if not numpy.isfinite(X).all():
        raise ValueError(f"the {name} detector got non-finite document embeddings: the encoder's output is not finite")
    Z = normalize(X)
    if name == "knn":
        state = {"bank": Z.astype("float32"), "n_neighbors": numpy.asarray(n_neighbors)}
        fit_scores = _knn_scores(Z, Z.astype("float32"), n_neighbors, numpy, leave_one_out=True)
    elif name == "mahalanobis":
        try:
            from sklearn.covariance import LedoitWolf
        except ImportError:  # pragma: no cover - a declared dependency
            raise ImportError("detector = \"mahalanobis\" needs scikit-learn: pip install scikit-learn") from None
        lw = LedoitWolf().fit(Z)
        state = {"center": lw.location_.astype("float64"), "precision": lw.precision_.astype("float64")}
        fit_scores = _mahalanobis_scores(Z, state, numpy)
    else:
        raise ValueError(f"unknown embedding detector {name!r}: use one of {EMBEDDING_DETECTORS}")
    location, scale = robust_location_scale(fit_scores)
    state["location"] = numpy.asarray(location)
    state["scale"] = numpy.asarray(scale)
    return state


def raw_scores(name: str, state: Dict[str, Any], X, xp=numpy):
    """Raw detector scores (higher = more anomalous) of pooled embeddings `X`, on `xp`'s device."""
    Z = normalize(X, xp)
    if name == "knn":
        return _knn_scores(Z, xp.asarray(state["bank"]), int(state["n_neighbors"]), xp)
    if name == "mahalanobis":
        return _mahalanobis_scores(Z, state, xp)
    raise ValueError(f"unknown embedding detector {name!r}: use one of {EMBEDDING_DETECTORS}")


def unit_scores(state: Dict[str, Any], raw, xp=numpy):
    """Raw scores -> [0, 1]: `sigmoid((raw - location) / scale - 2)`."""
    z = (raw - float(state["location"])) / float(state["scale"]) - Z_AT_HALF
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _knn_scores(Z, bank, k: int, xp, leave_one_out: bool = False):
    n_bank = int(bank.shape[0]) - (1 if leave_one_out else 0)
    k = max(1, min(int(k), n_bank))
    out = []
    for start in range(0, int(Z.shape[0]), QUERY_CHUNK):
        sims = xp.asarray(Z[start:start + QUERY_CHUNK], dtype="float32") @ bank.T
        if leave_one_out:
            rows = xp.arange(sims.shape[0])
            sims[rows, rows + start] = -xp.inf
        top = -xp.partition(-sims, k - 1, axis=1)[:, :k]
        out.append(1.0 - top.astype("float64").mean(axis=1))
    return xp.concatenate(out) if out else xp.zeros((0,), dtype="float64")


def _mahalanobis_scores(Z, state, xp):
    D = Z - xp.asarray(state["center"])
    return ((D @ xp.asarray(state["precision"])) * D).sum(axis=1)


# ---------------------------------------------------------------------------- serialization

_REQUIRED = {
    "knn": ("bank", "n_neighbors", "location", "scale"),
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
    vectors = state["bank"] if name == "knn" else state["center"]
    d = int(vectors.shape[-1]) if vectors.ndim in (1, 2) else -1
    if d < 1 or (width is not None and d != width):
        raise ValueError(f"the {name} detector state has embeddings of width {d}, the model gives {width}")
    if name == "knn":
        if state["bank"].ndim != 2 or state["bank"].shape[1] != d or state["bank"].shape[0] < 1:
            raise ValueError(f"the knn memory bank has shape {state['bank'].shape}, expected (n, {d})")
        if int(state["n_neighbors"]) < 1:
            raise ValueError("the knn detector state has n_neighbors < 1")
    if name == "mahalanobis" and (state["precision"].shape != (d, d) or state["center"].shape != (d,)):
        raise ValueError(f"the mahalanobis state has shapes {state['center'].shape} / {state['precision'].shape}, expected ({d},) / ({d}, {d})")
    if float(state["scale"]) <= 0:
        raise ValueError(f"the {name} detector state has a non-positive scale")

