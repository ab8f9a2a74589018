"""The HTTP API of a trained pipeline: endpoints, bad input, limits, micro-batching, shutdown."""

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import SERVE_EXTRA, LiveServer, demo_records

pytest.importorskip("fastapi", reason=SERVE_EXTRA)
httpx = pytest.importorskip("httpx", reason=SERVE_EXTRA)

from fastapi.testclient import TestClient  # noqa: E402

from spacy_modernbert.serve.app import create_app  # noqa: E402
from spacy_modernbert.serve.limits import Limits  # noqa: E402

TEXTS = [r["text"] for r in demo_records("dev", 12)] + [
    "",
    "  \n ",
    "Deploy 👩‍👩‍👧‍👦 ok 🏳️‍🌈 done",
    "Tokyo 東京 Москва Αθήνα",
    "a" * 3000,
]


@pytest.fixture(scope="module")
def client(served_nlp):
    limits = Limits(
        max_text_chars=5000, max_request_chars=8000, max_texts=16, max_request_bytes=20000
    )
    with TestClient(create_app(served_nlp, limits)) as client:
        yield client


def _alone(nlp, text):
    doc = nlp(text)
    return (
        [(e.start_char, e.end_char, e.label_) for e in doc.ents],
        doc._.anomaly_score,
        doc._.is_anomaly,
    )


def _summary(result):
    return (
        [(e["start"], e["end"], e["label"]) for e in result["entities"]],
        result["anomaly_score"],
        result["is_anomaly"],
    )


def test_annotate_one_text_matches_nlp(client, served_nlp):
    text = TEXTS[0]
    response = client.post("/annotate", json={"text": text})
    assert response.status_code == 200
    data = response.json()
    assert data["anomaly_threshold"] == served_nlp.get_pipe("anomaly_scorer").threshold
    (doc,) = data["docs"]
    ents, score, is_anomaly = _alone(served_nlp, text)
    assert ents, "the trained test pipeline should find entities in a demo report"
    assert _summary(doc)[0] == ents
    assert doc["anomaly_score"] == pytest.approx(score, abs=1e-5)
    assert doc["is_anomaly"] == is_anomaly
    assert doc["cats"] == {"ANOMALY": pytest.approx(score, abs=1e-5)}
    for ent in doc["entities"]:
        assert text[ent["start"] : ent["end"]] == ent["text"]
    assert "html" not in doc


def test_annotate_a_list_keeps_order(client, served_nlp):
    response = client.post("/annotate", json={"texts": TEXTS[:5]})
    assert response.status_code == 200
    docs = response.json()["docs"]
    assert len(docs) == 5
    for text, doc in zip(TEXTS, docs):
        ents, score, _ = _alone(served_nlp, text)
        assert _summary(doc)[0] == ents and doc["anomaly_score"] == pytest.approx(score, abs=1e-5)


def test_html_is_displacy_markup_and_escapes_the_text(client):
    text = 'Maria Lopez restarted nginx <script>alert("x")</script> & left.'
    doc = client.post("/annotate", json={"text": text, "html": True}).json()["docs"][0]
    assert doc["html"].startswith('<div class="entities"')
    assert "<script>" not in doc["html"] and "&lt;script&gt;" in doc["html"]
    with_ents = client.post("/annotate", json={"text": TEXTS[0], "html": True}).json()["docs"][0]
    assert with_ents["html"].count("<mark") == len(with_ents["entities"]) > 0


def test_explain_returns_the_anomalous_passages(client, served_nlp):
    text = (
        "Maria Lopez restarted nginx.\nSomeone exfiltrated the database 😀.\nThe deploy finished."
    )
    doc = served_nlp.get_pipe("anomaly_scorer").explain(served_nlp(text))
    expected = [(s.start_char, s.end_char, s.text) for s in doc.spans["anomaly"]]
    plain = client.post("/annotate", json={"texts": [text]}).json()["docs"][0]
    assert "anomaly_spans" not in plain or plain["anomaly_spans"] is None
    result = client.post("/annotate", json={"texts": [text, TEXTS[0]], "explain": True}).json()
    for got in result["docs"]:
        assert got["anomaly_spans"], "every explained doc has its top passage"
    spans = result["docs"][0]["anomaly_spans"]
    assert [(s["start"], s["end"], s["text"]) for s in spans] == expected
    assert spans[0]["score"] == pytest.approx(doc.spans["anomaly"].attrs["scores"][0], abs=1e-5)
    assert result["docs"][0]["anomaly_score"] == pytest.approx(doc._.anomaly_score, abs=1e-5)
    bad = client.post("/annotate", json={"text": text, "explain": "yes"})
    assert bad.status_code == 422 and "'explain' must be true or false" in bad.text


