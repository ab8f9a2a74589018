"""Text around a doc that its sentences read as context (`sentence_context`), when the doc is one
sentence cut from a longer text (a corpus of one sentence per doc, as `convert-conll` writes).

With `sentence_context = C`, each sentence's window holds up to C pieces on each side of it
(encoder/windows.py). Inside a doc those are its neighbouring sentences. A doc may also carry the
text before and after it (`set_context`, kept in `doc.user_data`, which `DocBin(store_user_data=
True)` saves): the context then continues into that text, so a sentence trained as its own doc
reads the same neighbours it has inside its paragraph. The vectors of the context text are never
output; only the doc's own pieces get vectors. Without `sentence_context` the text is ignored.

A training corpus of such docs: `convert-conll --context N` writes one doc per sentence with the
other sentences of its block recorded (`sentence_docs`), and `spacy-modernbert.ContextCorpus.v1`
(data/context_corpus.py) reads them with their context, which `spacy.Corpus.v1` drops.
"""

from typing import Any, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span

CONTEXT_KEY = "spacy_modernbert.context"


def set_context(doc: Doc, before: str = "", after: str = "") -> Doc:
    """Record the text before and after `doc` (e.g. the previous and next sentences)."""
    if not isinstance(before, str) or not isinstance(after, str):
        raise TypeError(
            f"set_context(doc, before, after) takes two strings, got {type(before).__name__} and "
            f"{type(after).__name__}."
        )
    doc.user_data[CONTEXT_KEY] = (before, after)
    return doc


def get_context(doc: Doc) -> Tuple[str, str]:
    """The (before, after) text recorded on `doc`, ("", "") if none; a malformed entry is refused."""
    value = doc.user_data.get(CONTEXT_KEY, ("", ""))
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, str) for v in value)
    ):
        raise ValueError(
            f"doc.user_data[{CONTEXT_KEY!r}] must be (text before, text after), two strings; got "
            f"{value!r} on the doc starting {doc.text[:40]!r}. Set it with "
            "spacy_modernbert.encoder.context.set_context(doc, before, after)."
        )
    return value[0], value[1]


def has_context(doc: Doc) -> bool:
    """Whether `doc` carries recorded context (`set_context`)."""
    return CONTEXT_KEY in doc.user_data


def copy_context(source: Doc, target: Doc) -> Doc:
    """Give `target` (a doc rebuilt from `source`'s text or tokens, e.g. an example's predicted
    doc) the context recorded on `source`, if any; `target` is returned."""
    if has_context(source):
        target.user_data[CONTEXT_KEY] = source.user_data[CONTEXT_KEY]
    return target


def _join(first: str, second: str) -> str:
    return " ".join(t for t in (first.strip(), second.strip()) if t)


def span_context(span: Span) -> Tuple[str, str]:
    """(text before, text after) `span` in its doc, continued by the doc's own recorded context:
    what a span cut out as a doc of its own records to keep reading its neighbours."""
    doc = span.doc
    before, after = get_context(doc)
    return _join(before, doc.text[: span.start_char]), _join(doc.text[span.end_char :], after)


def sentence_docs(doc: Doc) -> List[Doc]:
    """Each sentence of `doc` as a doc of its own (annotations kept, `Span.as_doc`), with the
    rest of `doc` (and what `doc` itself records) recorded as its context (`span_context`).
    A doc without sentence boundaries is one sentence."""
    if not doc.has_annotation("SENT_START"):
        return [doc]
    return [set_context(sent.as_doc(), *span_context(sent)) for sent in doc.sents]


def context_piece_ids(
    tokenizer: Any,
    docs: Sequence[Doc],
    n_pieces: int,
    add_prefix_space: bool,
    breaks_as_spaces: bool,
) -> List[Tuple[numpy.ndarray, numpy.ndarray]]:
    """For each doc, the last `n_pieces` (> 0) pieces of its text before and the first `n_pieces`
    of its text after (empty arrays where none was given), encoded as the doc itself is."""
    from .alignment import _WHITESPACE, encode_texts

    pairs = [get_context(doc) for doc in docs]
    texts = [t.rstrip() for before, _ in pairs for t in [before]] + [a.lstrip() for _, a in pairs]
    if breaks_as_spaces:
        texts = [_WHITESPACE.sub(" ", t) for t in texts]
    # text after the doc follows a space (a new word); text before starts as a doc would
    n = len(docs)
    encoded = encode_texts(tokenizer, texts[:n], add_prefix_space) + encode_texts(
        tokenizer, texts[n:], True
    )
    ids = [numpy.asarray(enc.ids, dtype="int64") for enc, _ in encoded]
    return [(ids[i][max(0, len(ids[i]) - n_pieces) :], ids[n + i][:n_pieces]) for i in range(n)]
