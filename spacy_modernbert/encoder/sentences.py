"""Where a doc's sentences start, for `sentence_windows`: its own boundaries, else spaCy's rules.

A doc that carries sentence boundaries (a `sentencizer` / `senter` / `parser` before the
transformer, or a corpus with sentence starts) is split where they say. A doc without any,
which is what `nlp("a paragraph")` gives a pipeline of transformer + ner, is split by the rules
of spaCy's `sentencizer` (a sentence ends after a run of `.`, `!`, `?`... tokens) and at line
breaks (a headline, a list item), so that the shipped configs read paragraphs sentence by
sentence with no extra component. At inference
the encoder then records those sentences on the doc (`doc.sents`, as a `sentencizer` would):
the `ner` after it never opens an entity across a sentence boundary, so a paragraph's entities
are its sentences' entities. In training the docs are left as they are.
"""

from typing import List

from spacy.tokens import Doc

_RULES = None


def _rules():
    """spaCy's Sentencizer with its default punctuation, made once (it holds no weights)."""
    global _RULES
    if _RULES is None:
        from spacy.pipeline import Sentencizer

        _RULES = Sentencizer()
    return _RULES


def sentence_token_starts(doc: Doc, record: bool = False) -> List[int]:
    """Token index of each sentence's first token: the doc's own boundaries when it has any,
    else those spaCy's `sentencizer` would set, plus one after each line break; `record`: set
    them on such a doc."""
    if not len(doc):
        return []
    if doc.has_annotation("SENT_START"):
        return [sent.start for sent in doc.sents]
    guesses = _rules().predict([doc])[0]
    # a line break ends a sentence too; a sentence starts at a word, never at whitespace (a
    # start the rules put on a whitespace token moves to the next word)
    starts = [False] * len(doc)
    starts[0] = True
    seen_word, pending = not doc[0].is_space, False
    for token in doc[1:]:
        previous = doc[token.i - 1]
        pending = pending or guesses[token.i] or (previous.is_space and "\n" in previous.text)
        if token.is_space:
            continue
        starts[token.i] = pending and seen_word
        seen_word, pending = True, False
    if record:
        for token, start in zip(doc, starts):
            token.is_sent_start = start
    return [i for i, start in enumerate(starts) if start]