def test_health_metadata_examples_and_docs(client, served_nlp):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["queued_chars"] == 0
    meta = client.get("/metadata").json()
    assert meta["name"] == "en_serve_test" and meta["version"] == "0.0.1"
    assert meta["components"] == ["transformer", "ner", "anomaly_scorer"]
    assert set(meta["labels"]["ner"]) == set(served_nlp.get_pipe("ner").labels)
    assert meta["anomaly_threshold"] == 0.5 and meta["anomaly_label"] == "ANOMALY"
    assert meta["limits"]["max_texts"] == 16
    examples = client.get("/examples").json()["texts"]
    assert len(examples) == 2 and all(len(t) > 100 for t in examples)
    schema = client.get("/openapi.json").json()
    assert {"/annotate", "/health", "/metadata"} <= set(schema["paths"])
    assert "texts" in json.dumps(schema["paths"]["/annotate"]["post"]["requestBody"])
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="annotate"' in page.text


def _error(response, status, limit):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["limit"] == limit, error
    return error


@contextlib.contextmanager
def _held(batcher):
    """The batcher's work waits until the yielded event is set; restored (and released) on exit."""
    release = threading.Event()
    process = batcher.process
    batcher.process = lambda texts, options: (release.wait(30), process(texts, options))[1]
    try:
        yield release
    finally:
        release.set()
        batcher.process = process


@pytest.mark.parametrize(
    "body,limit",
    [
        (b"", "body"),
        (b"not json", "json"),
        (b'{"text": "unterminated', "json"),
        (b"[" * 100000 + b"]" * 100000, "max_request_bytes"),
        (b'"just a string"', "body"),
        (b'{"texts": []}', "body"),
        (b'{"texts": ["ok", 3]}', "body"),
        (b'{"text": ["a"]}', "body"),
        (b'{"text": "caf\xe9"}', "unicode"),  # Latin-1, not UTF-8
        (b'{"text": "bad \xed\xa0\x80 surrogate"}', "unicode"),  # UTF-8-encoded surrogate
        (b'{"text": "bad \\ud800 escape"}', "unicode"),  # JSON escape of a lone surrogate
    ],
)
def test_bad_bodies_get_clear_errors(client, body, limit):
    status = 413 if limit == "max_request_bytes" else 422
    error = _error(
        client.post("/annotate", content=body, headers={"Content-Type": "application/json"}),
        status,
        limit,
    )
    assert error["message"]


def test_deeply_nested_json_is_422(client):
    body = b"[" * 5000 + b"]" * 5000
    _error(client.post("/annotate", content=body), 422, "json")


def test_size_limits_over_http(client):
    _error(client.post("/annotate", json={"text": "x" * 5001}), 413, "max_text_chars")
    _error(client.post("/annotate", json={"texts": ["x" * 4000] * 3}), 413, "max_request_chars")
    _error(client.post("/annotate", json={"texts": ["x"] * 17}), 413, "max_texts")


def test_ten_thousand_emoji_are_refused_before_the_pipeline(served_nlp):
    """spaCy's tokenizer takes 83 s on this text (upstream); the default limits refuse it."""
    emoji = "".join(chr(0x1F600 + i % 80) for i in range(10_000))
    with TestClient(create_app(served_nlp)) as client:
        error = _error(client.post("/annotate", json={"text": emoji}), 422, "max_symbol_run")
        assert "--max-symbol-run" in error["message"] and error["index"] == 0
        assert client.app.state.batcher.stats()["docs"] == 0  # never reached the pipeline
        spaced = " ".join(emoji[i : i + 50] for i in range(0, 2000, 50))
        assert client.post("/annotate", json={"text": spaced}).status_code == 200


