"""JSONL files: one JSON object per line, UTF-8 (standard library only).

Reading names the line of a bad record; writing is compact, unescaped and deterministic,
so a regenerated corpus is byte-identical to the committed one.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterator, Sequence, Tuple, Union

PathLike = Union[str, Path]


def read_jsonl_records(path: PathLike) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """Yield `(line_number, record)` for every non-blank line of a JSONL file.

    path (str | Path): the JSONL file (UTF-8).
    YIELDS (Tuple[int, dict]): the 1-based line number and the parsed JSON object.
    RAISES ValueError: a line that is not valid JSON or not a JSON object (names the line).
    """
    with Path(path).open("r", encoding="utf8") as file_:
        for line_no, line in enumerate(file_, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path}: line {line_no}: invalid JSON ({err.msg} at column {err.colno})"
                ) from None
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}: line {line_no}: expected a JSON object, got {type(record).__name__}"
                )
            yield line_no, record


def dumps_jsonl(records: Sequence[Dict[str, object]]) -> str:
    """Serialise records as JSONL text (one compact JSON object per line, UTF-8, not escaped).

    records (Sequence[dict]): the records.
    RETURNS (str): the file content, ending with a newline.
    """
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_jsonl(records: Sequence[Dict[str, object]], path: Union[str, Path]) -> Path:
    """Write records to a JSONL file (UTF-8), creating its directory.

    records (Sequence[dict]): the records.
    path (str | Path): the output file.
    RETURNS (Path): the output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_jsonl(records), encoding="utf8")
    return path
