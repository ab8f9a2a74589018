"""Limits and the time-bounding pre-check: plain Python, no server."""

import pytest

from spacy_modernbert.serve.limits import LimitError, Limits, check_texts, parse_texts

LIMITS = Limits(max_text_chars=1000, max_request_chars=1500, max_texts=4, max_symbol_run=100)


def _refused(texts, limits=LIMITS) -> LimitError:
    with pytest.raises(LimitError) as info:
        check_texts(texts, limits)
    return info.value


@pytest.mark.parametrize(
    "payload,fragment",
    [
        ([1, 2], "JSON object"),
        ({}, "exactly one of"),
        ({"text": "a", "texts": ["b"]}, "exactly one of"),
        ({"text": 5}, "'text' must be a string"),
        ({"texts": "abc"}, "'texts' must be a list"),
        ({"texts": []}, "empty"),
        ({"texts": ["ok", None]}, "texts[1] must be a string"),
        ({"text": "a", "lang": "en"}, "Unknown field"),
        ({"text": "a", "html": "yes"}, "'html' must be true or false"),
    ],
)
def test_wrong_shapes_are_422(payload, fragment):
    with pytest.raises(LimitError) as info:
        parse_texts(payload, LIMITS)
    assert info.value.status == 422 and info.value.limit == "body"
    assert fragment in info.value.message


def test_one_text_or_a_list():
    assert parse_texts({"text": "a b"}, LIMITS) == ["a b"]
    assert parse_texts({"texts": ["a", ""], "html": True}, LIMITS) == ["a", ""]


def test_size_limits_name_the_limit_and_the_option():
    err = _refused(["x" * 1001])
    assert (err.status, err.limit, err.index) == (413, "max_text_chars", 0)
    assert "--max-text-chars" in err.message
    err = _refused(["x" * 800, "y" * 800])
    assert (err.status, err.limit) == (413, "max_request_chars")
    err = _refused(["a"] * 5)
    assert (err.status, err.limit) == (413, "max_texts")
    assert check_texts(["x" * 1000], LIMITS) == ["x" * 1000]


def test_ten_thousand_emoji_are_refused_before_the_tokenizer():
    # spaCy's tokenizer takes 83 s on this (upstream); the pre-check refuses it at once
    limits = Limits()
    text = "".join(chr(0x1F600 + i % 80) for i in range(10_000))
    err = _refused([text], limits)
    assert (err.status, err.limit, err.index) == (422, "max_symbol_run", 0)
    assert "10000 consecutive symbols" in err.message and "--max-symbol-run" in err.message
    # the same emoji between words are fine, and so are long letter runs and URLs
    ok = " ".join(chr(0x1F600 + i % 80) + "ok" for i in range(2000))
    assert check_texts([ok, "a" * 20000, "https://example.org/" + "x/" * 300], limits)


def test_symbol_run_limit_is_exact():
    assert check_texts(["=" * 100], LIMITS)
    err = _refused(["intro " + "=" * 101 + " outro"])
    assert err.limit == "max_symbol_run" and "characters 6-107" in err.message


@pytest.mark.parametrize("text", ["bad \ud800 here", "\udfff", "pair broken \ud83d"])
def test_lone_surrogates_are_422(text):
    err = _refused(["fine", text])
    assert (err.status, err.limit, err.index) == (422, "unicode", 1)
    assert "surrogate" in err.message


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_texts"):
        Limits(max_texts=0)
