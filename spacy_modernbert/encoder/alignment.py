"""Pieces <-> spaCy tokens, from the fast tokenizer's character offsets.

A doc is encoded once, as a whole, with `add_prefix_space` semantics: the first word gets
the leading space it would have had in pretraining ("ĠHello", not "Hello"), like every
other word. Each piece maps to the spaCy tokens whose *non-whitespace* characters it
covers, so a "Ġword" piece never lands on the token before it (spaCy #13730). A token that
no piece covers (it cannot happen with byte-level BPE, but a custom tokenizer may drop
characters) falls back to the piece at its position, so every token gets a vector.

The per-doc piece sequence is `[CLS] content... [SEP]`; alignment indices point into it.
"""

import re
import threading
from dataclasses import dataclass
from typing import Any, List, Sequence

import numpy
from spacy.tokens import Doc

from .leading_space import needs_leading_space

_ENCODE_LOCK = threading.Lock()
_WHITESPACE = re.compile(r"\s")


@dataclass
class DocPieces:
    """One doc's content pieces (no specials) and its token -> piece alignment."""

    ids: numpy.ndarray  # (n_content,) int64
    strings: List[str]  # (n_content,)
    align_lengths: numpy.ndarray  # (n_tokens,) int32: pieces per token
    align_data: numpy.ndarray  # (sum(lengths),) int32: indices into [CLS] + content + [SEP]

    @property
    def n_content(self) -> int:
        return int(self.ids.shape[0])


def encode_texts(tokenizer: Any, texts: Sequence[str], add_prefix_space: bool) -> List[Any]:
    """Encode raw texts with the Rust tokenizer (no specials, no truncation), thread-safely.

    Special-token strings in the texts are encoded as ordinary text, never as special ids.

    Returns `tokenizers.Encoding` objects whose offsets refer to the *original* text.
    """
    prefixes = [1 if add_prefix_space and needs_leading_space(text) else 0 for text in texts]
    inputs = [" " + text if prefix else text for text, prefix in zip(texts, prefixes)]
    # HF fast tokenizers are not thread-safe when their state is mutated ("Already
    # borrowed"); we serialise calls, and the mutations below happen under the lock.
    backend = tokenizer.backend_tokenizer
    with _ENCODE_LOCK:
        # Users' text is plain text: "[CLS]" typed in a doc is "[", "CLS", "]", never the
        # special id, so nobody steers NER or the anomaly score by typing special tokens.
        before = backend.encode_special_tokens
        backend.encode_special_tokens = True
        # Windows are planned here, never by the tokenizer: a truncation or padding setting
        # saved in tokenizer.json would cut docs short or pad them to any declared length.
        if backend.truncation is not None:
            backend.no_truncation()
        if backend.padding is not None:
            backend.no_padding()
        try:
            encodings = backend.encode_batch(inputs, add_special_tokens=False)
        finally:
            backend.encode_special_tokens = before
    return [(enc, prefix) for enc, prefix in zip(encodings, prefixes)]


