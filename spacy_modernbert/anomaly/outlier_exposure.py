"""Outlier exposure for `anomaly_scorer`'s fitted one-class detectors (issue 32).

Why: a one-class detector sees normal docs only, so every direction of the embedding in which
a doc departs from them counts the same. Outlier exposure (Hendrycks et al., ICLR 2019) adds
unlabelled text that is surely not normal (pseudo-anomalies: general-domain Wikipedia
sentences for a corpus of support requests, say) and learns, on top of the detector, which
departures make a doc look like them. The pseudo-anomalies must never come from the source
of the anomalies the detector is then measured on.

The design (the cheapest faithful one): a class-balanced, L2-regularized logistic
regression on the doc's length-robust pooled embedding (unit norm, times sqrt(width)), labels
0 for the normal fit docs and 1 for the outlier-exposure docs, *added* to the detector: the raw
score becomes `z_detector + z_regression`, each standardized by robust statistics of normal
docs (as `doc_and_token_knn` sums its two), the regression's from the normal docs'
*out-of-fold* logits (two folds), so that a normal doc's score is not one the regression was
fitted on. Why a sum and not one regression over (z_detector, embedding): the
pseudo-anomalies are far from the normal docs, so the detector's own score alone separates
them and such a regression learns nothing new (measured on a toy: the second kind of
anomaly was not told apart). The detector's statistics are kept as `base_location` /
`base_scale`; `location` / `scale` become those of the summed score over the normal fit docs
(leave-one-out detector scores, out-of-fold logits).

Setting of the component (read at `initialize`; the saved pipeline keeps only the weights):

    [components.anomaly_scorer.outlier_exposure]
    path = "../shared/data/clinc150/wiki_sents.txt"   # one text per line, UTF-8
    n = 1000                                           # a seeded sample of at most n lines

Numpy only at import (scikit-learn is imported when fitting), like detectors.py.
"""

import random
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy

from .one_class import robust_location_scale
from .search import normalize

# The state arrays outlier exposure adds to a detector's state.
KEYS = ("oe_weights", "oe_bias", "oe_location", "oe_scale", "base_location", "base_scale")
# The inverse L2 strength of the regression (scikit-learn's C), fixed: not tuned on test.
C = 1.0
# Outlier-exposure texts read by default (a seeded sample of the file's lines).
DEFAULT_N = 1000
SEED = 0


def check_setting(value: Any, name: str) -> Optional[Dict[str, Any]]:
    """The `outlier_exposure` setting checked (None, or {"path": str, "n": int >= 1}); the
    file itself is checked when it is read (`read_texts`), at initialize."""
    if value is None:
        return None
    where = f"anomaly_scorer '{name}': [components.{name}.outlier_exposure]"
    if not isinstance(value, dict):
        raise ValueError(
            f'{where} must be a block with path = "texts.txt" (one text per line) and n = '
            f"{DEFAULT_N}, or null; got {value!r}"
        )
    unknown = sorted(set(value) - {"path", "n"})
    if unknown:
        raise ValueError(f"{where} has unknown settings {unknown}; known: ['n', 'path']")
    path, n = value.get("path"), value.get("n", DEFAULT_N)
    if not isinstance(path, (str, Path)) or not str(path):
        raise ValueError(f"{where} needs path, a text file with one text per line; got {path!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{where} n must be an integer >= 1 (texts to read), got {n!r}")
    return {"path": str(path), "n": n}


def read_texts(setting: Dict[str, Any], name: str) -> List[str]:
    """A seeded sample of at most `n` non-blank lines of the setting's file."""
    path = Path(setting["path"])
    where = f"anomaly_scorer '{name}': outlier_exposure path {str(path)!r}"
    if not path.is_file():
        raise ValueError(
            f"{where} is not a file. Give a UTF-8 text file of out-of-domain texts, one per "
            "line (never the source of the anomalies you evaluate on), or set outlier_exposure = null."
        )
    try:
        lines = path.read_text(encoding="utf8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{where} is not UTF-8 text ({err})") from None
    texts = [line.strip() for line in lines if line.strip()]
    if len(texts) < 2:
        raise ValueError(f"{where} has {len(texts)} non-blank lines; at least 2 are needed")
    if len(texts) > setting["n"]:
        texts = random.Random(SEED).sample(texts, setting["n"])
    return texts


