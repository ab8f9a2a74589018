"""A small trained pipeline (tiny ModernBERT + ner + anomaly_scorer) and servers for it.

The pipeline is trained for a few updates on demo reports, enough for entities and
scores that differ between texts; it is saved once per session and loaded from disk as
`serve` loads it. Live servers listen on 127.0.0.1 on a free port, in a thread.
"""

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import spacy
from spacy.training import Example

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo"

SERVE_EXTRA = 'the serve tests need pip install "spacy-modernbert[serve-test]"'


def demo_records(split: str, n: int):
    rows = [
        json.loads(line)
        for line in (DEMO / f"{split}.jsonl").read_text(encoding="utf8").splitlines()
        if line.strip()
    ]
    normal = [r for r in rows if r["anomaly"] == 0]
    anomalous = [r for r in rows if r["anomaly"] == 1]
    k = max(2, n // 4)
    return anomalous[:k] + normal[: n - k]


@pytest.fixture(scope="session")
def served_pipeline(trained_pipeline) -> Path:
    def examples(nlp):
        return [
            Example.from_dict(
                nlp.make_doc(r["text"]),
                {
                    "entities": [tuple(e) for e in r["entities"]],
                    "cats": {"ANOMALY": float(r["anomaly"])},
                },
            )
            for r in demo_records("train", 32)
        ]

    meta = {"name": "serve_test", "version": "0.0.1"}
    return trained_pipeline(examples, epochs=16, name="serve-pipeline", batch_size=8, meta=meta)


@pytest.fixture(scope="session")
def served_nlp(served_pipeline):
    return spacy.load(served_pipeline)


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread, stopped gracefully by `stop`."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 60) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


@pytest.fixture(scope="session")
def live_server(served_nlp):
    from spacy_modernbert.serve.app import create_app

    server = LiveServer(create_app(served_nlp, batch_wait_ms=20.0)).start()
    yield server
    server.stop()
