"""The JSONL converter: `{"text", "entities": [[start, end, label], ...], "anomaly"}` records to Docs.

Split from `converters.py` (issue 25: one idea per module; the annotation conventions all
converters share are stated there). Pure functions (spaCy and the standard library only).

Invariant: entity offsets must fall on token boundaries of the tokenizer that builds the doc;
a bad record is a `ValueError` naming its line and a snippet of the text, never a silent
misalignment or a dropped entity.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from spacy.tokens import Doc, Span

from ..anomaly import DEFAULT_LABEL
from .docbins import blank_nlp
from .jsonl import read_jsonl_records

TRUE_VALUES = (1, 1.0, True)
FALSE_VALUES = (0, 0.0, False)

PathLike = Union[str, Path]


def _snippet(text: str, start: int, end: int, width: int = 20) -> str:
    """A short piece of `text` around [start, end), for error messages."""
    left = max(0, start - width)
    right = min(len(text), end + width)
    return ("..." if left else "") + text[left:right] + ("..." if right < len(text) else "")


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
    nlp = blank_nlp(nlp)
    docs = [
        record_to_doc(nlp, record, label, where=f"{path}: line {line_no}")
        for line_no, record in read_jsonl_records(path)
    ]
    if not docs:
        raise ValueError(f"{path}: no documents (the file is empty)")
    return docs
