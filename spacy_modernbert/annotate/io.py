"""Input rows for `annotate`: JSONL, plain text and Parquet, each row with its line number.

Why line numbers: a reject must point at the row in the user's file ("line 1234: no 'text'
field"), and shards are addressed by where they start (a byte offset for JSONL/text, a row
index for Parquet), so any process can read its shard without the ones before it.

Invariant: every input row becomes exactly one `Row` or one `Reject`; the same function
(`iter_rows`) decides it when the run is planned and when a shard is read, so both passes agree.
Blank lines in JSONL are not rows (JSONL allows them); in plain text every line is a document,
empty lines included, so output row i is input line i.
"""

import base64
import datetime
import decimal
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

INPUT_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".parquet": "parquet",
    ".pq": "parquet",
}
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# Fields the annotation writes; an input field of the same name would be overwritten.
ANNOTATION_FIELDS = ("entities", "anomaly_score", "is_anomaly")
CATS_FIELD = "cats"
# --explain: the passages that made a row anomalous; --vectors: its float32 doc vector.
EXPLAIN_FIELD = "anomaly_spans"
VECTOR_FIELD = "vector"
# Parquet rows are checked in batches of this many (only the text column is read).
_PARQUET_CHECK_BATCH = 65536


class AnnotateInputError(ValueError):
    """The input cannot be annotated as a whole (unknown format, missing column, ...)."""


@dataclass
class Row:
    line: int
    text: str
    record: Dict[str, Any]


@dataclass
class Reject:
    line: int
    reason: str
    raw: Any = None

    def to_json(self) -> Dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass
class Span:
    """Where a shard's rows lie: bytes [start, end) for JSONL/text, rows [start, end) for Parquet."""

    start: int
    end: int
    first_line: int


@dataclass
class InputSpec:
    path: Path
    format: str
    text_field: str = "text"
    reserved: Tuple[str, ...] = ANNOTATION_FIELDS
    extra: Dict[str, Any] = field(default_factory=dict)
    prefix: str = ""  # --output-prefix: the annotation fields are written as prefix + name
    explain: bool = False  # --explain: also write EXPLAIN_FIELD
    vectors: bool = False  # --vectors: also write VECTOR_FIELD


def output_fields(
    prefix: str, cats: bool, explain: bool = False, vectors: bool = False
) -> Tuple[str, ...]:
    """The names of the fields the annotation adds to a row (an input field must not have them)."""
    optional = (CATS_FIELD, cats), (EXPLAIN_FIELD, explain), (VECTOR_FIELD, vectors)
    return tuple(prefix + name for name in ANNOTATION_FIELDS + tuple(n for n, on in optional if on))


def file_format(path: Path, formats: Dict[str, str], what: str) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(formats))
        raise AnnotateInputError(
            f"{what} {path}: unknown extension {path.suffix!r}; use one of {known}"
        )
    return fmt


def check_record(
    record: Any, line: int, text_field: str, reserved: Tuple[str, ...], raw: Any
) -> Union[Row, Reject]:
    """A parsed record -> Row, or Reject with the reason."""
    if not isinstance(record, dict):
        return Reject(line, f"not a JSON object (got {type(record).__name__})", raw)
    if text_field not in record:
        return Reject(
            line, f"no {text_field!r} field (the text field; set it with --text-field)", raw
        )
    text = record[text_field]
    if not isinstance(text, str):
        return Reject(line, f"{text_field!r} is {type(text).__name__}, not a string", raw)
    clash = [name for name in reserved if name in record]
    if clash:
        return Reject(
            line,
            f"field {clash[0]!r} would be overwritten by the annotation; rename it in the input, "
            "or pass --output-prefix (e.g. pred_) to write the annotation under other names",
            raw,
        )
    return Row(line, text, record)


def _iter_lines(
    path: Path, start: int, end: Optional[int], first_line: int
) -> Iterator[Tuple[int, bytes, int]]:
    """(line number, line without its newline, byte offset after it) from byte `start` to `end`."""
    with path.open("rb") as f:
        f.seek(start)
        offset, line = start, first_line
        for raw in f:
            if end is not None and offset >= end:
                return
            offset += len(raw)
            yield line, raw.rstrip(b"\n").rstrip(b"\r"), offset
            line += 1


