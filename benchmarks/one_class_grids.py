"""The configuration grids of the one-class benchmark: ours and the anchors, at most 12 each.

Why: the design of every system is chosen on the validation split with the same budget
(issue 24: "the anchors get the same tuning budget on the same validation split"). Each
family's grid is listed here once, so the page can print it and a reader can count it.

* `ours`: `anomaly_scorer` detectors (the component's functions, `anomaly.detectors`) on the
  pooled embedding and token vectors of our encoder, 6 settings (one with `top_k_tokens = 5`,
  the robust max of issue 32; two with `pooling = "idf"`, the IDF-weighted doc vector of
  `anomaly/idf_pooling.py`, which replaced `knn k10` and `doc_and_token_knn k5 tk1 top5`,
  chosen once each in 72 validation choices of round two; `knn` k20 and `mahalanobis`,
  never chosen on validation in round one, left the grid earlier) x checkpoints
  (random-init and one per pretrain objective: 12 with one objective, 18 with two, as LOF
  gets).
* `ours_oe` (with `--outlier-exposure FILE`): the same grid, each detector with outlier
  exposure (`anomaly/outlier_exposure.py`: a regression telling the normal training docs
  from the file's texts, added to the detector's score), as the component's
  `outlier_exposure` setting runs it.
* `tfidf_knn`: scikit-learn TF-IDF (word 1-grams or char_wb 3-5-grams, lowercase or not) +
  mean cosine distance to the k nearest normal training docs, k in {5, 10, 20}: 12.
* `emb_lof`: scikit-learn LocalOutlierFactor (novelty=True) on our L2-normalized pooled
  embedding, n_neighbors in {5, 10, 20, 50, 100, 200} x 2 checkpoints = 12.
* `emb_ecod`: pyod's ECOD on the same embedding (no hyperparameter) x 2 checkpoints = 2;
  skipped with a note in the result where pyod is not installed (`pip install pyod`).

Invariant: a scorer sees the normal training docs (fit) and returns (validation scores,
test scores); it never sees a label.
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy

# Ours: the detector settings (the checkpoint is the second axis of the grid).
OURS_GRID: List[Dict[str, Any]] = [
    {
        "name": "doc_and_token_knn k10 tk3",
        "detector": "doc_and_token_knn",
        "n_neighbors": 10,
        "token_neighbors": 3,
    },
    {
        "name": "doc_and_token_knn k5 tk1",
        "detector": "doc_and_token_knn",
        "n_neighbors": 5,
        "token_neighbors": 1,
    },
    {
        "name": "doc_and_token_knn k10 tk3 idf",
        "detector": "doc_and_token_knn",
        "n_neighbors": 10,
        "token_neighbors": 3,
        "pooling": "idf",
    },
    {
        "name": "knn k5 idf",
        "detector": "knn",
        "n_neighbors": 5,
        "token_neighbors": 3,
        "pooling": "idf",
    },
    {"name": "token_knn tk3", "detector": "token_knn", "n_neighbors": 10, "token_neighbors": 3},
    {
        "name": "token_knn tk3 top5",
        "detector": "token_knn",
        "n_neighbors": 10,
        "token_neighbors": 3,
        "top_k_tokens": 5,
    },
]
TOKEN_BANK_SIZE = 20000  # anomaly_scorer's default token_bank_size
MEMORY_BANK_SIZE = 10000  # anomaly_scorer's default memory_bank_size


def ours_scores(
    cfg: Dict[str, Any], feats: Dict[str, Any], outlier_exposure: bool = False
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Fit the detector on the training features as `anomaly_scorer`'s fitted detector does
    (`anomaly.fitted`: a seeded memory-bank subsample, then `detector.fit`, with the
    outlier-exposure docs' features `feats["outliers"]` when `outlier_exposure`); score
    validation and test."""
    from spacy_modernbert.anomaly import detectors, idf_pooling, search

    from .one_class_rtd import detector_and_extra

    X, T = feats["train"]
    keep = search.subsample_indices(len(X), MEMORY_BANK_SIZE, detectors.SEED)
    detector, extra = detector_and_extra(
        cfg,
        feats,
        keep,
        lambda: detectors.make_detector(
            cfg["detector"],
            n_neighbors=cfg["n_neighbors"],
            token_neighbors=cfg["token_neighbors"],
            top_k_tokens=cfg.get("top_k_tokens", 0),
            token_bank_size=TOKEN_BANK_SIZE,
            memory_bank_size=MEMORY_BANK_SIZE,
            pooling=cfg.get("pooling", "mean"),
        ),
    )
    with_tokens = detector.needs_tokens
    idf = (
        getattr(detector, "pooling", "mean") == "idf"
    )  # the doc vector IDF-pools the token vectors (feats["keys"])
    fitted = feats.setdefault(
        "fitted", {}
    )  # the training features' fits, reused by every split that shares them
    key = cfg["name"] + (" +oe" if outlier_exposure else "")
    if key not in fitted:
        keep = search.subsample_indices(len(X), detector.memory_bank_size, detectors.SEED)
        X_fit, T_fit = X[keep], [T[i] for i in keep]
        outliers = feats["outliers"] if outlier_exposure else None
        table = {}
        if idf:  # as FittedDetector.fit: the IDF table of the kept docs, then pool with it
            K_fit = [feats["keys"]["train"][i] for i in keep]
            table = idf_pooling.fit(K_fit)
            X_fit = idf_pooling.pooled(table, T_fit, K_fit)
            if outliers is not None:
                outliers = (
                    idf_pooling.pooled(table, outliers[1], feats["keys"]["outliers"]),
                    outliers[1],
                )
        fitted[key] = detector.fit(
            X_fit,
            T_fit if with_tokens else None,
            seed=detectors.SEED,
            outliers=outliers,
            **extra,
        )
        fitted[key].update(table)
    state = fitted[key]
    out = []
    for part in ("val", "test"):
        Q, QT = feats[part]
        if idf:
            Q = idf_pooling.pooled(state, QT, feats["keys"][part])
        out.append(numpy.asarray(detector.scores(state, Q, QT if with_tokens else None)))
    return out[0], out[1]


