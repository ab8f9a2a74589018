"""What a request may ask of the service: size limits, and a pre-check that bounds time.

Size alone does not bound time. spaCy's English tokenizer splits a run of symbols with no
whitespace one prefix/suffix at a time and re-matches the rest of the run after each split,
worse than quadratically: 1,000 distinct emoji in a row take 0.2 s, 2,000 take 1 s and
10,000 take 83 s (measured upstream, spaCy 3.8). A run of letters or digits is one token
and is cheap at any length ("a" * 20000: 1 ms). So besides the character limits a text may
not contain more than `max_symbol_run` consecutive characters that are neither whitespace
nor letters/digits (even "=" * 2000 takes 1.3 s). With the default (100, so an 80-column
separator line passes) the worst allowed text, 100,000 characters of distinct emoji and
brackets in runs of 100, tokenizes in about 2.3 s on one core (measured on our 2-core CI
machine), against 83 s for the 10,000-emoji run it refuses.

Invariant: `check_texts` either returns the texts unchanged or raises `LimitError` naming the
limit, the offending text's index and the setting that changes it; it never alters a text
(no silent truncation or replacement). Lone surrogates (a JSON "\\ud800" escape, which
`json.loads` accepts) are refused: they cannot be encoded as UTF-8 and would crash the
Hugging Face tokenizer deep inside the pipeline.

No FastAPI import here: the limits are plain Python, shared by the app and its tests.
"""

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

# The longest run of characters that are neither whitespace nor letters/digits (\w).
_SYMBOL_RUN = re.compile(r"[^\s\w]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Limits:
    """Limits of one service. Every field is a `serve` command option of the same name."""

    max_text_chars: int = 100_000
    max_request_chars: int = 200_000
    max_texts: int = 256
    max_request_bytes: int = 2_000_000
    max_symbol_run: int = 100
    max_queued_chars: int = 2_000_000
    timeout: float = 60.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value or value <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {value!r}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class LimitError(Exception):
    """A request over a limit or with invalid content: HTTP `status`, and which `limit`."""

    def __init__(
        self,
        status: int,
        limit: str,
        message: str,
        index: Optional[int] = None,
        retry_after: Optional[int] = None,
    ):
        super().__init__(message)
        self.status = status
        self.limit = limit
        self.message = message
        self.index = index
        self.retry_after = retry_after

    def to_dict(self) -> Dict[str, Any]:
        error: Dict[str, Any] = {"limit": self.limit, "message": self.message}
        if self.index is not None:
            error["index"] = self.index
        return {"error": error}


def parse_texts(payload: Any, limits: Limits) -> List[str]:
    """The texts of an /annotate body: {"text": str} or {"texts": [str, ...]}; 422 otherwise."""
    if not isinstance(payload, dict):
        raise LimitError(
            422,
            "body",
            f'The body must be a JSON object {{"text": ...}} or {{"texts": [...]}}, got {type(payload).__name__}',
        )
    unknown = sorted(set(payload) - {"text", "texts", "html", "explain"})
    if unknown:
        raise LimitError(
            422,
            "body",
            f"Unknown field(s) {unknown}: use 'text' (one string) or 'texts' (a list of strings), and optionally 'html' and 'explain'",
        )
    if ("text" in payload) == ("texts" in payload):
        raise LimitError(
            422, "body", "Give exactly one of 'text' (one string) or 'texts' (a list of strings)"
        )
    for flag in ("html", "explain"):
        if flag in payload and not isinstance(payload[flag], bool):
            raise LimitError(422, "body", f"'{flag}' must be true or false, got {payload[flag]!r}")
    if "text" in payload:
        if not isinstance(payload["text"], str):
            raise LimitError(
                422, "body", f"'text' must be a string, got {type(payload['text']).__name__}"
            )
        return [payload["text"]]
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise LimitError(
            422, "body", f"'texts' must be a list of strings, got {type(texts).__name__}"
        )
    if not texts:
        raise LimitError(422, "body", "'texts' is empty: send at least one text")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise LimitError(
                422, "body", f"texts[{i}] must be a string, got {type(text).__name__}", index=i
            )
    return texts


def check_texts(texts: List[str], limits: Limits) -> List[str]:
    """Refuse texts over the limits (413) or that cannot be processed safely (422)."""
    if len(texts) > limits.max_texts:
        raise LimitError(
            413,
            "max_texts",
            f"{len(texts)} texts in one request; the limit is {limits.max_texts} (serve --max-texts)",
        )
    total = 0
    for i, text in enumerate(texts):
        n = len(text)
        if n > limits.max_text_chars:
            raise LimitError(
                413,
                "max_text_chars",
                f"Text {i} has {n} characters; the limit is {limits.max_text_chars} (serve --max-text-chars): split it",
                index=i,
            )
        total += n
        surrogate = _SURROGATE.search(text)
        if surrogate is not None:
            raise LimitError(
                422,
                "unicode",
                f"Text {i} has a lone surrogate U+{ord(surrogate.group()):04X} at character {surrogate.start()}: it is not valid Unicode text (send UTF-8)",
                index=i,
            )
        run = _longest_symbol_run(text)
        if run is not None and run[1] - run[0] > limits.max_symbol_run:
            start, end = run
            raise LimitError(
                422,
                "max_symbol_run",
                f"Text {i} has {end - start} consecutive symbols without a space or letter (characters {start}-{end}); "
                f"the limit is {limits.max_symbol_run} (serve --max-symbol-run), because spaCy's tokenizer takes "
                f"super-quadratic time on such runs",
                index=i,
            )
    if total > limits.max_request_chars:
        raise LimitError(
            413,
            "max_request_chars",
            f"The request has {total} characters in all; the limit is {limits.max_request_chars} (serve --max-request-chars): send fewer texts per request",
        )
    return texts


def _longest_symbol_run(text: str) -> Optional[tuple]:
    best = None
    for match in _SYMBOL_RUN.finditer(text):
        if best is None or match.end() - match.start() > best[1] - best[0]:
            best = (match.start(), match.end())
    return best
