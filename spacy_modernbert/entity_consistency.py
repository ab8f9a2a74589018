"""`entity_consistency`: one label per name within a doc (document-level label consistency).

A rule pipe placed after `ner` (Krishnan & Manning 2006: within one news article, the same
name nearly always has one type). Within each doc, independently of every other doc:

* `vote`: the mentions with identical token texts ("Smith" and "Smith") take the label most
  of them carry. A tie between the most frequent labels changes nothing: every mention keeps
  the model's label.
* `propagate`: further occurrences of a predicted entity string that the model left untagged
  are tagged with its label, when the string starts with a capital letter, holds at least two
  characters and was tagged at least `min_count` times in the doc (with one label after the
  vote). A new mention is exact token texts at token boundaries inside one sentence (where
  the doc has sentence starts); it never overlaps an existing entity, and longer strings are
  placed first ("New York" before "York").

Nothing is learned: the settings are the whole state and live in the config, so a saved
pipeline reloads them from its config.cfg. The pipe reads and writes `doc.ents` only
(`Doc.set_ents(..., default="unmodified")`: tokens it does not touch keep their annotation).
Whether the shipped configs use it, and with which settings, is a measured choice
(BENCHMARKS.md, "Document context by label consistency").
"""

from collections import Counter, defaultdict
from typing import Dict, List, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

FACTORY = "entity_consistency"
DEFAULT_SETTINGS = {"vote": True, "propagate": False, "min_count": 1}

Key = Tuple[str, ...]


@Language.factory(
    FACTORY, assigns=["doc.ents"], requires=["doc.ents"], default_config=DEFAULT_SETTINGS
)
def make_entity_consistency(
    nlp: Language, name: str, vote: bool, propagate: bool, min_count: int
) -> "EntityConsistency":
    """Create an `entity_consistency` component.

    vote (bool): mentions with identical token texts take their majority label (ties: unchanged).
    propagate (bool): tag the untagged exact occurrences of predicted capitalised strings.
    min_count (int): propagate only strings the model tagged at least this many times (>= 1).
    """
    return EntityConsistency(name, vote=vote, propagate=propagate, min_count=min_count)


class EntityConsistency:
    def __init__(
        self, name: str = FACTORY, *, vote: bool = True, propagate: bool = False, min_count: int = 1
    ) -> None:
        if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
            raise ValueError(
                f"[components.{name}] min_count = {min_count!r}: it must be an integer >= 1 "
                "(the number of tagged mentions a string needs before it is propagated)"
            )
        self.name = name
        self.cfg = {"vote": bool(vote), "propagate": bool(propagate), "min_count": min_count}

    def __call__(self, doc: Doc) -> Doc:
        ents = list(doc.ents)
        if not ents:
            return doc
        changed: List[Span] = []
        labels = {e.start: e.label_ for e in ents}
        if self.cfg["vote"]:
            for mentions in _by_key(ents).values():
                winner = majority([e.label_ for e in mentions])
                for e in mentions:
                    if winner is not None and e.label_ != winner:
                        labels[e.start] = winner
                        changed.append(Span(doc, e.start, e.end, label=winner, kb_id=e.kb_id))
        if self.cfg["propagate"]:
            changed += self._propagated(doc, ents, labels)
        if changed:
            doc.set_ents(changed, default="unmodified")
        return doc

    def pipe(self, docs, batch_size: int = 128):
        for doc in docs:
            yield self(doc)

    def _propagated(self, doc: Doc, ents: List[Span], labels: Dict[int, str]) -> List[Span]:
        taken: Set[int] = {i for e in ents for i in range(e.start, e.end)}
        words = [t.text for t in doc]
        starts = (
            [t.is_sent_start is True for t in doc] if doc.has_annotation("SENT_START") else None
        )
        at: Dict[str, List[int]] = defaultdict(list)  # word -> where it occurs (in order)
        for i, word in enumerate(words):
            at[word].append(i)
        new: List[Span] = []
        keys = _by_key(ents)
        # longer strings first, then by first mention: the outcome does not depend on set order
        for key in sorted(keys, key=lambda k: (-len(k), keys[k][0].start)):
            mentions = keys[key]
            text = doc[mentions[0].start : mentions[0].end].text
            if len(text) < 2 or not text[0].isupper() or len(mentions) < self.cfg["min_count"]:
                continue
            label = majority([labels[e.start] for e in mentions])
            if label is None:
                continue
            n = len(key)
            for i in at[key[0]]:  # only where the string's first word occurs: linear in the doc
                if tuple(words[i : i + n]) != key or any(j in taken for j in range(i, i + n)):
                    continue
                if starts is not None and any(starts[i + 1 : i + n]):
                    continue  # the string would cross a sentence start
                new.append(Span(doc, i, i + n, label=label))
                taken.update(range(i, i + n))
        return new


def majority(labels: List[str]):
    """The label most of `labels` carry; None when two labels tie for the most."""
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return counts[0][0]


def _by_key(ents: List[Span]) -> Dict[Key, List[Span]]:
    groups: Dict[Key, List[Span]] = defaultdict(list)
    for e in ents:
        groups[tuple(t.text for t in e)].append(e)
    return groups
