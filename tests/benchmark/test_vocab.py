"""benchmarks/vocab.py: each --max-words-per-term variant is its own extension, measured on
held-out text against the same base, and every extension's speed is set against the base of
its own domain."""

import json

from benchmarks.vocab import parse_variants, pieces_rows, summarize


def test_pieces_rows_measure_each_variant_on_held_out_text(tiny_checkpoint, tmp_path):
    train = ["what is my credit score", "what is my pto balance", "is my credit score ok"] * 4
    held = ["so what is my credit score now", "what is my pto balance today"]
    rows, extended = pieces_rows(
        {"tiny": tiny_checkpoint},
        {"bank": (train, held)},
        tmp_path,
        50,
        2,
        parse_variants("1,3,3/0"),
    )
    by = {r["system"]: r for r in rows}
    single, multi = by["tiny + extend-vocab"], by["tiny + extend-vocab, terms of up to 3 words"]
    capped = by["tiny + extend-vocab, terms of up to 3 words on at most 0% of the new tokens"]
    assert capped["multi_word_terms"] == 0 and capped["after"] == single["after"]
    assert single["multi_word_terms"] == 0 < multi["multi_word_terms"]
    assert single["before"] == multi["before"] and single["held_out_words"] == 13
    assert multi["after"] < single["after"] and multi["after"] < multi["floor_pre_tokens_per_word"]
    assert single["after"] >= single["floor_pre_tokens_per_word"]
    assert set(extended) == {f"{name}/bank" for name in by}
    record = json.loads((extended[f"{multi['system']}/bank"] / "vocab_extension.json").read_text())
    assert record["max_words_per_term"] == 3


def test_variants_parse_words_and_multi_word_share():
    assert parse_variants("1, 3,3/0.25") == [(1, 1.0), (3, 1.0), (3, 0.25)]


def _speed(domain, system, median):
    return {
        "system": system,
        "domain": domain,
        "metric": "nlp.pipe words/s",
        "median": median,
        "range": [median, median],
        "rounds": 2,
        "load_avg_1min": [1.0, 1.0],
    }


def test_speed_claims_compare_with_the_base_of_the_same_domain():
    rows = [
        _speed("a", "base", 100.0),
        _speed("a", "x + extend-vocab", 150.0),
        _speed("b", "x + extend-vocab", 90.0),
        _speed("b", "base", 60.0),
    ]
    figures = {s["claim"]: s["figure"] for s in summarize(rows, 1, 1)}
    assert figures == {
        "nlp.pipe words/s, x + extend-vocab vs base checkpoint (a held out)": "1.50x (150.0 vs 100.0 words/s)",
        "nlp.pipe words/s, x + extend-vocab vs base checkpoint (b held out)": "1.50x (90.0 vs 60.0 words/s)",
    }
