"""Where a doc's sentences start, for `sentence_windows`: its own boundaries, else rules.

A doc that carries sentence boundaries (a `sentencizer` / `senter` / `parser` before the
transformer, or a corpus with sentence starts) is split where they say, whatever the rules.
A doc without any, which is what `nlp("a paragraph")` gives a pipeline of transformer + ner,
is split by rules, so that the shipped configs read paragraphs sentence by sentence with no
extra component. Two rule sets (the encoder's `sentence_rules` setting):

- "sentencizer" (the architecture's default, so that a pipeline saved before "news" existed
  reads as it did): spaCy's `sentencizer` (a sentence ends after a run of `.`, `!`, `?`...
  tokens, with every punctuation token that follows them) and a line break.
- "news" (what the shipped configs set): the same final punctuation and line breaks, plus what a paragraph of news
  copy pasted without its line breaks still shows (chosen on the dev split of CoNLL-2003
  train, BENCHMARKS.md "Paragraphs on the shipped path"):
  - after the final punctuation, only closing punctuation stays with the sentence (`)`, `]`,
    a closing quote: a straight `"` that closes one opened in the sentence); an opening quote,
    bracket or dash starts the next sentence (`... he said . " We will ...` starts at `"`);
  - a dateline, an all-caps place (with `, Region` parts) and an ISO date
    (`BUCHAREST 1996-08-29`, `NICE , France 1996-08-29`), is a sentence of its own: one
    starts before it and after it.
  No "news" boundary falls inside a word that spaCy's tokenizer cut (a token with no space
  before it, as the hyphen of `ALKHAN-YURT`). Every rule only adds a boundary where a cue is strong; where in doubt two sentences stay
  in one window (a merged window costs little, a cut inside an entity would lose it).

At inference the encoder records the sentences on the doc (`doc.sents`, as a `sentencizer`
would): the `ner` after it never opens an entity across a sentence boundary, so a paragraph's
entities are its sentences' entities. In training the docs are left as they are.
"""

import re
from typing import List

from spacy.tokens import Doc

RULE_SETS = ("news", "sentencizer")
# the default of the registered v1 architectures: a config without `sentence_rules` (every
# pipeline saved before the setting existed) keeps the behaviour it was trained with; the
# shipped configs set "news" explicitly
DEFAULT_RULES = "sentencizer"

_SENTENCIZER = None
# after a sentence's final punctuation: tokens that close it (a straight quote only when the
# sentence opened one); anything else starts the next sentence under the "news" rules
_CLOSING = {")", "]", "}", "''", "\u201d", "\u2019", "\u00bb", "'"}
_STRAIGHT_QUOTE = '"'
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATELINE_REACH = 6  # tokens a dateline's place may have before its date


def _sentencizer():
    """spaCy's Sentencizer with its default punctuation, made once (it holds no weights)."""
    global _SENTENCIZER
    if _SENTENCIZER is None:
        from spacy.pipeline import Sentencizer

        _SENTENCIZER = Sentencizer()
    return _SENTENCIZER


def check_rules(rules: str) -> None:
    if rules not in RULE_SETS:
        raise ValueError(
            f"sentence_rules must be one of {RULE_SETS} (how a doc without sentence boundaries "
            f"is split under sentence_windows = true), got {rules!r}."
        )


def _news_guesses(doc: Doc) -> List[bool]:
    """Token i starts a sentence by the "news" rules (before line breaks and whitespace)."""
    final = set(_sentencizer().punct_chars)
    n = len(doc)
    guesses = [False] * n
    seen_final, quote_open = False, False
    for token in doc:
        text = token.text
        if seen_final:
            if text in final:
                continue
            if text in _CLOSING or (text == _STRAIGHT_QUOTE and quote_open):
                quote_open = quote_open and text != _STRAIGHT_QUOTE
                continue
            guesses[token.i] = True
            seen_final, quote_open = False, False
        if text in final:
            seen_final = True
        elif text == _STRAIGHT_QUOTE:
            quote_open = not quote_open
    # a sentence never starts inside a word that spaCy's tokenizer cut (no space before it)
    for token in doc[1:]:
        if guesses[token.i] and _inside_word(doc, token.i):
            guesses[token.i] = False
    # punctuation that ends the doc stays with the last sentence (`... he said . "`)
    for token in reversed(doc):
        if not (token.is_punct or token.is_space):
            break
        guesses[token.i] = False
    for token in doc:
        end = _date_end(doc, token.i)
        if end is None:
            continue
        first = _dateline_start(doc, token.i)
        if first is None:
            continue
        if first > 0:
            guesses[first] = True
        if end + 1 < n:
            guesses[end + 1] = True
    return guesses


def _inside_word(doc: Doc, i: int) -> bool:
    """Token i continues the token before it, with no whitespace between (`ALKHAN-YURT`)."""
    return i > 0 and not doc[i - 1].whitespace_ and not doc[i - 1].is_space


def _date_end(doc: Doc, i: int):
    """The last token of an ISO date (`1996-08-30`) that starts at token i: one token, as in
    corpora such as CoNLL, or the five that spaCy's tokenizer makes of it; None if none."""
    if _ISO_DATE.match(doc[i].text):
        return i
    parts = [t.text for t in doc[i : i + 5]]
    if (
        len(parts) == 5
        and _ISO_DATE.match("".join(parts))
        and not any(t.whitespace_ for t in doc[i : i + 4])
    ):
        return i + 4
    return None


def _dateline_start(doc: Doc, date: int):
    """The first token of the dateline ending at the date token `date`: an all-caps word,
    then words, commas and abbreviations (`NICE , France`, `CHARLESTON , S.C.`), at most
    `_DATELINE_REACH` tokens; None when the tokens before the date are not a place."""
    first = None
    for i in range(date - 1, max(-1, date - 1 - _DATELINE_REACH), -1):
        text = doc[i].text
        if text == "," or (text == "-" and _inside_word(doc, i)):
            continue  # `NICE , France`; the hyphen of `ALKHAN-YURT` as spaCy's tokenizer cuts it
        if not (text[:1].isupper() and text.replace(".", "").replace("-", "").isalpha()):
            break
        if text.isupper() and len(text) > 1:
            first = i
        elif first is not None:
            break  # a Titlecase word before the all-caps place belongs to the sentence before
    return first


def sentence_token_starts(doc: Doc, record: bool = False, rules: str = DEFAULT_RULES) -> List[int]:
    """Token index of each sentence's first token: the doc's own boundaries when it has any,
    else those of `rules` ("news" | "sentencizer", module docstring), plus one after each line
    break; `record`: set them on such a doc."""
    check_rules(rules)
    if not len(doc):
        return []
    if doc.has_annotation("SENT_START"):
        return [sent.start for sent in doc.sents]
    if rules == "sentencizer":
        guesses = _sentencizer().predict([doc])[0]
    else:
        guesses = _news_guesses(doc)
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
