"""/annotate's JSON helpers give the same values and errors with orjson and without it."""
import json

import pytest

pytest.importorskip("fastapi", reason='the serve tests need pip install "spacy-modernbert[serve-test]"')

from spacy_modernbert.serve import app as app_module  # noqa: E402
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
RESULT = {"docs": [{"entities": [{"start": 0, "end": 5, "label": "ORG", "text": "Tokyo"}], "anomaly_score": 0.25,
                    "is_anomaly": False, "cats": {"ANOMALY": 0.25}, "html": "<div>東京 \"q\"</div>"}], "anomaly_threshold": None}


@pytest.fixture(params=["orjson", "json"])
def json_impl(request, monkeypatch):
    if request.param == "orjson":
        if app_module.orjson is None:
            pytest.skip("orjson is not installed")
    else:
        monkeypatch.setattr(app_module, "orjson", None)
    return request.param


@pytest.mark.parametrize("body", BODIES)
def test_decode_accepts_what_json_accepts(json_impl, body):
    expected = json.loads(body.decode("utf-8-sig"))
    got = app_module._decode_json(body)
    assert repr(got) == repr(expected)  # repr: NaN != NaN


@pytest.mark.parametrize("body,limit", REFUSED)
def test_decode_refusals_are_the_same(json_impl, body, limit):
    with pytest.raises(LimitError) as info:
        app_module._decode_json(body)
    assert info.value.status == 422 and info.value.limit == limit


def test_encode_is_compact_utf8_json(json_impl):
    data = app_module._encode_json(RESULT)
    assert json.loads(data.decode("utf8")) == RESULT
    assert data == json.dumps(RESULT, ensure_ascii=False, separators=(",", ":")).encode("utf8")
