"""The bytes of `POST /annotate`: the body read under its limit, JSON in and out, error bodies.

Why here and not FastAPI's: every bad body gets its own clear JSON error
`{"error": {"limit": ..., "message": ...}}` (`limits.LimitError`): a body over
`max_request_bytes` is refused while it streams in (413), non-UTF-8 bytes and invalid JSON
are 422 (FastAPI's own parser would accept UTF-8-encoded surrogates). JSON goes through
`orjson` when it is installed (the `serve` extra installs it), the standard library's `json`
otherwise.

Invariants: `decode_json` and `encode_json` give the same values and the same refusals with
and without orjson (tests/serve/test_json.py); a body is never read past `max_bytes`.
Plain asyncio/ASGI: no FastAPI import here (app.py is the only user).
"""

import json
from typing import Any, Dict, List, Optional, Tuple

from .limits import LimitError

try:  # optional: several times faster than json for our bodies; the serve extra installs it
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None


class Disconnected(Exception):
    """The client went away before its body was read."""


async def receive_body(scope, receive, max_bytes: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `max_bytes`."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value.decode("latin1")
            if declared.isdigit() and int(declared) > max_bytes:
                raise LimitError(
                    413,
                    "max_request_bytes",
                    f"The body has {declared} bytes; the limit is {max_bytes} (serve --max-request-bytes)",
                )
            break
    chunks: List[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise LimitError(
                413,
                "max_request_bytes",
                f"The body exceeds {max_bytes} bytes (serve --max-request-bytes)",
            )
        chunks.append(chunk)
        if not message.get("more_body", False):  # usually the first message: no copy then
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse writes it (orjson writes NaN as null)."""
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf8"
    )


def decode_json(body: bytes) -> Any:
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if orjson is not None:
        try:  # the fast path for valid bodies; every refusal is explained by the path below
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # also what json accepts and orjson does not (NaN, "\ud800" escapes, deep nesting)
    try:
        text = body.decode("utf8")  # strict: also refuses UTF-8-encoded surrogates
    except UnicodeDecodeError as err:
        raise LimitError(
            422,
            "unicode",
            f"The body is not valid UTF-8: byte {body[err.start]:#04x} at position {err.start}; send JSON encoded as UTF-8",
        ) from None
    if not text.strip():
        raise LimitError(
            422, "body", 'The body is empty: send JSON {"text": "..."} or {"texts": ["...", ...]}'
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise LimitError(
            422,
            "json",
            f"The body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
        ) from None
    except RecursionError:
        raise LimitError(422, "json", "The body's JSON is nested too deeply") from None


def error_parts(err: LimitError) -> Tuple[int, bytes, Optional[Dict[str, str]]]:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    return err.status, encode_json(err.to_dict()), headers