def align_doc(doc: Doc, encoding: Any, prefix: int) -> DocPieces:
    """Build the token -> piece alignment of one doc from its encoding's offsets."""
    n_tokens = len(doc)
    ids = numpy.asarray(encoding.ids, dtype="int64")
    n_pieces = ids.shape[0]
    offsets = numpy.asarray(encoding.offsets, dtype="int64").reshape(-1, 2) - prefix
    offsets = numpy.clip(offsets, 0, None)
    starts = numpy.fromiter((t.idx for t in doc), dtype="int64", count=n_tokens)
    ends = starts + numpy.fromiter((len(t) for t in doc), dtype="int64", count=n_tokens)
    if n_pieces and n_tokens:
        # first token whose end lies after the piece start; last token starting before its end
        first = numpy.searchsorted(ends, offsets[:, 0], side="right")
        last = numpy.searchsorted(starts, offsets[:, 1], side="left") - 1
        empty = offsets[:, 1] <= offsets[:, 0]
        counts = numpy.where(empty | (last < first), 0, last - first + 1)
    else:
        first = numpy.zeros((n_pieces,), dtype="int64")
        counts = numpy.zeros((n_pieces,), dtype="int64")
    total = int(counts.sum())
    piece_of_pair = numpy.repeat(numpy.arange(n_pieces), counts)
    group_start = numpy.repeat(numpy.cumsum(counts) - counts, counts)
    token_of_pair = numpy.repeat(first, counts) + (numpy.arange(total) - group_start)
    lengths = numpy.bincount(token_of_pair, minlength=n_tokens).astype("int32")
    if n_tokens and (lengths == 0).any() and n_pieces:
        orphans = numpy.nonzero(lengths == 0)[0]
        nearest = numpy.searchsorted(offsets[:, 0], starts[orphans], side="right") - 1
        nearest = numpy.clip(nearest, 0, n_pieces - 1)
        token_of_pair = numpy.concatenate([token_of_pair, orphans])
        piece_of_pair = numpy.concatenate([piece_of_pair, nearest])
        lengths[orphans] = 1
    order = numpy.argsort(token_of_pair, kind="stable")
    data = (piece_of_pair[order] + 1).astype("int32")  # +1: [CLS] comes first
    if n_tokens and not n_pieces:
        # A doc of tokens the tokenizer produced nothing for: align everything to [CLS].
        lengths = numpy.ones((n_tokens,), dtype="int32")
        data = numpy.zeros((n_tokens,), dtype="int32")
    return DocPieces(ids=ids, strings=list(encoding.tokens), align_lengths=lengths, align_data=data)


def text_to_encode(doc: Doc) -> str:
    """The doc's text without its last token's trailing whitespace.

    That whitespace belongs to no token, yet a byte-level BPE encodes it as a piece of its own
    (a lone "Ġ" before [SEP]). A doc built from words (`Doc(vocab, words=...)`, every corpus
    reader, `convert-conll`) ends with one, so every training doc carried a piece that neither
    pretraining nor a plain HF loop ever feeds the encoder and that every other piece attends
    to. Whitespace *tokens* keep their characters; only the final token's `whitespace_` goes.
    """
    text = doc.text
    if len(doc) and doc[-1].whitespace_:
        text = text[: len(text) - len(doc[-1].whitespace_)]
    return text


def tokenize_docs(
    tokenizer: Any,
    docs: Sequence[Doc],
    add_prefix_space: bool = True,
    breaks_as_spaces: bool = False,
) -> List[DocPieces]:
    """Encode a batch of docs in one tokenizer call and align each to its spaCy tokens.

    breaks_as_spaces: read every whitespace character as a space (`sentence_windows`): a
    sentence that starts after a line break then begins with the "Ġword" piece it has when it
    is encoded alone, not a bare "word" piece. Offsets are unchanged (one character for one).
    """
    texts = [text_to_encode(doc) for doc in docs]
    if breaks_as_spaces:
        texts = [_WHITESPACE.sub(" ", text) for text in texts]
    encoded = encode_texts(tokenizer, texts, add_prefix_space)
    return [align_doc(doc, enc, prefix) for doc, (enc, prefix) in zip(docs, encoded)]


def sentence_piece_starts(token_starts: Sequence[int], pieces: DocPieces) -> List[int]:
    """The content-piece index (no [CLS]) of the first piece of each sentence, given the token
    index of each sentence's first token (`sentences.sentence_token_starts`); a piece shared by
    two tokens across a boundary goes with the later sentence."""
    offsets = numpy.cumsum(pieces.align_lengths) - pieces.align_lengths
    starts = []
    for t in token_starts:
        n = int(pieces.align_lengths[t])
        if n:
            starts.append(int(pieces.align_data[offsets[t] : offsets[t] + n].min()) - 1)
    return starts
