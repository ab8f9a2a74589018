"""`python -m spacy_modernbert serve PIPELINE`: the pipeline behind HTTP, with a demo page.

`serve_cli` is the typer signature and `serve` the plain function (as in spaCy's
`spacy/cli/evaluate.py`). FastAPI and uvicorn are an optional extra,
`pip install "spacy-modernbert[serve]"`; they are imported only when the command runs, and
their absence is reported with that install command.
"""

from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..serve.limits import Limits
from ._util import app, load_pipeline, pipeline_location

_D = Limits()


@app.command("serve")
def serve_cli(
    pipeline: str = typer.Argument(
        ..., help="Trained pipeline directory or installed package name"
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface)"
    ),
    port: int = typer.Option(8080, "--port", help="TCP port"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    threads: int = typer.Option(
        0,
        "--threads",
        help="torch.set_num_threads for the pipeline (0: torch's default, one per core)",
    ),
    max_batch_docs: int = typer.Option(
        64,
        "--max-batch-docs",
        help="Most docs in one nlp.pipe call gathered from concurrent requests",
    ),
    batch_wait_ms: float = typer.Option(
        2.0, "--batch-wait-ms", help="How long a batch waits for more requests once it has one"
    ),
    max_text_chars: int = typer.Option(
        _D.max_text_chars, "--max-text-chars", help="Most characters in one text (413 over it)"
    ),
    max_request_chars: int = typer.Option(
        _D.max_request_chars, "--max-request-chars", help="Most characters in one request (413)"
    ),
    max_texts: int = typer.Option(
        _D.max_texts, "--max-texts", help="Most texts in one request (413)"
    ),
    max_request_bytes: int = typer.Option(
        _D.max_request_bytes, "--max-request-bytes", help="Largest request body in bytes (413)"
    ),
    max_symbol_run: int = typer.Option(
        _D.max_symbol_run,
        "--max-symbol-run",
        help="Most consecutive characters that are neither whitespace nor letters/digits (422): bounds the tokenizer's time",
    ),
    max_queued_chars: int = typer.Option(
        _D.max_queued_chars,
        "--max-queued-chars",
        help="Most characters accepted and not yet answered (503 with Retry-After over it)",
    ),
    timeout: float = typer.Option(
        _D.timeout, "--timeout", help="Seconds a request may wait for its answer (503 after)"
    ),
    max_connections: int = typer.Option(
        512, "--max-connections", help="Most concurrent connections before uvicorn answers 503"
    ),
    access_log: bool = typer.Option(
        False,
        "--access-log/--no-access-log",
        help="Log every request (uvicorn's access log; off by default: it costs throughput under load)",
    ),
    examples: Optional[Path] = typer.Option(
        None,
        "--examples",
        help="JSONL with a 'text' per line: the demo page's examples (default: two demo reports)",
    ),
) -> None:
    """Serve a pipeline over HTTP: POST /annotate, GET /health, /metadata, a demo page at / and API docs at /docs (offline)."""
    limits = Limits(
        max_text_chars=max_text_chars,
        max_request_chars=max_request_chars,
        max_texts=max_texts,
        max_request_bytes=max_request_bytes,
        max_symbol_run=max_symbol_run,
        max_queued_chars=max_queued_chars,
        timeout=timeout,
    )
    serve(
        pipeline,
        host=host,
        port=port,
        limits=limits,
        gpu_id=gpu_id,
        threads=threads,
        max_batch_docs=max_batch_docs,
        batch_wait_ms=batch_wait_ms,
        max_connections=max_connections,
        access_log=access_log,
        examples=_read_examples(examples) if examples else None,
    )


def serve(
    pipeline: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    limits: Limits = _D,
    gpu_id: int = -1,
    threads: int = 0,
    max_batch_docs: int = 64,
    batch_wait_ms: float = 2.0,
    max_connections: int = 512,
    access_log: bool = False,
    examples: Optional[List[str]] = None,
) -> None:
    """Load `pipeline` and serve it with uvicorn until SIGINT/SIGTERM (graceful: accepted requests finish)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as err:
        msg.fail(
            f"`serve` needs FastAPI and uvicorn ({err.name} is missing)",
            'pip install "spacy-modernbert[serve]"',
            exits=1,
        )
    from ..serve.app import create_app

    pipeline_location(pipeline)  # one line for a missing pipeline, before the port and the load
    check_port(host, port)  # a busy port is reported before minutes of loading
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    with msg.loading(f"Loading {pipeline}..."):
        nlp = load_pipeline(pipeline, gpu_id=gpu_id)
    msg.good(f"Loaded {pipeline}: {', '.join(nlp.pipe_names)}")
    web_app = create_app(
        nlp, limits, max_batch_docs=max_batch_docs, batch_wait_ms=batch_wait_ms, examples=examples
    )
    msg.info(f"Demo page http://{host}:{port}/  API docs http://{host}:{port}/docs  (Ctrl+C stops)")
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        limit_concurrency=max_connections,
        timeout_graceful_shutdown=int(limits.timeout) + 5,
        log_level="info",
        access_log=access_log,
    )


def check_port(host: str, port: int) -> None:
    """Exit with one line unless `host:port` can be bound now (as uvicorn will, SO_REUSEADDR)."""
    import socket

    if not 0 <= port <= 65535:
        msg.fail(f"--port must be between 0 and 65535, got {port}", exits=1)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        msg.fail(f"--host {host}: not an address of this machine ({err})", exits=1)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            msg.fail(
                f"Cannot listen on {host}:{port}: {err.strerror or err}. Choose another --port, or stop the "
                "program using it",
                exits=1,
            )


def _read_examples(path: Path) -> List[str]:
    import srsly

    if not path.exists():
        msg.fail(f"--examples: {path} does not exist", exits=1)
    texts = []
    for i, row in enumerate(srsly.read_jsonl(path), start=1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            msg.fail(f"--examples: line {i} of {path} has no string 'text'", exits=1)
        texts.append(row["text"])
    if not texts:
        msg.fail(f"--examples: {path} has no texts", exits=1)
    return texts