def test_micro_batching_equals_nlp_alone(served_nlp):
    """Concurrent requests through a real server share nlp.pipe calls; results match nlp(text)."""
    server = LiveServer(create_app(served_nlp, batch_wait_ms=50.0)).start()
    try:
        expected = [_alone(served_nlp, t) for t in TEXTS]
        bodies = [{"text": t} for t in TEXTS] + [
            {"texts": TEXTS[i : i + 3]} for i in range(0, len(TEXTS), 3)
        ]
        barrier = threading.Barrier(len(bodies))

        def post(body):
            with httpx.Client(base_url=server.url, timeout=60) as http:
                barrier.wait(10)
                return http.post("/annotate", json=body)

        with ThreadPoolExecutor(len(bodies)) as pool:
            responses = list(pool.map(post, bodies))
        app = server.server.config.app
    finally:
        server.stop()
    stats = app.state.batcher.stats()
    assert all(r.status_code == 200 for r in responses), [
        r.text for r in responses if r.status_code != 200
    ]
    got = [_summary(d) for r in responses[: len(TEXTS)] for d in r.json()["docs"]]
    got_lists = [_summary(d) for r in responses[len(TEXTS) :] for d in r.json()["docs"]]
    for results in (got, got_lists):
        assert len(results) == len(expected)
        for (ents_a, score_a, flag_a), (ents_b, score_b, flag_b) in zip(expected, results):
            assert ents_a == ents_b
            assert score_a == pytest.approx(score_b, abs=1e-5)
            if abs(score_a - 0.5) > 1e-5:
                assert flag_a == flag_b
    assert stats["docs"] == 2 * len(TEXTS)
    assert stats["batches"] < len(bodies), (
        f"{len(bodies)} concurrent requests ran as {stats['batches']} batches"
    )


def test_full_queue_is_503_with_retry_after(served_nlp):
    app = create_app(served_nlp, Limits(max_queued_chars=500))
    with TestClient(app) as client:
        batcher = app.state.batcher
        with _held(batcher) as release:
            with ThreadPoolExecutor(1) as pool:
                held = pool.submit(client.post, "/annotate", json={"text": "x" * 400})
                for _ in range(200):
                    if batcher.stats()["queued_chars"]:
                        break
                    threading.Event().wait(0.01)
                response = client.post("/annotate", json={"text": "y" * 200})
                error = _error(response, 503, "max_queued_chars")
                assert (
                    int(response.headers["Retry-After"]) >= 1
                    and "--max-queued-chars" in error["message"]
                )
                release.set()
                assert held.result(30).status_code == 200
        assert client.post("/annotate", json={"text": "y" * 200}).status_code == 200


def test_time_budget_is_503(served_nlp):
    app = create_app(served_nlp, Limits(timeout=0.3))
    with TestClient(app) as client:
        with _held(app.state.batcher):
            response = client.post("/annotate", json={"text": "slow"})
            error = _error(response, 503, "timeout")
            assert "--timeout" in error["message"] and "Retry-After" in response.headers


def test_a_pipeline_error_is_500_for_that_request_only(served_nlp):
    app = create_app(served_nlp)
    with TestClient(app) as client:
        batcher = app.state.batcher
        process = batcher.process

        def failing(texts, options):
            if "poison" in texts:
                raise ValueError("poison document")
            return process(texts, options)

        batcher.process = failing
        response = client.post("/annotate", json={"text": "poison"})
        assert (
            response.status_code == 500 and "poison document" in response.json()["error"]["message"]
        )
        assert client.post("/annotate", json={"text": "fine"}).status_code == 200


def test_graceful_shutdown_finishes_accepted_requests(served_nlp):
    app = create_app(served_nlp, batch_wait_ms=1.0)
    server = LiveServer(app).start()
    batcher = app.state.batcher
    release = threading.Event()
    process = batcher.process
    batcher.process = lambda texts, options: (release.wait(30), process(texts, options))[1]

    def post(text):
        with httpx.Client(base_url=server.url, timeout=60) as http:
            return http.post("/annotate", json={"text": text})

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(post, t) for t in TEXTS[:6]]
        for _ in range(500):
            if batcher.stats()["queued_chars"] == sum(map(len, TEXTS[:6])):  # all six accepted
                break
            threading.Event().wait(0.01)
        stopper = threading.Thread(target=server.stop)
        stopper.start()  # shutdown begins while all six are accepted and unanswered
        threading.Event().wait(0.3)
        release.set()
        responses = [f.result(60) for f in futures]
        stopper.join(60)
    assert [r.status_code for r in responses] == [200] * 6
    assert batcher.closing and not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        post("after shutdown")