def _features(X: Any, xp: Any = numpy) -> Any:
    return normalize(X, xp) * (int(X.shape[1]) ** 0.5)


def _regression(F: numpy.ndarray, y: numpy.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression  # a declared dependency; heavy

    return LogisticRegression(C=C, class_weight="balanced", max_iter=1000).fit(F, y)


def fit(state: Dict[str, Any], X: numpy.ndarray, raw: numpy.ndarray, X_out: numpy.ndarray) -> None:
    """Add the regression to a fitted detector's `state` (in place).

    X, raw: pooled embeddings and leave-one-out raw scores of normal fit docs; X_out: pooled
    embeddings of the outlier-exposure docs."""
    X_out = numpy.asarray(X_out, dtype="float64")
    if X_out.ndim != 2 or X_out.shape[0] < 2 or X_out.shape[1] != X.shape[1]:
        raise ValueError(
            f"outlier exposure needs the embeddings of at least 2 outlier-exposure documents of width {X.shape[1]}, got shape {X_out.shape}"
        )
    F = numpy.concatenate([_features(X), _features(X_out)])
    y = numpy.concatenate([numpy.zeros(len(X)), numpy.ones(len(X_out))])
    # out-of-fold logits of the normal docs set the regression's statistics (two folds, seeded)
    fold = numpy.random.RandomState(SEED).permutation(len(y)) % 2
    oof = numpy.zeros(len(X))
    for k in (0, 1):
        part = _regression(F[fold != k], y[fold != k])
        held = numpy.flatnonzero((fold == k) & (y == 0))
        oof[held] = part.decision_function(F[held])
    model = _regression(F, y)
    oe_location, oe_scale = robust_location_scale(oof)
    base_location, base_scale = float(state["location"]), float(state["scale"])
    summed = (numpy.asarray(raw) - base_location) / base_scale + (oof - oe_location) / oe_scale
    location, scale = robust_location_scale(summed)
    state.update(
        {
            "oe_weights": model.coef_.reshape(-1).astype("float64"),
            "oe_bias": numpy.asarray(float(model.intercept_[0])),
            "oe_location": numpy.asarray(oe_location),
            "oe_scale": numpy.asarray(oe_scale),
            "base_location": numpy.asarray(base_location),
            "base_scale": numpy.asarray(base_scale),
            "location": numpy.asarray(location),
            "scale": numpy.asarray(scale),
        }
    )


def active(state: Dict[str, Any]) -> bool:
    """Whether `state` holds an outlier-exposure regression."""
    return "oe_weights" in state


def raw_scores(state: Dict[str, Any], X: Any, raw: Any, xp: Any = numpy) -> Any:
    """The raw scores under outlier exposure, `z_detector + z_regression`, of pooled
    embeddings `X` whose detector raw scores are `raw`."""
    logit = _features(X, xp) @ xp.asarray(state["oe_weights"]) + float(state["oe_bias"])
    return (raw - float(state["base_location"])) / float(state["base_scale"]) + (
        logit - float(state["oe_location"])
    ) / float(state["oe_scale"])


def base_statistics(state: Dict[str, Any]) -> Dict[str, Any]:
    """The statistics that map the detector's own raw scores (e.g. per-token) to [0, 1]."""
    if not active(state):
        return state
    return {"location": state["base_location"], "scale": state["base_scale"]}


def check_state(state: Dict[str, Any], width: int, name: str) -> None:
    """Refuse a stored state with part of the regression, or weights of the wrong shape."""
    present = [key for key in KEYS if key in state]
    if not present:
        return
    if len(present) != len(KEYS):
        raise ValueError(
            f"the {name} detector state has {present} of the outlier-exposure arrays {list(KEYS)}"
        )
    if state["oe_weights"].shape != (width,) or state["oe_bias"].ndim != 0:
        raise ValueError(
            f"the {name} detector's outlier-exposure weights have shape {state['oe_weights'].shape}, expected ({width},)"
        )
    for key in ("base_scale", "oe_scale"):
        if float(state[key]) <= 0:
            raise ValueError(f"the {name} detector state has a non-positive {key}")