def text_keys(texts: Sequence[str]) -> List[numpy.ndarray]:
    """Per text, its tokens' keys for IDF pooling (`idf_pooling.doc_keys`), tokenized as
    `encoder_features` tokenizes (spacy.blank("en")): one key per token vector."""
    import spacy

    from spacy_modernbert.anomaly import idf_pooling

    nlp = _BLANK.setdefault("en", spacy.blank("en"))
    return idf_pooling.doc_keys([nlp.make_doc(t) for t in texts])


_BLANK: Dict[str, Any] = {}


def tfidf_knn_scores(
    train: Sequence[str], queries: Sequence[Sequence[str]], k: int, **vectorizer
) -> List[numpy.ndarray]:
    """Mean cosine distance of each query doc to its k nearest training docs (TF-IDF), per query set."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(**vectorizer).fit(train)
    A = vec.transform(train)
    out = []
    for texts in queries:
        B = vec.transform(texts)
        parts = []
        for start in range(0, B.shape[0], 512):
            sims = (B[start : start + 512] @ A.T).toarray()
            parts.append(1.0 - -numpy.sort(-sims, axis=1)[:, :k].mean(axis=1))
        out.append(numpy.concatenate(parts) if parts else numpy.zeros(0))
    return out


def _unit(X: numpy.ndarray) -> numpy.ndarray:
    return X / numpy.maximum(numpy.linalg.norm(X, axis=1, keepdims=True), 1e-12)


class Family:
    """A grid of configurations (x checkpoints when `per_checkpoint`) and how to score one."""

    def __init__(
        self,
        configs: List[Dict[str, Any]],
        score: Callable,
        per_checkpoint: bool,
        available: Callable[[], Optional[str]] = lambda: None,
    ):
        self.configs, self._score, self.per_checkpoint, self.available = (
            configs,
            score,
            per_checkpoint,
            available,
        )

    def __call__(self, checkpoints: Sequence[str]) -> List[Tuple[Dict[str, Any], Optional[str]]]:
        if self.available() is not None:
            return []
        if self.per_checkpoint:
            return [(cfg, ckpt) for ckpt in checkpoints for cfg in self.configs]
        return [(cfg, None) for cfg in self.configs]

    def score(self, cfg: Dict[str, Any], split: Dict[str, Any], feats: Optional[Dict[str, Any]]):
        return self._score(cfg, split, feats)

    def describe(self) -> Any:
        missing = self.available()
        return (
            missing
            if missing
            else [
                c["name"] + (" x checkpoint" if self.per_checkpoint else "") for c in self.configs
            ]
        )


def _tfidf(cfg, split, feats):
    return tfidf_knn_scores(
        split["train"], [split["val"], split["test"]], cfg["k"], **cfg["vectorizer"]
    )


def _lof(cfg, split, feats):
    from sklearn.neighbors import LocalOutlierFactor

    fitted = feats.setdefault("fitted", {})
    if cfg["name"] not in fitted:
        X = _unit(feats["train"][0])
        fitted[cfg["name"]] = LocalOutlierFactor(
            n_neighbors=min(cfg["n_neighbors"], len(X) - 1), novelty=True
        ).fit(X)
    lof = fitted[cfg["name"]]
    return tuple(-lof.score_samples(_unit(feats[part][0])) for part in ("val", "test"))


def _ecod(cfg, split, feats):
    from pyod.models.ecod import ECOD

    model = ECOD().fit(_unit(feats["train"][0]))
    return tuple(model.decision_function(_unit(feats[part][0])) for part in ("val", "test"))


def _pyod_missing() -> Optional[str]:
    try:
        import pyod  # noqa: F401
    except ImportError:
        return "not run: pyod is not installed (pip install pyod)"
    return None


_TFIDF = [
    {
        "name": f"tfidf {label}{'' if lower else ' cased'} k{k}",
        "k": k,
        "vectorizer": dict(vec, lowercase=lower),
    }
    for label, vec in (
        ("word1", dict(ngram_range=(1, 1))),
        ("char_wb3-5", dict(analyzer="char_wb", ngram_range=(3, 5))),
    )
    for lower in (True, False)
    for k in (5, 10, 20)
]

ANCHOR_GRIDS: Dict[str, Family] = {
    "tfidf_knn": Family(_TFIDF, _tfidf, per_checkpoint=False),
    "emb_lof": Family(
        [{"name": f"LOF k{k}", "n_neighbors": k} for k in (5, 10, 20, 50, 100, 200)],
        _lof,
        per_checkpoint=True,
    ),
    "emb_ecod": Family([{"name": "ECOD"}], _ecod, per_checkpoint=True, available=_pyod_missing),
}
