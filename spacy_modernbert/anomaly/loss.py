"""The training signal of `anomaly_scorer`: gold labels -> loss mask -> loss and gradient.

Gold labels are `doc.cats[label]` of the reference doc: 1.0 anomaly, 0.0 normal, absent
unannotated (anything else is refused, naming the document). The mask selects the docs that
give loss:
* supervised: labelled docs (and unlabelled ones as 0.0 if unlabelled_as_normal);
* one_class, Deep-SVDD: docs labelled 0.0 (and unlabelled ones if unlabelled_as_normal);
* one_class, a fitted detector: none (fitted, not trained; the listener still gets zeros).
A reference doc may also carry a soft target, `doc.user_data[SOFT_TARGETS][label]` in [0, 1]
(a teacher's anomaly probability, set by `distill`): in supervised mode it replaces the 0/1
label as the cross-entropy target, and the doc gives loss.
The loss is summed over the docs of a batch (not averaged), as spaCy's own components sum
over their tokens/docs: averaging made the anomaly gradient reaching a shared encoder
~batch-size times weaker than ner's, and the head never learned.
Numpy/thinc only.
"""

import random
from typing import Callable, Iterable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.types import Floats2d

from .logistic import sigmoid, softplus

# The user_data key of soft targets ({label: probability}) on reference docs (see above).
SOFT_TARGETS = "spacy_modernbert.soft_cats"


def soft_target(doc: Doc, label: str) -> Optional[float]:
    """The soft target of `label` on a reference doc, or None; refused outside [0, 1]."""
    value = (doc.user_data.get(SOFT_TARGETS) or {}).get(label)
    if value is None:
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(
            f"doc.user_data[{SOFT_TARGETS!r}][{label!r}] must be a probability in [0, 1]; "
            f"got {value!r} in the document {doc.text[:80]!r}"
        )
    return number


def gold_label(doc: Doc, label: str, name: str) -> Optional[float]:
    """The gold label of a reference doc: 1.0, 0.0, or None (unannotated)."""
    if label not in doc.cats:
        return None
    value = doc.cats[label]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if number not in (0.0, 1.0):
        raise ValueError(
            f"anomaly_scorer '{name}': doc.cats[{label!r}] must be 1.0 (anomaly) or "
            f"0.0 (normal), or absent for an unannotated doc; got {value!r} in the document "
            f"{doc.text[:80]!r}"
        )
    return number


def count_labels(examples: Iterable[Example], label: str, name: str) -> Tuple[int, int, int]:
    """(anomalous, normal, unlabelled) reference docs."""
    counts = {1.0: 0, 0.0: 0, None: 0}
    for eg in examples:
        counts[gold_label(eg.reference, label, name)] += 1
    return counts[1.0], counts[0.0], counts[None]


def truths_and_mask(
    examples: List[Example],
    label: str,
    name: str,
    *,
    one_class: bool,
    unlabelled_as_normal: bool,
    trained: bool,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(gold 0/1, loss mask) per example; `trained` False (a fitted detector): an all-zero mask."""
    truths = numpy.zeros((len(examples),), dtype="f")
    mask = numpy.zeros((len(examples),), dtype="f")
    for i, eg in enumerate(examples):
        gold = gold_label(eg.reference, label, name)  # validates every label, even unused
        soft = None if one_class else soft_target(eg.reference, label)
        if soft is not None:
            truths[i], mask[i] = soft, 1.0
        elif gold is None:
            mask[i] = 1.0 if unlabelled_as_normal else 0.0
        else:
            truths[i] = gold
            mask[i] = 0.0 if (one_class and gold == 1.0) else 1.0
    if not trained:
        mask[:] = 0.0
    return truths, mask


def sample_normal_examples(
    get_examples: Callable[[], Iterable[Example]],
    label: str,
    name: str,
    *,
    unlabelled_as_normal: bool,
    limit: int,
    seed: int,
) -> Tuple[List[Example], int]:
    """At most `limit` normal training examples, a seeded uniform sample (reservoir sampling,
    Algorithm R) when there are more, in corpus order; and the number of normal examples."""
    rng = random.Random(seed)
    kept: List[Tuple[int, Example]] = []
    n = 0
    for eg in get_examples():
        gold = gold_label(eg.reference, label, name)
        if not (gold == 0.0 or (gold is None and unlabelled_as_normal)):
            continue
        if len(kept) < limit:
            kept.append((n, eg))
        else:
            j = rng.randint(0, n)
            if j < limit:
                kept[j] = (n, eg)
        n += 1
    kept.sort(key=lambda item: item[0])
    return [eg for _, eg in kept], n


def loss_and_gradient(
    ops,
    raw: Floats2d,
    truths: numpy.ndarray,
    mask: numpy.ndarray,
    *,
    supervised: bool,
    pos_weight: float,
) -> Tuple[float, Floats2d]:
    """The summed loss of the masked docs and its gradient with respect to the raw scores.

    supervised: class-weighted binary cross-entropy of the logits; one_class (Deep-SVDD): the
    raw mean squared distance to the center itself.
    """
    xp = ops.xp
    raw = ops.asarray2f(raw)
    y = ops.asarray2f(truths.reshape(-1, 1))
    m = ops.asarray2f(mask.reshape(-1, 1))
    if float(mask.sum()) == 0:
        return 0.0, ops.alloc2f(*raw.shape)
    if supervised:
        p = sigmoid(xp, raw)
        # -[pw y log p + (1 - y) log(1 - p)], with log p = -softplus(-x), log(1 - p) = -softplus(x)
        per_doc = pos_weight * y * softplus(xp, -raw) + (1.0 - y) * softplus(xp, raw)
        loss = float((m * per_doc).sum())
        d_raw = m * (p * (pos_weight * y + (1.0 - y)) - pos_weight * y)
    else:
        loss = float((m * raw).sum())
        d_raw = m
    return loss, ops.asarray2f(d_raw)
