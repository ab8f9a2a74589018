"""`biluo_ner`: named entities as one BILUO tag per token, decoded into valid spans.

spaCy's `ner` is transition-based: it reads a state of 3 tokens and predicts one action at a
time. This component is the token-classification route that `ModernBertForTokenClassification`
users take, on a spaCy listener: a softmax over BILUO tags ("O", "B-PER", "I-PER", "L-PER",
"U-PER", ...) for every token vector, trained with cross-entropy against the aligned gold
tags (tokens the gold leaves unannotated or misaligned add no loss), and decoded with the
best *valid* tag sequence (Viterbi over BILUO's allowed transitions, so every predicted
entity is a well-formed span; no torch).

It sets `doc.ents` and is scored like `ner` (`spacy.ner_scorer.v1`: ents_f / ents_p / ents_r).

Listener contract: `update` always backpropagates through the tok2vec (zeros when a batch
carries no gold), because the last listener's backprop is what updates a shared encoder.
Labels live in `self.cfg["labels"]` and are serialized with the pipeline by TrainablePipe.
"""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, biluo_tags_to_spans, validate_examples, validate_get_examples
from spacy.vocab import Vocab

from thinc.api import Config, Model, Optimizer, SequenceCategoricalCrossentropy, set_dropout_rate
from thinc.types import Floats2d

default_model_config = """
[model]
@architectures = "spacy-modernbert.BiluoTagger.v1"
hidden_width = 0

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
DEFAULT_BILUO_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "biluo_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={"model": DEFAULT_BILUO_MODEL, "scorer": {"@scorers": "spacy.ner_scorer.v1"}},
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_biluo_ner(nlp: Language, name: str, model: Model, scorer: Optional[Callable]) -> "BiluoNer":
    return BiluoNer(nlp.vocab, model, name, scorer=scorer)


def biluo_tags(labels: Iterable[str]) -> List[str]:
    """The tag set of entity `labels`: "O", then B-/I-/L-/U- of each label in sorted order."""
    return ["O"] + [f"{p}-{label}" for label in sorted(set(labels)) for p in "BILU"]


def allowed_transitions(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(allowed[prev, cur], may_start[cur], may_end[prev]) of a BILUO tag set.

    Inside an entity (after B-x or I-x) only I-x or L-x may follow; outside (at the start,
    after O, L-* or U-*) only O, B-* or U-*; a sequence may only end outside an entity.
    """
    n = len(tags)
    inside = [t[:1] in ("B", "I") for t in tags]
    opens = [t == "O" or t[:1] in ("B", "U") for t in tags]
    allowed = numpy.zeros((n, n), dtype=bool)
    for i, prev in enumerate(tags):
        for j, cur in enumerate(tags):
            if inside[i]:
                allowed[i, j] = cur[:1] in ("I", "L") and cur[2:] == prev[2:]
            else:
                allowed[i, j] = opens[j]
    return allowed, numpy.asarray(opens), ~numpy.asarray(inside)


def viterbi(scores: numpy.ndarray, allowed: numpy.ndarray, may_start: numpy.ndarray, may_end: numpy.ndarray) -> List[int]:
    """The valid tag sequence of highest total log-probability (scores: tokens x tags)."""
    if len(scores) == 0:
        return []
    neg = -1e30
    trans = numpy.where(allowed, 0.0, neg)
    best = numpy.where(may_start, scores[0], neg)
    back = numpy.zeros(scores.shape, dtype="int64")
    for t in range(1, len(scores)):
        cand = best[:, None] + trans
        back[t] = cand.argmax(0)
        best = cand.max(0) + scores[t]
    last = int(numpy.where(may_end, best, neg).argmax())
    path = [last]
    for t in range(len(scores) - 1, 0, -1):
        last = int(back[t, last])
        path.append(last)
    return path[::-1]


class BiluoNer(TrainablePipe):
    """Token-level BILUO tagging NER on a tok2vec (a transformer listener in our configs)."""

    def __init__(self, vocab: Vocab, model: Model, name: str = "biluo_ner", *, scorer: Optional[Callable] = None) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict[str, List[str]] = {"labels": []}
        self._transitions = None

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels (PER, ORG, ...), not the BILUO tags."""
        return tuple(self.cfg["labels"])

    @property
    def tags(self) -> List[str]:
        return biluo_tags(self.labels)

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label or "-" in label:
            raise ValueError(f"biluo_ner: entity label {label!r} must be a non-empty string without '-' (it becomes B-{label}, ...)")
        if label in self.labels:
            return 0
        if self.model.get_ref("output_layer").has_dim("nO"):
            raise ValueError(f"biluo_ner '{self.name}': cannot add label {label!r} after initialization; add every label before nlp.initialize()")
        self.cfg["labels"] = sorted([*self.labels, label])
        self._transitions = None
        return 1

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None,
                   labels: Optional[Sequence[str]] = None) -> None:
        validate_get_examples(get_examples, "BiluoNer.initialize")
        if labels is None:
            labels = {ent.label_ for eg in get_examples() for ent in eg.reference.ents}
        for label in sorted(labels):
            self.add_label(label)
        if not self.labels:
            raise ValueError(f"biluo_ner '{self.name}': no entity labels in the initialization examples; annotate entities or pass labels in [initialize.components.{self.name}]")
        docs = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.get_ref("output_layer").set_dim("nO", len(self.tags))
        self.model.initialize(X=docs)

    def predict(self, docs: Iterable[Doc]) -> List[List[str]]:
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        scores = self.model.predict(docs)
        if self._transitions is None:
            self._transitions = allowed_transitions(self.tags)
        tags = self.tags
        out = []
        for doc_scores in scores:
            logp = numpy.log(numpy.maximum(self.model.ops.to_numpy(doc_scores), 1e-12))
            out.append([tags[i] for i in viterbi(logp, *self._transitions)])
        return out

    def set_annotations(self, docs: Iterable[Doc], batch_tags: List[List[str]]) -> None:
        for doc, tags in zip(docs, batch_tags):
            doc.ents = biluo_tags_to_spans(doc, tags) if tags else []

    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd: Optional[Optimizer] = None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "BiluoNer.update")
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)  # always, zeros included: the listener contract
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        known = set(self.tags)
        truths = []
        for eg in examples:
            gold = eg.get_aligned_ner()  # BILUO per predicted token; None misaligned, "-" unannotated
            truths.append([t if t in known else None for t in gold])
        loss_func = SequenceCategoricalCrossentropy(names=self.tags, normalize=False)
        d_scores, loss = loss_func(scores, truths)
        if self.model.ops.xp.isnan(loss):
            raise ValueError(f"biluo_ner '{self.name}': the loss is NaN; lower the learning rate or check the input vectors")
        return float(loss), d_scores
