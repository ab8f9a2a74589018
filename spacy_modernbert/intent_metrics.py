"""In-scope intent accuracy: the figure CLINC150 reports beside out-of-scope recall.

`evaluate` adds `intent_acc` when the pipeline has a `textcat`: over the docs whose gold
`doc.cats` names one intent (value 1.0, the anomaly label aside), the fraction whose
highest predicted intent is that one, whatever the out-of-scope verdict (the CLINC paper's
"in-scope accuracy"). Out-of-scope docs (no gold intent) are left to the anomaly metrics
(`anomaly_r` is out-of-scope recall at the threshold, `anomaly_auc` / `anomaly_ap` its AUROC
and AUPR). Pure Python over spaCy Examples.
"""

from typing import Any, Dict, Iterable, Optional


def gold_intent(cats: Dict[str, float], anomaly_label: str) -> Optional[str]:
    """The one intent with gold value 1.0 (None for out-of-scope or unlabelled docs)."""
    positive = [k for k, v in cats.items() if k != anomaly_label and v == 1.0]
    return positive[0] if len(positive) == 1 else None


def predicted_intent(cats: Dict[str, float], anomaly_label: str) -> Optional[str]:
    """The intent with the highest predicted probability (None if none was predicted)."""
    scores = {k: v for k, v in cats.items() if k != anomaly_label}
    return max(scores, key=scores.__getitem__) if scores else None


def intent_scores(examples: Iterable[Any], anomaly_label: str) -> Dict[str, Any]:
    """`intent_acc` (None without in-scope gold docs) and `intent_n`, the docs it counts."""
    n = correct = 0
    for eg in examples:
        gold = gold_intent(eg.reference.cats, anomaly_label)
        if gold is None:
            continue
        n += 1
        correct += int(predicted_intent(eg.predicted.cats, anomaly_label) == gold)
    return {"intent_acc": correct / n if n else None, "intent_n": n}
