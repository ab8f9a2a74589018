"""The HTTP service of a loaded pipeline: FastAPI app, JSON results, the demo page.

Endpoints: `POST /annotate` (one text or a list -> entities with character offsets and
labels, `anomaly_score`, `is_anomaly`, `cats`; with `"html": true` also displaCy's entity
HTML; with `"explain": true` also `anomaly_spans`, the passages that made it anomalous), `GET /health`, `GET /metadata` (pipeline name, version, components, labels, anomaly
threshold, limits), `GET /examples` (the demo page's example texts), `GET /` (the demo
page, plain HTML from `static/index.html`), the OpenAPI schema at `/openapi.json` and a
self-contained API reference at `/docs` (rendered here from that schema: FastAPI's Swagger UI
loads its scripts from a CDN and is blank offline, so it is turned off).

The body of /annotate is read and decoded by wire.py, not by FastAPI, so that every bad
input gets its own clear JSON error (413 over `max_request_bytes`, 422 for bad UTF-8 or
JSON), then `limits.parse_texts` / `limits.check_texts` apply. Accepted texts go to the `MicroBatcher`;
a full queue is 503 with Retry-After; a request not answered within `timeout` seconds is 503
too (its job is dropped if the worker has not started it). Only the worker thread touches
`nlp`.

Per-request cost matters: with a small encoder a sentence costs the pipeline about a
millisecond, the same order as the HTTP and event-loop work around it. So `POST /annotate`
is answered on the raw ASGI interface before FastAPI's middleware and router (the FastAPI
route with the same implementation stays, for the OpenAPI docs), the handler awaits
the batcher's asyncio future directly (the batcher resolves a whole batch's futures in one
event-loop callback), the time budget is one `loop.call_later` timer (not `wait_for` +
`shield`, which create several objects and callbacks per request), and JSON goes through
`orjson` when it is installed (wire.py).

Imported only by `serve` (it imports FastAPI at module level): the rest of the package never
imports it, so FastAPI stays an optional extra.
"""

import asyncio
import html as html_lib
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from spacy.language import Language
from spacy.tokens import Doc

from ..anomaly.explain import refusal as explain_refusal
from ..anomaly.explain import span_records
from .batcher import Closed, MicroBatcher, QueueFull
from .limits import LimitError, Limits, check_texts, parse_texts
from .wire import Disconnected, decode_json, encode_json, error_parts, receive_body

STATIC = Path(__file__).parent / "static"
# displaCy colours for labels it does not know (it greys them all otherwise), in label order.
PALETTE = (
    "#7aecec",
    "#bfeeb7",
    "#feca74",
    "#ff9561",
    "#aa9cfc",
    "#c887fb",
    "#9cc9cc",
    "#ffeb80",
    "#ff8197",
    "#f0d0ff",
    "#bfe1d9",
    "#e4e7d2",
)


class AnnotateRequest(BaseModel):
    """Give `text` (one string) or `texts` (a list of strings), not both."""

    text: Optional[str] = Field(
        None,
        description="One text",
        examples=["Maria Lopez restarted payments-api on web-03.prod.acme.net."],
    )
    texts: Optional[List[str]] = Field(
        None, description="Several texts, annotated in order", min_length=1
    )
    html: bool = Field(False, description="Also return displaCy's entity HTML of each text")
    explain: bool = Field(
        False,
        description="Also return the passages that made each text anomalous (anomaly_spans)",
    )


class Entity(BaseModel):
    start: int = Field(description="Character offset of the first character")
    end: int = Field(description="Character offset after the last character")
    label: str
    text: str


class AnomalySpan(BaseModel):
    start: int = Field(description="Character offset of the first character")
    end: int = Field(description="Character offset after the last character")
    text: str
    score: Optional[float] = Field(None, description="The passage's anomaly score, in [0, 1]")


