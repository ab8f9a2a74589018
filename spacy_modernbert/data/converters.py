"""Corpus converters: JSONL, CoNLL IOB and the SMS Spam Collection to spaCy Docs / DocBins.

Pure functions (spaCy and the standard library only; no torch). The CLI wrappers in
`spacy_modernbert/cli/convert.py` call them and turn their `ValueError`s into clean errors.

Annotation conventions, shared by every converter (they are what `ner` and `anomaly_scorer`
read from the reference docs during training):

* NER annotated: every token is either in an entity or explicitly outside ("O").
* NER unannotated: no entities set, every token's `ent_iob` is 0 ("missing"), so `ner`
  gets no gradient for that doc (it does NOT learn "there are no entities here").
* Anomaly annotated: `doc.cats[label]` is 1.0 (anomaly) or 0.0 (normal).
* Anomaly unannotated: `label` is not in `doc.cats`; `anomaly_scorer` skips the doc.
"""

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin, Span
from spacy.training import iob_to_biluo
from spacy.vocab import Vocab

from ..anomaly import DEFAULT_LABEL
from .jsonl import read_jsonl_records
from .splits import stratified_split

TRUE_VALUES = (1, 1.0, True)
FALSE_VALUES = (0, 0.0, False)
IOB_PREFIXES = ("B-", "I-")

PathLike = Union[str, Path]


def _blank_nlp(nlp=None):
    """The pipeline whose tokenizer builds the docs (default: a blank English one)."""
    if nlp is not None:
        return nlp
    import spacy

    return spacy.blank("en")


def _snippet(text: str, start: int, end: int, width: int = 20) -> str:
    """A short piece of `text` around [start, end), for error messages."""
    left = max(0, start - width)
    right = min(len(text), end + width)
    return ("..." if left else "") + text[left:right] + ("..." if right < len(text) else "")


# ---------------------------------------------------------------------------------------
# JSONL: {"text": str, "entities": [[start, end, label], ...], "anomaly": 0|1}
# ---------------------------------------------------------------------------------------


def parse_anomaly(value: Any, where: str = "") -> Optional[float]:
    """Validate an `anomaly` value: 0/1, 0.0/1.0 or false/true -> 0.0/1.0; None -> None.

    value: the JSON value of the `anomaly` field (None when absent or null: unannotated).
    where (str): prefix for the error message, e.g. "data.jsonl: line 3".
    RETURNS (Optional[float]): 1.0 (anomaly), 0.0 (normal) or None (unannotated).
    RAISES ValueError: any other value.
    """
    if value is None:
        return None
    if isinstance(value, (bool, int, float)):
        if value in TRUE_VALUES:
            return 1.0
        if value in FALSE_VALUES:
            return 0.0
    prefix = f"{where}: " if where else ""
    raise ValueError(f"{prefix}'anomaly' must be 0 or 1 (or true/false), got {value!r}")


def _validate_entities(text: str, entities: Any, where: str) -> List[Tuple[int, int, str]]:
    """Check the shape, bounds and overlaps of `[[start, end, label], ...]`; return them sorted."""
    if not isinstance(entities, list):
        raise ValueError(
            f"{where}: 'entities' must be a list of [start, end, label], got {type(entities).__name__}"
        )
    spans = []
    for ent in entities:
        if (
            not isinstance(ent, (list, tuple))
            or len(ent) != 3
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in ent[:2])
            or not isinstance(ent[2], str)
            or not ent[2]
        ):
            raise ValueError(
                f"{where}: each entity must be [start, end, label] (int, int, non-empty str), got {ent!r}"
            )
        start, end, label = ent
        if not 0 <= start < end <= len(text):
            raise ValueError(
                f"{where}: entity [{start}, {end}, {label!r}] is out of bounds for a text of {len(text)} characters "
                f"(need 0 <= start < end <= {len(text)})"
            )
        spans.append((start, end, label))
    spans.sort()
    for (s1, e1, l1), (s2, e2, l2) in zip(spans, spans[1:]):
        if s2 < e1:
            raise ValueError(
                f"{where}: overlapping entities [{s1}, {e1}, {l1!r}] {text[s1:e1]!r} and "
                f"[{s2}, {e2}, {l2!r}] {text[s2:e2]!r}"
            )
    return spans


def _entity_span(doc: Doc, start: int, end: int, label: str, where: str) -> Span:
    """The token span for character offsets [start, end).

    Leading/trailing whitespace inside the offsets is ignored. Offsets that fall inside a
    token are only accepted if expanding them to token boundaries adds nothing but
    whitespace; otherwise the annotation and the tokenization disagree and we refuse to guess.
    """
    text = doc.text
    s, e = start, end
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s == e:
        raise ValueError(
            f"{where}: entity [{start}, {end}, {label!r}] covers only whitespace: {_snippet(text, start, end)!r}"
        )
    span = doc.char_span(s, e, label=label)
    if span is not None:
        return span
    expanded = doc.char_span(s, e, label=label, alignment_mode="expand")
    if expanded is not None and expanded.text.strip() == text[s:e]:
        return expanded
    got = f"; token boundaries would make it {expanded.text!r}" if expanded is not None else ""
    raise ValueError(
        f"{where}: entity [{start}, {end}, {label!r}] = {text[start:end]!r} does not align with token "
        f"boundaries in {_snippet(text, start, end)!r}{got}"
    )


