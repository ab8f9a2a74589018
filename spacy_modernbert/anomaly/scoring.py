"""Scorer of the `anomaly_scorer` component: ROC AUC, average precision, P/R/F at the threshold.

Numpy only. The gold label is `eg.reference.cats[label]` (1.0 anomaly, 0.0 normal); examples
whose reference has no such label are unannotated and skipped. The prediction is
`eg.predicted.cats[label]` (falling back to `eg.predicted._.anomaly_score`).
"""
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from . import DEFAULT_LABEL
from .curves import average_precision, prf_at_threshold, roc_auc

DEFAULT_THRESHOLD = 0.5


@registry.scorers("spacy-modernbert.anomaly_scorer.v1")
def make_anomaly_metrics() -> Callable[..., Dict[str, Any]]:
    """The scorer of `anomaly_scorer`: anomaly_auc, anomaly_ap, anomaly_p, anomaly_r, anomaly_f.

    RETURNS (Callable): `score(examples, *, label, threshold, **kwargs) -> dict`.
    """
    return anomaly_score


def anomaly_score(
    examples: Iterable[Example],
    *,
    label: str = DEFAULT_LABEL,
    threshold: float = DEFAULT_THRESHOLD,
    **kwargs: Any,
) -> Dict[str, Any]:
    """Score anomaly predictions against `doc.cats[label]` gold labels.

    examples (Iterable[Example]): predicted and reference docs.
    label (str): the doc.cats label of the component.
    threshold (float): a doc is predicted anomalous when its score is >= threshold.
    **kwargs: ignored (spaCy passes the component's whole cfg).
    RETURNS (Dict[str, Any]): `anomaly_auc` and `anomaly_ap` (None unless both classes occur
        in the gold labels), `anomaly_p`, `anomaly_r`, `anomaly_f` (None without labelled
        examples). When no other component writes doc.cats, the same results are also
        returned as `cats_f_per_type` / `cats_auc_per_type` for `label`: these are the
        keys spaCy's `evaluate` command prints (its results table only lists built-in
        metrics).
    """
    gold, scores, other_cats = collect_gold_and_scores(examples, label)
    results: Dict[str, Any] = {
        "anomaly_auc": None,
        "anomaly_ap": None,
        "anomaly_p": None,
        "anomaly_r": None,
        "anomaly_f": None,
    }
    if gold.size:
        p, r, f = prf_at_threshold(gold, scores, threshold)
        results.update({"anomaly_p": p, "anomaly_r": r, "anomaly_f": f})
        results["anomaly_auc"] = roc_auc(gold, scores)
        results["anomaly_ap"] = average_precision(gold, scores)
    if not other_cats and gold.size:
        # Only when we own doc.cats: spaCy merges the scores of all components with
        # dict.update, so these keys would overwrite a textcat's per-label results.
        results["cats_f_per_type"] = {label: {"p": results["anomaly_p"], "r": results["anomaly_r"], "f": results["anomaly_f"]}}
        results["cats_auc_per_type"] = {label: results["anomaly_auc"]}
    return results


def collect_gold_and_scores(examples: Iterable[Example], label: str) -> Tuple[numpy.ndarray, numpy.ndarray, bool]:
    """(gold labels, predicted scores, whether predicted docs carry other doc.cats labels).

    Examples without `label` in the reference cats, or without a prediction, are skipped.
    """
    gold, scores = [], []
    other_cats = False
    for eg in examples:
        other_cats = other_cats or any(key != label for key in eg.predicted.cats)
        if label not in eg.reference.cats:
            continue
        score = _predicted_score(eg.predicted, label)
        if score is None:
            continue
        gold.append(float(eg.reference.cats[label]))
        scores.append(score)
    return numpy.asarray(gold, dtype="float64"), numpy.asarray(scores, dtype="float64"), other_cats


def _predicted_score(doc: Doc, label: str) -> Optional[float]:
    if label in doc.cats:
        return float(doc.cats[label])
    if Doc.has_extension("anomaly_score") and doc._.anomaly_score is not None:
        return float(doc._.anomaly_score)
    return None
