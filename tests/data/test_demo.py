"""The demo corpus generator and the committed assets/demo files."""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from spacy_modernbert.data.demo import (
    BUSINESS_TEAMS,
    ENTITY_LABELS,
    ERRORS,
    EXTERNAL_HOSTS,
    INFRA_TEAMS,
    SERVICES,
    generate_demo_records,
    generate_demo_splits,
)
from spacy_modernbert.data.jsonl import dumps_jsonl

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "demo"
SPLITS = ("train", "dev", "test")

ENTITY_PATTERNS = {
    "HOST": re.compile(
        r"[a-z0-9-]+-\d\d(\.[a-z0-9-]+\.acme\.net)?|"
        + "|".join(re.escape(h) for h in EXTERNAL_HOSTS)
    ),
    "IP": re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"),
    "TIME": re.compile(r"[0-2]\d:[0-5]\d( UTC)?"),
    "PERSON": re.compile(r"[A-Z][a-zá-ú]+ [A-Z][a-zá-ú]+"),
    "SERVICE": re.compile("|".join(re.escape(s) for s in SERVICES)),
    "ERROR": re.compile("|".join(re.escape(e) for errs in ERRORS.values() for e in errs)),
    "TEAM": re.compile("|".join(re.escape(t) for t in INFRA_TEAMS + BUSINESS_TEAMS)),
}


@pytest.fixture(scope="module")
def committed():
    return {
        name: [
            json.loads(line)
            for line in (DEMO / f"{name}.jsonl").read_text(encoding="utf8").splitlines()
        ]
        for name in SPLITS
    }


@pytest.fixture(scope="module")
def generated():
    return generate_demo_splits()


def test_committed_files_match_the_generator(generated):
    """assets/demo/*.jsonl are exactly `generate-demo` with the defaults, so they cannot drift."""
    for name in SPLITS:
        assert (DEMO / f"{name}.jsonl").read_text(encoding="utf8") == dumps_jsonl(
            generated[name]
        ), (
            f"assets/demo/{name}.jsonl is out of date: run `python -m spacy_modernbert generate-demo assets/demo --overwrite`"
        )


def test_cli_generates_the_same_files(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "spacy_modernbert", "generate-demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in SPLITS:
        assert (tmp_path / "demo" / f"{name}.jsonl").read_bytes() == (
            DEMO / f"{name}.jsonl"
        ).read_bytes()


def test_deterministic_per_seed():
    assert generate_demo_records(80, 0.1, seed=5) == generate_demo_records(80, 0.1, seed=5)
    assert generate_demo_records(80, 0.1, seed=5) != generate_demo_records(80, 0.1, seed=6)
    assert generate_demo_splits(60, seed=2) == generate_demo_splits(60, seed=2)


def test_split_sizes_and_anomaly_rate(committed):
    assert {name: len(records) for name, records in committed.items()} == {
        "train": 420,
        "dev": 90,
        "test": 90,
    }
    for name, records in committed.items():
        rate = sum(r["anomaly"] for r in records) / len(records)
        assert 0.05 <= rate <= 0.15, (name, rate)
        assert abs(rate - 0.1) < 0.01
    texts = [r["text"] for records in committed.values() for r in records]
    assert len(set(texts)) == len(texts)
    assert sum(r["anomaly"] for r in generate_demo_records(200, 0.05, seed=1)) == 10
    with pytest.raises(ValueError):
        generate_demo_records(10, 1.5)
    with pytest.raises(ValueError):
        generate_demo_records(0)


def test_offsets_match_entity_text(committed):
    labels = Counter()
    for records in committed.values():
        for record in records:
            text = record["text"]
            assert set(record) == {"text", "entities", "anomaly"} and record["anomaly"] in (0, 1)
            assert 15 <= len(text.split()) <= 60
            assert 1 <= len(re.findall(r"\.(?:\s|$)", text)) <= 4
            previous_end = 0
            for start, end, label in record["entities"]:
                assert start >= previous_end, "entities must be sorted and not overlap"
                previous_end = end
                value = text[start:end]
                assert ENTITY_PATTERNS[label].fullmatch(value), (label, value, text)
                assert start == 0 or not text[start - 1].isalnum()
                assert end == len(text) or not text[end].isalnum()
                labels[label] += 1
    assert set(labels) == set(ENTITY_LABELS) and len(labels) >= 5
    assert min(labels.values()) >= 100


def test_converts_to_docs_with_exact_spans(committed):
    import spacy

    from spacy_modernbert.data.converters import record_to_doc

    nlp = spacy.blank("en")
    for name, records in committed.items():
        for i, record in enumerate(records):
            doc = record_to_doc(nlp, record, where=f"{name}:{i}")
            assert [[e.start_char, e.end_char, e.label_] for e in doc.ents] == record["entities"]
            assert doc.cats == {"ANOMALY": float(record["anomaly"])}


def test_no_word_gives_anomalies_away(committed):
    """Anomalous reports reuse the normal vocabulary: no word (seen 3+ times) is exclusive to them."""
    records = [r for rs in committed.values() for r in rs]
    anomalous, normal = Counter(), Counter()
    for record in records:
        words = set(re.findall(r"[a-z]+", record["text"].lower()))
        (anomalous if record["anomaly"] else normal).update(words)
    exclusive = sorted(w for w, c in anomalous.items() if c >= 3 and normal[w] == 0)
    assert not exclusive, exclusive