def test_serve_without_the_extra_says_how_to_install(monkeypatch, capsys, served_pipeline):
    import sys

    from spacy_modernbert.cli.serve import serve

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(SystemExit):
        serve(str(served_pipeline))
    out = capsys.readouterr().out
    assert 'pip install "spacy-modernbert[serve]"' in out and "uvicorn" in out


def test_the_serve_command_serves_and_stops_on_sigterm(served_pipeline, tmp_path):
    """`python -m spacy_modernbert serve` end to end: 127.0.0.1, a request, SIGTERM -> clean exit."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    examples = tmp_path / "examples.jsonl"
    examples.write_text(
        '{"text": "First example."}\n{"text": "Second example."}\n', encoding="utf8"
    )
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spacy_modernbert",
                "serve",
                str(served_pipeline),
                "--port",
                str(port),
                "--max-texts",
                "3",
                "--examples",
                str(examples),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start: " + log.read_text()
            time.sleep(0.2)
        response = httpx.post(url + "/annotate", json={"texts": TEXTS[:2]}, timeout=60)
        assert response.status_code == 200 and len(response.json()["docs"]) == 2
        assert (
            httpx.post(url + "/annotate", json={"texts": ["a"] * 4}, timeout=60).status_code == 413
        )  # --max-texts 3
        assert httpx.get(url + "/examples", timeout=10).json()["texts"] == [
            "First example.",
            "Second example.",
        ]
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown, as process managers expect
        assert proc.wait(60) in (0, -signal.SIGTERM), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert "Application shutdown complete" in text and "Finished server process" in text


def test_the_fastapi_route_answers_like_the_fast_path(served_nlp):
    """POST /annotate skips FastAPI's layers; its FastAPI route (for the docs) gives the same answers."""
    app = create_app(served_nlp, Limits(max_texts=2))
    body = {"texts": TEXTS[:2]}
    with TestClient(app) as fast:
        expected = fast.post("/annotate", json=body)
        refused = fast.post("/annotate", json={"texts": ["a"] * 3})
    app = create_app(served_nlp, Limits(max_texts=2))  # a fresh batcher: the first one is closed
    app.fast_annotate = False
    with TestClient(app) as routed:
        got = routed.post("/annotate", json=body)
        _error(routed.post("/annotate", json={"texts": ["a"] * 3}), 413, "max_texts")
        _error(routed.post("/annotate", content=b"not json"), 422, "json")
    assert expected.status_code == got.status_code == 200
    assert got.headers["content-type"] == expected.headers["content-type"] == "application/json"
    assert got.json() == expected.json()
    assert refused.status_code == 413
    assert create_app(served_nlp).fast_annotate  # the default


def test_a_scorer_that_offers_no_explanation_refuses_explain_per_request(client, svdd_pipeline):
    """A pipeline whose anomaly_scorer offers no explanation (the Deep-SVDD head,
    explain.NOT_EXPLAINED): /metadata says so (the demo page then does not ask), a request
    with "explain": true is 422 with the reason and the fix before it joins a batch, and the
    same request without it is answered."""
    assert client.get("/metadata").json()["anomaly_explains"] is True  # the served pipeline
    with TestClient(create_app(svdd_pipeline)) as svdd:
        assert svdd.get("/metadata").json()["anomaly_explains"] is False
        refused = svdd.post("/annotate", json={"texts": ["a", "b"], "explain": True})
        error = refused.json()["error"]
        assert refused.status_code == 422 and error["limit"] == "explain"
        assert "Deep-SVDD" in error["message"] and "doc_and_token_knn" in error["message"]
        answered = svdd.post("/annotate", json={"text": "Disk full on db-01.", "explain": False})
        assert answered.status_code == 200 and answered.json()["docs"][0]["anomaly_score"] >= 0