class DocResult(BaseModel):
    entities: List[Entity]
    anomaly_score: Optional[float] = Field(
        None, description="In [0, 1]; null without an anomaly_scorer"
    )
    is_anomaly: Optional[bool] = Field(None, description="anomaly_score >= anomaly_threshold")
    cats: Dict[str, float]
    html: Optional[str] = Field(None, description="displaCy entity HTML (only with html: true)")
    anomaly_spans: Optional[List[AnomalySpan]] = Field(
        None,
        description='doc.spans["anomaly"], best first (with explain: true, or a pipeline that explains)',
    )


class AnnotateResponse(BaseModel):
    docs: List[DocResult]
    anomaly_threshold: Optional[float]


class ErrorResponse(BaseModel):
    error: Dict[str, Any] = Field(
        description="limit: which limit or check; message: what to do; index: the text, if one"
    )


def anomaly_component(nlp: Language) -> Optional[Any]:
    """The pipeline's anomaly_scorer (the last one if several), or None."""
    found = None
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == "anomaly_scorer":
            found = nlp.get_pipe(name)
    return found


def entity_colors(nlp: Language) -> Dict[str, str]:
    labels = []
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory in ("ner", "beam_ner", "entity_ruler", "span_ruler"):
            labels.extend(getattr(nlp.get_pipe(name), "labels", ()))
    return {label.upper(): PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


class DocSerializer:
    """Doc -> the JSON of one /annotate result (runs on the worker thread)."""

    def __init__(self, nlp: Language):
        from spacy.displacy.render import EntityRenderer

        self.renderer = EntityRenderer({"colors": entity_colors(nlp)})
        self.has_score = Doc.has_extension("anomaly_score") and anomaly_component(nlp) is not None

    def __call__(self, doc: Doc, html: bool = False) -> Dict[str, Any]:
        result: Dict[str, Any] = {
            "entities": [
                {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text}
                for e in doc.ents
            ],
            "anomaly_score": None,
            "is_anomaly": None,
            "cats": {label: float(value) for label, value in doc.cats.items()},
        }
        if self.has_score and doc._.anomaly_score is not None:
            result["anomaly_score"] = float(doc._.anomaly_score)
            result["is_anomaly"] = bool(doc._.is_anomaly)
        if html:
            result["html"] = self.render(doc)
        if "anomaly" in doc.spans:
            result["anomaly_spans"] = span_records(doc)
        return result

    def render(self, doc: Doc) -> str:
        # built by hand rather than displacy.parse_ents: no W006 warning for docs without
        # entities, and labels (strings from a pipeline directory) are escaped too
        ents = [
            {"start": e.start_char, "end": e.end_char, "label": html_lib.escape(e.label_)}
            for e in doc.ents
        ]
        return self.renderer.render(
            [{"text": doc.text, "ents": ents, "title": None}], page=False, minify=True
        )


def pipeline_metadata(nlp: Language, limits: Limits) -> Dict[str, Any]:
    scorer = anomaly_component(nlp)
    labels = {}
    for name in nlp.pipe_names:
        pipe_labels = getattr(nlp.get_pipe(name), "labels", None)
        if pipe_labels:
            labels[name] = list(pipe_labels)
    return {
        "name": f"{nlp.meta.get('lang', nlp.lang)}_{nlp.meta.get('name', 'pipeline')}",
        "version": nlp.meta.get("version"),
        "spacy_version": nlp.meta.get("spacy_version"),
        "lang": nlp.lang,
        "components": list(nlp.pipe_names),
        "labels": labels,
        "anomaly_threshold": scorer.threshold if scorer is not None else None,
        "anomaly_label": scorer.label if scorer is not None else None,
        # whether `"explain": true` is answered (a scorer may offer no explanation: explain.refusal)
        "anomaly_explains": scorer is not None
        and explain_refusal(scorer.detector, scorer.name) is None,
        "limits": limits.to_dict(),
    }


def default_examples() -> List[str]:
    return json.loads((STATIC / "examples.json").read_text(encoding="utf8"))["texts"]


def create_app(
    nlp: Language,
    limits: Limits = Limits(),
    *,
    max_batch_docs: int = 64,
    batch_wait_ms: float = 2.0,
    examples: Optional[List[str]] = None,
) -> FastAPI:
    """A FastAPI app serving `nlp`; its lifespan starts and drains the micro-batcher."""
    serialize = DocSerializer(nlp)
    metadata = pipeline_metadata(nlp, limits)
    examples = list(examples) if examples is not None else default_examples()
    scorer = anomaly_component(nlp)
    threshold = scorer.threshold if scorer is not None else None
    # `"explain": true` for a scorer that offers no explanation: refused per request (422),
    # before it joins a batch, so it never fails the other requests batched with it
    not_explained = explain_refusal(scorer.detector, scorer.name) if scorer is not None else None

    def process(texts: List[str], options: List[Any]) -> List[Dict[str, Any]]:
        docs = list(nlp.pipe(texts, batch_size=max(1, len(texts))))
        unexplained = [d for d, (_, why) in zip(docs, options) if why and "anomaly" not in d.spans]
        if scorer is not None and unexplained:
            scorer.explain(unexplained)
        return [serialize(doc, html=html) for doc, (html, _) in zip(docs, options)]

    batcher = MicroBatcher(
        process,
        max_batch_docs=max_batch_docs,
        max_wait_ms=batch_wait_ms,
        max_queued_chars=limits.max_queued_chars,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            # uvicorn has already waited for open requests; finish anything still queued
            await asyncio.get_running_loop().run_in_executor(None, batcher.close)

    app = _ServeApp(
        title="spacy-modernbert",
        description=f"Entities and anomaly scores from the spaCy pipeline {metadata['name']} ({', '.join(nlp.pipe_names)}).",
        version=str(metadata["version"]),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI needs a CDN: /docs below is rendered offline instead
        redoc_url=None,
    )
    app.state.nlp = nlp
    app.state.batcher = batcher
    app.state.limits = limits
    errors = {code: {"model": ErrorResponse} for code in (413, 422, 503)}

    async def annotate_body(body: bytes) -> Tuple[int, bytes, Optional[Dict[str, str]]]:
        """A read /annotate body -> (status, JSON bytes, extra headers): the one implementation."""
        try:
            payload = decode_json(body)
            texts = check_texts(parse_texts(payload, limits), limits)
            option = (bool(payload.get("html", False)), bool(payload.get("explain", False)))
            if option[1] and not_explained is not None:
                raise LimitError(422, "explain", not_explained)
            future = batcher.submit_async(texts, option)
        except LimitError as err:
            return error_parts(err)
        except QueueFull as err:
            return error_parts(
                LimitError(503, "max_queued_chars", str(err), retry_after=err.retry_after)
            )
        except Closed as err:
            return error_parts(LimitError(503, "shutdown", str(err), retry_after=1))
        # the time budget: resolving the future from the loop makes the worker drop the job
        # if it has not started it (and ignore its results if it has)
        timer = asyncio.get_running_loop().call_later(limits.timeout, _expire, future)
        try:
            results = await future
        except _TimedOut:
            return error_parts(
                LimitError(
                    503,
                    "timeout",
                    f"No answer within {limits.timeout:g} s (serve --timeout): the server is overloaded or the texts are too long",
                    retry_after=int(max(1, limits.timeout)),
                )
            )
        except Exception as err:  # the pipeline raised on this request's texts
            return (
                500,
                encode_json(
                    {"error": {"limit": "pipeline", "message": f"{type(err).__name__}: {err}"}}
                ),
                None,
            )
        finally:
            timer.cancel()
        return 200, encode_json({"docs": results, "anomaly_threshold": threshold}), None

    @app.post(
        "/annotate",
        response_model=AnnotateResponse,
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": AnnotateRequest.model_json_schema()}},
            }
        },
    )
    async def annotate(request: Request):
        """Entities, anomaly score and cats of one text or a list of texts."""
        try:
            body = await receive_body(request.scope, request.receive, limits.max_request_bytes)
        except LimitError as err:
            status, data, headers = error_parts(err)
        except Disconnected:
            return Response(status_code=400)  # nobody reads it
        else:
            status, data, headers = await annotate_body(body)
        return Response(data, status_code=status, headers=headers, media_type="application/json")

    async def annotate_asgi(scope, receive, send) -> None:
        """POST /annotate straight from the ASGI server, without FastAPI's middleware and routing.

        The same `annotate_body` as the route above (which stays for the OpenAPI docs, and
        serves any request that does not come this way); under load FastAPI's layers cost
        more per request than the tiny pipeline does per sentence.
        """
        try:
            body = await receive_body(scope, receive, limits.max_request_bytes)
        except LimitError as err:
            status, data, headers = error_parts(err)
        except Disconnected:
            return
        else:
            status, data, headers = await annotate_body(body)
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode("latin1")),
        ]
        if headers:
            raw_headers.extend(
                (key.lower().encode("latin1"), value.encode("latin1"))
                for key, value in headers.items()
            )
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": data})

    app.state.annotate_asgi = annotate_asgi

    @app.get("/health")
    async def health():
        """`ok` while accepting work, with the queue's state; 503 while shutting down."""
        stats = batcher.stats()
        if batcher.closing:
            return JSONResponse({"status": "shutting down", **stats}, status_code=503)
        return {"status": "ok", **stats}

    @app.get("/metadata")
    async def get_metadata():
        """Pipeline name, version, components, labels, anomaly threshold and limits."""
        return metadata

    @app.get("/examples")
    async def get_examples():
        """The demo page's example texts."""
        return {"texts": examples}

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(offline_docs_page(app.openapi()))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf8"))

    return app


