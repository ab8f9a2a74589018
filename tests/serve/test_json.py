"""/annotate's JSON helpers give the same values and errors with orjson and without it."""

import json

import pytest

pytest.importorskip(
    "fastapi", reason='the serve tests need pip install "spacy-modernbert[serve-test]"'
)

from spacy_modernbert.serve import wire  # noqa: E402
from spacy_modernbert.serve.limits import LimitError  # noqa: E402

BODIES = [
    b'{"text": "Maria Lopez restarted payments-api."}',
    '\ufeff{"texts": ["Tokyo 東京", "Deploy 👩‍👩‍👧‍👦 ok"], "html": true}'.encode("utf8"),
    b'{"text": "an escaped \\u00e9 and \\ud83d\\ude00"}',
    b'{"text": "lone \\ud800 escape"}',  # json accepts it (check_texts refuses it later)
    b'{"text": NaN}',  # json accepts NaN, orjson does not
    b'{"texts": ["a", "b"], "html": false}',
]
REFUSED = [
    (b"", "body"),
    (b"  \n", "body"),
    (b"not json", "json"),
    (b'{"text": "caf\xe9"}', "unicode"),
    (b'{"text": "bad \xed\xa0\x80 surrogate"}', "unicode"),
    (b"[" * 5000 + b"]" * 5000, "json"),
]
RESULT = {
    "docs": [
        {
            "entities": [{"start": 0, "end": 5, "label": "ORG", "text": "Tokyo"}],
            "anomaly_score": 0.25,
            "is_anomaly": False,
            "cats": {"ANOMALY": 0.25},
            "html": '<div>東京 "q"</div>',
        }
    ],
    "anomaly_threshold": None,
}


@pytest.fixture(params=["orjson", "json"])
def json_impl(request, monkeypatch):
    if request.param == "orjson":
        if wire.orjson is None:
            pytest.skip("orjson is not installed")
    else:
        monkeypatch.setattr(wire, "orjson", None)
    return request.param


@pytest.mark.parametrize("body", BODIES)
def test_decode_accepts_what_json_accepts(json_impl, body):
    expected = json.loads(body.decode("utf-8-sig"))
    got = wire.decode_json(body)
    assert repr(got) == repr(expected)  # repr: NaN != NaN


@pytest.mark.parametrize("body,limit", REFUSED)
def test_decode_refusals_are_the_same(json_impl, body, limit):
    with pytest.raises(LimitError) as info:
        wire.decode_json(body)
    assert info.value.status == 422 and info.value.limit == limit


def test_encode_is_compact_utf8_json(json_impl):
    data = wire.encode_json(RESULT)
    assert json.loads(data.decode("utf8")) == RESULT
    assert data == json.dumps(RESULT, ensure_ascii=False, separators=(",", ":")).encode("utf8")


def _receiver(*messages):
    queue = list(messages)

    async def receive():
        return queue.pop(0)

    return receive


@pytest.mark.parametrize(
    "messages, expected",
    [
        ([{"type": "http.request", "body": b"abc"}], b"abc"),
        (
            [
                {"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.request", "body": b""},
            ],
            b"ab",
        ),
        (
            [
                {"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.request", "body": b"cd", "more_body": True},
                {"type": "http.request", "body": b"ef"},
            ],
            b"abcdef",
        ),
    ],
)
def test_body_is_read_whole_from_one_or_many_asgi_messages(messages, expected):
    import asyncio

    assert (
        asyncio.run(wire.receive_body({"headers": []}, _receiver(*messages), max_bytes=6))
        == expected
    )


def test_body_over_the_limit_is_refused_while_it_streams_and_a_disconnect_is_noticed():
    import asyncio

    over = _receiver(
        {"type": "http.request", "body": b"abcd", "more_body": True},
        {"type": "http.request", "body": b"efg", "more_body": True},
    )
    with pytest.raises(LimitError, match="exceeds 6 bytes"):  # before the stream ends
        asyncio.run(wire.receive_body({"headers": []}, over, max_bytes=6))
    with pytest.raises(LimitError, match="has 7 bytes"):  # from the declared length, nothing read
        asyncio.run(
            wire.receive_body({"headers": [(b"content-length", b"7")]}, _receiver(), max_bytes=6)
        )
    gone = _receiver(
        {"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(wire.Disconnected):
        asyncio.run(wire.receive_body({"headers": []}, gone, max_bytes=6))