def record_to_doc(
    nlp,
    record: Dict[str, Any],
    label: str = DEFAULT_LABEL,
    where: str = "record",
) -> Doc:
    """Build one reference Doc from a JSONL record.

    nlp: a spaCy pipeline whose tokenizer is used (only `nlp.make_doc` is called).
    record (dict): `{"text": str, "entities": [[start, end, label], ...], "anomaly": 0|1}`.
        `entities` absent or null: NER unannotated (all tokens missing); `[]`: annotated,
        no entities (all tokens "O"). `anomaly` absent or null: no `doc.cats` label.
        Offsets are character offsets into `text`, end exclusive. Other keys are ignored.
    label (str): the doc.cats label for the anomaly flag.
    where (str): where the record comes from, for error messages.
    RETURNS (Doc): the doc, with `doc.ents` and/or `doc.cats[label]` set.
    RAISES ValueError: missing/non-string text, malformed, out-of-bounds, overlapping or
        misaligned entities, or an anomaly value other than 0/1.
    """
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    entities = record.get("entities")
    spans = None if entities is None else _validate_entities(text, entities, where)
    anomaly = parse_anomaly(record.get("anomaly"), where)
    doc = nlp.make_doc(text)
    if spans is not None:
        ents = [_entity_span(doc, start, end, ent_label, where) for start, end, ent_label in spans]
        for prev, cur in zip(ents, ents[1:]):
            if cur.start < prev.end:  # only possible after expanding to token boundaries
                raise ValueError(
                    f"{where}: entities {prev.text!r} and {cur.text!r} overlap after aligning to tokens"
                )
        doc.set_ents(ents, default="outside")
    if anomaly is not None:
        doc.cats[label] = anomaly
    return doc


def jsonl_to_docs(path: PathLike, label: str = DEFAULT_LABEL, nlp=None) -> List[Doc]:
    """Read a JSONL corpus into reference Docs (see `record_to_doc` for the format).

    path (str | Path): the JSONL file.
    label (str): the doc.cats label for the anomaly flag.
    nlp: the pipeline whose tokenizer is used (default: `spacy.blank("en")`).
    RETURNS (List[Doc]): one doc per non-blank line.
    RAISES ValueError: a bad line (named by its line number) or a file without documents.
    """
    nlp = _blank_nlp(nlp)
    docs = [
        record_to_doc(nlp, record, label, where=f"{path}: line {line_no}")
        for line_no, record in read_jsonl_records(path)
    ]
    if not docs:
        raise ValueError(f"{path}: no documents (the file is empty)")
    return docs


# ---------------------------------------------------------------------------------------
# CoNLL IOB: "WORD TAG 0" per line, blank line between sentences
# ---------------------------------------------------------------------------------------


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
    vocab = vocab if vocab is not None else _blank_nlp().vocab
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


# ---------------------------------------------------------------------------------------
# SMS Spam Collection: "ham|spam<TAB>text"
# ---------------------------------------------------------------------------------------


def read_sms(path: PathLike, limit: Optional[int] = None) -> List[Tuple[str, bool]]:
    """Read the SMS Spam Collection: `(text, is_spam)` per non-blank line.

    path (str | Path): the TSV file (`ham` or `spam`, a tab, the message).
    limit (Optional[int]): read at most this many messages.
    RETURNS (List[Tuple[str, bool]]): the messages in file order.
    RAISES ValueError: a line without a tab, with a label other than ham/spam or with an
        empty message (named by its line number), or a file without messages.
    """
    out: List[Tuple[str, bool]] = []
    with Path(path).open("r", encoding="utf8") as file_:
        for line_no, line in enumerate(file_, start=1):
            if limit is not None and len(out) >= limit:
                break
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(
                    f"{path}: line {line_no}: expected 'ham<TAB>text' or 'spam<TAB>text', got {line[:60]!r}"
                )
            tag, text = line.split("\t", 1)
            tag = tag.strip().lower()
            if tag not in ("ham", "spam"):
                raise ValueError(
                    f"{path}: line {line_no}: label must be 'ham' or 'spam', got {tag!r}"
                )
            if not text.strip():
                raise ValueError(f"{path}: line {line_no}: empty message")
            out.append((text, tag == "spam"))
    if not out:
        raise ValueError(f"{path}: no documents (no messages found)")
    return out


