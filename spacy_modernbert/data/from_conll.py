"""The CoNLL IOB converter: "WORD TAG 0" per line, a blank line between sentences, to Docs.

Split from `converters.py` (issue 25: one idea per module; the annotation conventions all
converters share are stated there). Pure functions (spaCy only).

Invariant: every token of a converted doc is in an entity or explicitly outside ("O"), IOB1
tags are read as IOB2, and a malformed line is a `ValueError` naming its line.
"""

from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc
from spacy.training import iob_to_biluo
from spacy.vocab import Vocab

from .docbins import blank_nlp

IOB_PREFIXES = ("B-", "I-")

PathLike = Union[str, Path]


def _is_tag(value: str) -> bool:
    return value == "O" or (value[:2] in IOB_PREFIXES and len(value) > 2)


def read_conll_sentences(
    path: PathLike, limit: Optional[int] = None
) -> Iterator[Optional[List[Tuple[str, str]]]]:
    """Yield the sentences of a CoNLL IOB file as lists of `(word, tag)`.

    Lines are `WORD TAG 0` (or `WORD TAG`, or CoNLL-2003's `WORD POS CHUNK TAG`: the NER
    tag is the last column when that is a tag, otherwise the second). A blank line ends
    a sentence. A `-DOCSTART-` line yields None (a document boundary).

    path (str | Path): the file.
    limit (Optional[int]): stop after this many sentences.
    YIELDS (Optional[List[Tuple[str, str]]]): a sentence, or None at a document boundary.
    RAISES ValueError: a line without a valid IOB tag (named by its line number).
    """
    if limit is not None and limit <= 0:
        return
    n_sents = 0
    sentence: List[Tuple[str, str]] = []
    with Path(path).open("r", encoding="utf8") as file_:
        for line_no, line in enumerate(file_, start=1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if sentence:
                    yield sentence
                    n_sents += 1
                    sentence = []
                    if limit is not None and n_sents >= limit:
                        return
                if parts:
                    yield None
                continue
            if len(parts) < 2:
                raise ValueError(
                    f"{path}: line {line_no}: expected 'WORD TAG', got {line.rstrip()!r}"
                )
            tag = parts[-1] if _is_tag(parts[-1]) else parts[1]
            if not _is_tag(tag):
                raise ValueError(
                    f"{path}: line {line_no}: {tag!r} is not an IOB tag (O, B-TYPE or I-TYPE) in {line.rstrip()!r}"
                )
            sentence.append((parts[0], tag))
    if sentence:
        yield sentence


def iob1_to_iob2(tags: Sequence[str]) -> List[str]:
    """Normalise IOB tags to IOB2: an `I-X` that starts an entity becomes `B-X`.

    tags (Sequence[str]): one sentence's tags (IOB1 or IOB2).
    RETURNS (List[str]): IOB2 tags.
    """
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def conll_sentences_to_doc(vocab: Vocab, sentences: Sequence[Sequence[Tuple[str, str]]]) -> Doc:
    """One Doc from sentences of `(word, tag)`: sentence starts set, entities from the tags.

    vocab (Vocab): the vocab of the doc.
    sentences: the sentences; tags may be IOB1 or IOB2.
    RETURNS (Doc): words joined by single spaces, every token O or in an entity, no cats.
    """
    words: List[str] = []
    tags: List[str] = []
    sent_starts: List[bool] = []
    for sentence in sentences:
        for i, (word, _) in enumerate(sentence):
            words.append(word)
            sent_starts.append(i == 0)
        tags.extend(iob1_to_iob2([tag for _, tag in sentence]))
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    iob_to_biluo(tags)  # validates the sequence (raises on malformed tags)
    return Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts, ents=tags)


def conll_to_docs(
    path: PathLike, n_sents: int = 1, limit: Optional[int] = None, vocab: Optional[Vocab] = None
) -> List[Doc]:
    """Convert a CoNLL IOB file to Docs of `n_sents` sentences each (NER only, no cats).

    path (str | Path): the CoNLL file.
    n_sents (int): sentences per doc; a `-DOCSTART-` line also ends a doc.
    limit (Optional[int]): read at most this many sentences.
    vocab (Optional[Vocab]): the vocab (default: a blank English pipeline's).
    RETURNS (List[Doc]): the docs.
    RAISES ValueError: n_sents < 1, a malformed line, or no sentences at all.
    """
    if n_sents < 1:
        raise ValueError(f"n_sents must be at least 1, got {n_sents}")
    vocab = vocab if vocab is not None else blank_nlp().vocab
    docs = []
    group: List[List[Tuple[str, str]]] = []
    for sentence in read_conll_sentences(path, limit=limit):
        if sentence is not None:
            group.append(sentence)
        if group and (sentence is None or len(group) >= n_sents):
            docs.append(conll_sentences_to_doc(vocab, group))
            group = []
    if group:
        docs.append(conll_sentences_to_doc(vocab, group))
    if not docs:
        raise ValueError(f"{path}: no documents (no sentences found)")
    return docs


def carve_tail(
    docs: Sequence[Doc], fraction: float, what: str = "--dev-frac"
) -> Tuple[List[Doc], List[Doc]]:
    """Split docs into (head, tail): the last `fraction` of them, in file order, as a dev split.

    A fixed tail, not a random draw, so that consecutive sentences of one article stay on one
    side (CoNLL train is in reading order) and every run carves the same dev split.
    RAISES ValueError: fraction outside (0, 1), or a side that would be empty.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"{what} must lie strictly between 0 and 1, got {fraction}")
    n_tail = round(fraction * len(docs))
    if n_tail < 1 or n_tail >= len(docs):
        raise ValueError(
            f"{what} {fraction} of {len(docs)} docs leaves an empty split: use more docs or another fraction"
        )
    return list(docs[:-n_tail]), list(docs[-n_tail:])
