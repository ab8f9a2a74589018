"""A small trained pipeline (tiny ModernBERT + ner + anomaly_scorer) and corpora for `annotate`.

The pipeline trains for a few updates on templated incident reports, enough for `ner` to
predict entities on similar text, so engine comparisons compare real entities and scores.
"""

import json
import random
import shutil
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
from spacy.training import Example

HERE = Path(__file__).resolve().parent
KILLER = HERE / "killer.py"
NAMES = ["Maria Lopez", "Bob Stone", "Yuki Novak", "Ana Silva"]
SERVICES = ["payments-api", "auth-service", "search-api", "billing-worker"]
NORMAL = [
    "{name} restarted {service} after the deploy.",
    "{name} rolled back {service} at night.",
    "Disk usage on {service} hosts is fine, said {name}.",
]
ANOMALOUS = [
    "Someone copied all customer passwords from {service} to a personal drive.",
    "{name} saw an unknown login exfiltrate data from {service}.",
]


def make_text(rng: random.Random, anomalous: bool) -> str:
    template = rng.choice(ANOMALOUS if anomalous else NORMAL)
    return template.format(name=rng.choice(NAMES), service=rng.choice(SERVICES))


def _example(nlp, text: str, anomalous: bool) -> Example:
    ents = []
    for name in NAMES + SERVICES:
        start = text.find(name)
        if start >= 0:
            ents.append((start, start + len(name), "PERSON" if name in NAMES else "SERVICE"))
    return Example.from_dict(
        nlp.make_doc(text), {"entities": ents, "cats": {"ANOMALY": float(anomalous)}}
    )


def records(n: int, seed: int = 0) -> List[Dict]:
    rng = random.Random(seed)
    return [
        {"id": f"doc-{i}", "text": make_text(rng, rng.random() < 0.2), "source": {"n": i}}
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: List[Dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


def read_jsonl(path: Path) -> List[Dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


@pytest.fixture(scope="session")
def annotate_pipeline(trained_pipeline) -> Path:
    def examples(nlp):
        rng = random.Random(1)
        return [_example(nlp, make_text(rng, i % 4 == 0), i % 4 == 0) for i in range(16)]

    return trained_pipeline(examples, epochs=12, name="annotate")


@pytest.fixture(scope="session")
def kill_pipeline(annotate_pipeline, tmp_path_factory) -> Path:
    """The same pipeline plus `annotate_test_kill_once` (needs `--code killer.py`); marker set per test."""
    spacy.util.import_file("annotate_killer", str(KILLER))
    nlp = spacy.load(annotate_pipeline)
    nlp.add_pipe("annotate_test_kill_once")
    path = tmp_path_factory.mktemp("annotate") / "kill-pipeline"
    nlp.to_disk(path)
    return path


def kill_run(kill_pipeline: Path, directory: Path, n_rows: int, kill_row: int):
    """The kill-and-resume setup: `n_rows` input rows whose row `kill_row` triggers the kill,
    and an armed copy of the kill pipeline. Returns (rows, input path, marker, armed pipeline)."""
    rows = records(n_rows)
    rows[kill_row]["text"] = "KILL-ME " + rows[kill_row]["text"]
    path = write_jsonl(directory / "in.jsonl", rows)
    marker = directory / "killed"
    return rows, path, marker, armed_copy(kill_pipeline, directory, marker)


def armed_copy(kill_pipeline: Path, directory: Path, marker: Path) -> Path:
    """A copy of the kill pipeline that kills the first process reaching the trigger (until `marker` exists)."""
    path = directory / "armed-pipeline"
    shutil.copytree(kill_pipeline, path)
    config = path / "config.cfg"
    text = config.read_text(encoding="utf8")
    assert 'marker = ""' in text
    config.write_text(text.replace('marker = ""', f'marker = "{marker}"'), encoding="utf8")
    return path