def sms_to_docs(
    path: PathLike,
    dev_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
    limit: Optional[int] = None,
    label: str = DEFAULT_LABEL,
    nlp=None,
) -> Dict[str, List[Doc]]:
    """Convert the SMS Spam Collection into stratified train/dev/test Docs (spam = anomaly).

    Each doc gets `doc.cats[label]` = 1.0 (spam) or 0.0 (ham); NER stays unannotated
    (no entities set, all tokens missing).

    path (str | Path): the TSV file.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    seed (int): the seed of the split.
    limit (Optional[int]): read at most this many messages.
    label (str): the doc.cats label.
    nlp: the pipeline whose tokenizer is used (default: `spacy.blank("en")`).
    RETURNS (Dict[str, List[Doc]]): {"train": [...], "dev": [...], "test": [...]}.
    RAISES ValueError: a malformed line or bad fractions.
    """
    messages = read_sms(path, limit=limit)
    splits = stratified_split([is_spam for _, is_spam in messages], dev_frac, test_frac, seed)
    nlp = _blank_nlp(nlp)
    out: Dict[str, List[Doc]] = {}
    for name, indices in zip(("train", "dev", "test"), splits):
        docs = []
        for i in indices:
            text, is_spam = messages[i]
            doc = nlp.make_doc(text)
            doc.cats[label] = 1.0 if is_spam else 0.0
            docs.append(doc)
        out[name] = docs
    return out


# ---------------------------------------------------------------------------------------
# DocBin I/O, merging and summaries
# ---------------------------------------------------------------------------------------


def docs_to_docbin(docs: Iterable[Doc]) -> DocBin:
    """A DocBin (without user data) holding `docs`, with their entities, missing status and cats.

    docs (Iterable[Doc]): the docs.
    RETURNS (DocBin): the DocBin.
    """
    doc_bin = DocBin(store_user_data=False)
    for doc in docs:
        doc_bin.add(doc)
    return doc_bin


def write_docbin(docs: Iterable[Doc], path: PathLike) -> Path:
    """Write `docs` to a `.spacy` file, creating its directory.

    docs (Iterable[Doc]): the docs.
    path (str | Path): the output file.
    RETURNS (Path): the output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    docs_to_docbin(docs).to_disk(path)
    return path


def read_docbin(path: PathLike, vocab: Optional[Vocab] = None) -> List[Doc]:
    """Read the docs of a `.spacy` file.

    path (str | Path): the file.
    vocab (Optional[Vocab]): the vocab (default: a new empty one).
    RETURNS (List[Doc]): the docs.
    """
    vocab = vocab if vocab is not None else Vocab()
    return list(DocBin().from_disk(path).get_docs(vocab))


def merge_docbins(paths: Sequence[PathLike], vocab: Optional[Vocab] = None) -> List[Doc]:
    """Concatenate the docs of several `.spacy` files, in order.

    Entities, missing-NER status, sentence starts and cats are kept, so NER-only and
    anomaly-only corpora can be trained together on one shared encoder.

    paths (Sequence[str | Path]): the input files.
    vocab (Optional[Vocab]): the vocab (default: a new empty one).
    RETURNS (List[Doc]): all docs.
    RAISES ValueError: no inputs.
    """
    if not paths:
        raise ValueError("no input corpora to merge")
    vocab = vocab if vocab is not None else Vocab()
    docs: List[Doc] = []
    for path in paths:
        docs.extend(read_docbin(path, vocab))
    return docs


def ner_is_annotated(doc: Doc) -> bool:
    """Whether a reference doc has NER annotation (no token has a missing entity tag).

    doc (Doc): the doc.
    RETURNS (bool): True if every token is in an entity or explicitly "O".
    """
    return all(token.ent_iob != 0 for token in doc)


def corpus_summary(docs: Sequence[Doc], label: Optional[str] = DEFAULT_LABEL) -> Dict[str, Any]:
    """Counts that describe a corpus: docs, NER-annotated docs, entity labels, anomaly labels.

    docs (Sequence[Doc]): the docs.
    label (Optional[str]): the anomaly doc.cats label (None: count nothing).
    RETURNS (dict): n_docs, n_ner_annotated, entity_labels (label -> count),
        n_anomaly_annotated, n_anomalies.
    """
    entity_labels: Counter = Counter()
    n_ner = 0
    n_cats = 0
    n_anom = 0
    for doc in docs:
        if len(doc) and ner_is_annotated(doc):
            n_ner += 1
        entity_labels.update(ent.label_ for ent in doc.ents)
        if label is not None and label in doc.cats:
            n_cats += 1
            n_anom += int(doc.cats[label] >= 0.5)
    return {
        "n_docs": len(docs),
        "n_ner_annotated": n_ner,
        "entity_labels": dict(sorted(entity_labels.items())),
        "n_anomaly_annotated": n_cats,
        "n_anomalies": n_anom,
    }
