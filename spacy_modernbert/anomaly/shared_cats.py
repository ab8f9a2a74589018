"""`anomaly_scorer` beside a `textcat`: one `doc.cats`, each component reading only its own labels.

Why: the anomaly flag is a `doc.cats` label, and so are a text classifier's classes. An
exclusive `textcat` that took the anomaly label for one of its classes would learn
"out-of-scope" as a 151st intent and overwrite the anomaly score (or be overwritten by it).
So `anomaly_scorer` refuses, at initialize, a pipeline where another `doc.cats` component
predicts its label: give the textcat its labels explicitly
(`[initialize.components.textcat] labels`, e.g. the intents.json of `convert-clinc`), which
also keeps it from inferring them from the training docs' cats, anomaly label included.

Docs annotated as anomalous carry no class of the textcat: an exclusive textcat reads every
class as 0.0 for them (an all-zero target), which only lowers its confidence there.
"""

from typing import Any, Iterable, List, Tuple


def cats_components(nlp: Any, own: Any) -> List[Tuple[str, Any]]:
    """(name, component) of every component of `nlp` but `own` that predicts doc.cats labels."""
    from spacy.pipeline import TextCategorizer  # textcat_multilabel is a subclass

    return [
        (name, proc)
        for name, proc in nlp.pipeline
        if proc is not own and isinstance(proc, TextCategorizer)
    ]


def check_label_not_shared(nlp: Any, own: Any, label: str, owner: str) -> None:
    """Refuse a pipeline where another doc.cats component predicts the anomaly `label`.

    RAISES ValueError: naming the component, the label and the fix.
    """
    if nlp is None:
        return
    for name, proc in cats_components(nlp, own):
        labels: Iterable[str] = getattr(proc, "labels", ()) or ()
        if label in labels:
            raise ValueError(
                f"anomaly_scorer '{owner}': its label {label!r} is also a label of '{name}' "
                f"({len(tuple(labels))} labels), so both would write doc.cats[{label!r}] and "
                f"'{name}' would learn the anomalies as one more class. Give '{name}' its own "
                f"labels ([initialize.components.{name}] labels = a list without {label!r}, e.g. "
                "the intents.json of convert-clinc), or give anomaly_scorer another label."
            )
