"""Hostile input through the full pipeline (transformer + ner + anomaly_scorer), on CPU."""

import math

import numpy
import pytest
import spacy
from spacy.training import Example

HOSTILE = {
    "empty": "",
    "whitespace": " \n\n\t \r\n  ",
    "single_char": "x",
    "long_word": "a" * 20000,
    "emoji_zwj": "Deploy 👩‍👩‍👧‍👦 ok 🏳️‍🌈 done 👍🏽 and flags 🇩🇪🇫🇷",
    "combining": "Cafe\u0301 re\u0301sume\u0301 Zalgo: Z\u0351\u0352a\u036b\u0346l\u0367g\u0308o",
    "rtl": "The user wrote: שלום עולם and مرحبا بالعالم before logging out.",
    "control": "NUL\x00byte bell\x07 escape\x1b[31m vertical\x0btab form\x0cfeed del\x7f",
    "surrogates_replaced": b"bad \xed\xa0\x80 bytes \xff\xfe here".decode("utf8", errors="replace"),
    "html_json_code": '<div class="x">Hi</div> {"k": [1, 2, {"a": null}]} def f(x):\n    return x ** 2\n',
    "log_lines": "2026-11-24T03:12:00Z ERROR payments-api[1234]: HTTP 502 upstream=10.0.0.12:8080 latency_ms=5021\n"
    * 3,
    "mixed_scripts": "Tokyo 東京 Москва Αθήνα Seoul 서울 Mumbai मुंबई",
}

TRAIN = [
    (
        "Maria Lopez restarted payments-api in eu-west-1.",
        [(0, 11, "PERSON"), (22, 34, "SERVICE")],
        0.0,
    ),
    (
        "Bob Stone rolled back auth-service at 03:12 UTC.",
        [(0, 9, "PERSON"), (22, 34, "SERVICE")],
        0.0,
    ),
    ("Someone copied all customer passwords to a personal drive during maintenance.", [], 1.0),
    ("Disk usage on db-7 reached 91 percent.", [], 0.0),
]


@pytest.fixture(scope="module")
def nlp(shared_encoder_pipeline):
    nlp = shared_encoder_pipeline()
    examples = [
        Example.from_dict(nlp.make_doc(t), {"entities": e, "cats": {"ANOMALY": a}})
        for t, e, a in TRAIN
    ]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    return nlp


def _check(doc):
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)
        assert doc.char_span(ent.start_char, ent.end_char) is not None
    score = doc._.anomaly_score
    assert math.isfinite(score) and 0.0 <= score <= 1.0
    assert isinstance(doc._.is_anomaly, bool)


def _summary(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents], doc._.anomaly_score


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_alone(nlp, name):
    _check(nlp(HOSTILE[name]))


def test_hostile_inputs_in_batches_match_alone(nlp):
    texts = list(HOSTILE.values()) + [t for t, _, _ in TRAIN]
    alone = [_summary(nlp(t)) for t in texts]
    for batch_size in (1, 3, 64):
        batched = [_summary(d) for d in nlp.pipe(texts, batch_size=batch_size)]
        for (ents_a, score_a), (ents_b, score_b) in zip(alone, batched):
            assert ents_a == ents_b
            assert score_a == pytest.approx(score_b, abs=1e-5)
        for doc in nlp.pipe(texts, batch_size=batch_size):
            _check(doc)


def test_50000_token_document(nlp):
    text = " ".join(f"host{i % 13} ok." for i in range(25000))
    doc = nlp(text)
    assert len(doc) >= 50000
    _check(doc)
    assert doc._.trf_data.align.lengths.shape == (len(doc),)


def test_n_process_2_matches_n_process_1(nlp):
    texts = [HOSTILE[k] for k in ("emoji_zwj", "rtl", "log_lines", "empty")] + [
        t for t, _, _ in TRAIN
    ]
    # same batches in both (another batch composition may pick another attention layout:
    # equal to ~1e-9, as the test above checks, not bit for bit)
    one = [_summary(d) for d in nlp.pipe(texts, n_process=1, batch_size=2)]
    two = [_summary(d) for d in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert one == two
    together = [_summary(d) for d in nlp.pipe(texts, n_process=1)]
    for (ents_a, score_a), (ents_b, score_b) in zip(together, two):
        assert ents_a == ents_b and score_a == pytest.approx(score_b, abs=1e-5)


def test_deterministic_across_loads_and_bytes(nlp, tmp_path):
    nlp.to_disk(tmp_path / "p")
    a, b = spacy.load(tmp_path / "p"), spacy.load(tmp_path / "p")
    texts = [t for t, _, _ in TRAIN] + [HOSTILE["mixed_scripts"]]
    sa = [d._.anomaly_score for d in a.pipe(texts)]
    sb = [d._.anomaly_score for d in b.pipe(texts)]
    assert sa == sb  # bit-identical
    restored = spacy.load(tmp_path / "p")
    restored.from_bytes(nlp.to_bytes())
    assert [d._.anomaly_score for d in restored.pipe(texts)] == [
        d._.anomaly_score for d in nlp.pipe(texts)
    ]
    numpy.testing.assert_array_equal(
        restored(texts[0])._.trf_data.model_output.last_hidden_state,
        nlp(texts[0])._.trf_data.model_output.last_hidden_state,
    )


def test_threads_share_one_pipeline(nlp):
    from concurrent.futures import ThreadPoolExecutor

    texts = list(HOSTILE.values())
    expected = [_summary(d) for d in nlp.pipe(texts)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: [_summary(d) for d in nlp.pipe(texts)], range(4)))
    for got in results:
        assert [e for e, _ in got] == [e for e, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)