def _parse_line(fmt: str, raw: bytes, line: int, spec: InputSpec) -> Union[Row, Reject, None]:
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as err:
        return Reject(
            line,
            f"not UTF-8 ({err.reason} at byte {err.start})",
            raw.decode("utf8", errors="replace"),
        )
    if fmt == "txt":
        return Row(line, text, {spec.text_field: text})
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return Reject(line, f"invalid JSON: {err.msg} (column {err.colno})", text)
    return check_record(record, line, spec.text_field, spec.reserved, text)


def require_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as err:
        raise AnnotateInputError(
            f"Parquet needs pyarrow: pip install pyarrow (it comes with spacy-modernbert[ray]) ({err})"
        ) from err
    return pyarrow


def _parquet_file(path: Path):
    require_pyarrow()
    import pyarrow.parquet as pq

    return pq.ParquetFile(str(path))


def check_parquet_schema(spec: InputSpec) -> None:
    """Schema-level problems stop the run whatever --on-error says: every row would fail."""
    import pyarrow as pa

    schema = _parquet_file(spec.path).schema_arrow
    if spec.text_field not in schema.names:
        raise AnnotateInputError(
            f"{spec.path}: no column {spec.text_field!r} (columns: {', '.join(schema.names)}); set the text column with --text-field"
        )
    kind = schema.field(spec.text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise AnnotateInputError(
            f"{spec.path}: column {spec.text_field!r} is {kind}, not a string column"
        )
    clash = [name for name in spec.reserved if name in schema.names]
    if clash:
        raise AnnotateInputError(
            f"{spec.path}: column {clash[0]!r} would be overwritten by the annotation; rename it, or pass --output-prefix (e.g. pred_)"
        )


def _iter_parquet_check(spec: InputSpec) -> Iterator[Tuple[int, Union[Row, Reject, None], int]]:
    """Planning pass over Parquet: only the text column is read; a null text is a reject."""
    row = 0
    for batch in _parquet_file(spec.path).iter_batches(
        batch_size=_PARQUET_CHECK_BATCH, columns=[spec.text_field]
    ):
        for value in batch.column(0).to_pylist():
            row += 1
            item = (
                Row(row, value, {})
                if isinstance(value, str)
                else Reject(row, f"{spec.text_field!r} is null", None)
            )
            yield row, item, row


def _json_safe(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if hasattr(value, "tolist"):  # a --vectors vector (numpy float32)
        return value.tolist()
    return str(value)


def dumps(record: Dict[str, Any]) -> str:
    """One JSONL line; values JSON lacks (Parquet timestamps, bytes, decimals) become strings."""
    return json.dumps(record, ensure_ascii=False, default=_json_safe)


def _iter_parquet_rows(spec: InputSpec, span: Span) -> Iterator[Union[Row, Reject]]:
    pf = _parquet_file(spec.path)
    meta = pf.metadata
    groups, first, offset = [], None, 0
    for i in range(meta.num_row_groups):
        n = meta.row_group(i).num_rows
        if offset < span.end and offset + n > span.start:
            groups.append(i)
            first = offset if first is None else first
        offset += n
    if not groups:
        return
    table = pf.read_row_groups(groups).slice(span.start - first, span.end - span.start)
    for i, record in enumerate(table.to_pylist()):
        line = span.start + i + 1
        yield check_record(record, line, spec.text_field, spec.reserved, dumps(record))


def iter_rows(
    spec: InputSpec, span: Optional[Span] = None
) -> Iterator[Tuple[int, Union[Row, Reject, None], int]]:
    """(line, Row | Reject | None for a blank JSONL line, position after it) over the input or a span.

    Without a span this is the planning pass (Parquet: the text column only, records empty).
    """
    if spec.format == "parquet":
        if span is None:
            yield from _iter_parquet_check(spec)
        else:
            for item in _iter_parquet_rows(spec, span):
                yield item.line, item, item.line
        return
    start, end, first = (0, None, 1) if span is None else (span.start, span.end, span.first_line)
    for line, raw, offset in _iter_lines(spec.path, start, end, first):
        yield line, _parse_line(spec.format, raw, line, spec), offset


def read_span(spec: InputSpec, span: Span) -> List[Row]:
    """The valid rows of a shard, in order (its rejects were written when the run was planned)."""
    return [item for _, item, _ in iter_rows(spec, span) if isinstance(item, Row)]
