"""What the teacher says about each text, computed once and cached.

For every document (student-tokenized unlabelled text, or a gold doc's words) the teacher
pipeline runs once; the result is a reference doc for the student's training examples:
* `ner`: the teacher's entities as silver annotation (every token annotated);
* `textcat`: the teacher's category probabilities as soft `doc.cats`;
* `anomaly`: the teacher's anomaly score as a soft target (anomaly/loss.py, SOFT_TARGETS),
  with its 0/1 decision in `doc.cats` so that the student's initialization sees both classes;
* `hidden`: the teacher's token vectors (mean of each token's pieces of its last layer, what
  its listeners read), float16 in `doc.user_data` (hidden.py).
Gold docs keep their gold annotation; they only get the teacher's vectors. The docs are saved
as a DocBin with user data (`teacher.spacy` in the run directory), so a resumed run does not
run the teacher again.
"""

from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from spacy.tokens import Doc, Span
from thinc.api import get_current_ops

from ..anomaly.loss import SOFT_TARGETS
from .hidden import store_vectors

SIGNALS = ("hidden", "ner", "anomaly", "textcat")
ANOMALY_FACTORY = "anomaly_scorer"
TEXTCAT_FACTORIES = ("textcat", "textcat_multilabel")


def components_by_factory(nlp) -> Dict[str, str]:
    """{factory: component name} of a pipeline (the first component of each factory)."""
    found: Dict[str, str] = {}
    for name in nlp.pipe_names:
        found.setdefault(nlp.get_pipe_meta(name).factory, name)
    return found


def available_signals(teacher) -> List[str]:
    """The signals this teacher can give (see the module docstring)."""
    factories = components_by_factory(teacher)
    signals = []
    if "transformer" in factories:
        signals.append("hidden")
    if "ner" in factories:
        signals.append("ner")
    if ANOMALY_FACTORY in factories:
        pipe = teacher.get_pipe(factories[ANOMALY_FACTORY])
        if pipe.cfg.get("mode") == "supervised":  # one_class scores are not probabilities
            signals.append("anomaly")
    if any(f in factories for f in TEXTCAT_FACTORIES):
        signals.append("textcat")
    return signals


def teacher_width(teacher) -> int:
    trf = teacher.get_pipe(components_by_factory(teacher)["transformer"])
    return int(trf.model.transformer.config.hidden_size)


def _pooling():
    from spacy_transformers.layers import trfs2arrays
    from thinc.api import reduce_mean

    return trfs2arrays(reduce_mean(), 1.0)


def teach(
    teacher,
    docs: Iterable[Doc],
    signals: Sequence[str],
    *,
    gold: bool = False,
    batch_size: int = 64,
) -> Iterator[Doc]:
    """Reference docs for the student: `docs` (in the student's vocab) with the teacher's signals.

    gold (bool): `docs` carry gold annotation, kept as it is (only the vectors are added).
    """
    factories = components_by_factory(teacher)
    anomaly = teacher.get_pipe(factories[ANOMALY_FACTORY]) if "anomaly" in signals else None
    textcat_labels: List[str] = []
    for factory in TEXTCAT_FACTORIES:
        if "textcat" in signals and factory in factories:
            textcat_labels += list(teacher.get_pipe(factories[factory]).labels)
    pooling = _pooling() if "hidden" in signals else None
    batch: List[Doc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= batch_size:
            yield from _teach_batch(teacher, batch, signals, gold, anomaly, textcat_labels, pooling)
            batch = []
    if batch:
        yield from _teach_batch(teacher, batch, signals, gold, anomaly, textcat_labels, pooling)


def _teach_batch(teacher, batch, signals, gold, anomaly, textcat_labels, pooling) -> List[Doc]:
    inputs = [
        Doc(teacher.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d])
        for d in batch
    ]
    said = list(teacher.pipe(inputs, batch_size=len(inputs)))
    vectors: Optional[list] = None
    if pooling is not None:
        vectors = pooling.predict([d._.trf_data for d in said])
    out = []
    for i, (doc, t_doc) in enumerate(zip(batch, said)):
        if not gold:
            doc = Doc(
                doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc]
            )
            if "ner" in signals:
                doc.ents = [Span(doc, e.start, e.end, e.label_) for e in t_doc.ents]
            cats = {label: float(t_doc.cats.get(label, 0.0)) for label in textcat_labels}
            if anomaly is not None:
                score = float(t_doc._.anomaly_score)
                cats[anomaly.label] = 1.0 if t_doc._.is_anomaly else 0.0
                doc.user_data[SOFT_TARGETS] = {anomaly.label: score}
            doc.cats = cats
        if vectors is not None and len(doc):
            store_vectors(doc, get_current_ops().to_numpy(vectors[i]))
        out.append(doc)
    return out