def offline_docs_page(schema: Dict[str, Any]) -> str:
    """The API reference as one HTML page with no external assets, from the OpenAPI schema."""
    esc = html_lib.escape
    info = schema.get("info", {})
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(str(info.get('title', 'API')))} API</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:.5em;"
        "overflow:auto}</style></head><body>",
        f"<h1>{esc(str(info.get('title', '')))} {esc(str(info.get('version', '')))}</h1>",
        f"<p>{esc(str(info.get('description', '')))}</p>",
        "<p>Rendered offline from <a href='/openapi.json'>/openapi.json</a> (load that file into any OpenAPI "
        "viewer for an interactive page).</p>",
    ]
    for path, methods in sorted(schema.get("paths", {}).items()):
        for method, operation in methods.items():
            parts.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            if operation.get("summary") or operation.get("description"):
                parts.append(
                    f"<p>{esc(str(operation.get('description') or operation.get('summary')))}</p>"
                )
            body = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if body:
                parts.append(f"<h3>Request body</h3><pre>{esc(json.dumps(body, indent=2))}</pre>")
            codes = ", ".join(sorted(operation.get("responses", {})))
            parts.append(f"<p>Responses: {esc(codes)}</p>")
    if schema.get("components", {}).get("schemas"):
        parts.append(
            f"<h2>Schemas</h2><pre>{esc(json.dumps(schema['components']['schemas'], indent=2))}</pre>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


class _ServeApp(FastAPI):
    """FastAPI, with POST /annotate answered before FastAPI's middleware and router see it."""

    fast_annotate = True  # False: the FastAPI route answers (the tests compare the two)

    async def __call__(self, scope, receive, send) -> None:
        if (
            self.fast_annotate
            and scope["type"] == "http"
            and scope["path"] == "/annotate"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.state.annotate_asgi(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class _TimedOut(Exception):
    """A request's time budget ran out before its results came."""


def _expire(future: "asyncio.Future") -> None:
    if not future.done():
        future.set_exception(_TimedOut())
