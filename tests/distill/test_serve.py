"""The distilled student is an ordinary pipeline: `serve` answers with its entities and
scores, and `spacy package` packages it into a package that installs and loads the same."""

import importlib

import pytest
import spacy
from annotate.conftest import records

TEXTS = [r["text"] for r in records(12, seed=11)]


def _ents(nlp, texts):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_serve_answers_with_the_students_entities(run):
    pytest.importorskip("fastapi", reason="serve needs fastapi")
    pytest.importorskip("httpx", reason="the test client needs httpx")
    from fastapi.testclient import TestClient

    from spacy_modernbert.cli._util import load_pipeline
    from spacy_modernbert.serve.app import create_app

    output, _ = run
    nlp = load_pipeline(str(output / "model-last"))  # serve's loader
    alone = _ents(spacy.load(output / "model-last"), TEXTS)
    assert any(alone), "the distilled test student should find entities in a report"
    with TestClient(create_app(nlp)) as client:
        metadata = client.get("/metadata").json()
        response = client.post("/annotate", json={"texts": TEXTS})
    assert metadata["components"] == ["transformer", "ner", "anomaly_scorer"]
    assert set(metadata["labels"]["ner"]) == {"PERSON", "SERVICE"}
    assert response.status_code == 200, response.text
    docs = response.json()["docs"]
    served = [[(e["start"], e["end"], e["label"]) for e in d["entities"]] for d in docs]
    assert served == alone
    for doc in docs:
        assert 0.0 <= doc["anomaly_score"] <= 1.0


def test_spacy_package_builds_an_installable_student(run, tmp_path, monkeypatch):
    """`spacy package`, then `pip install` of the package directory (no deps, offline)."""
    import subprocess
    import sys

    from spacy.cli.package import package

    output, _ = run
    out = tmp_path / "packages"
    out.mkdir()
    package(
        output / "model-last",
        out,
        name="distilled_student",
        version="0.0.1",
        create_sdist=False,
        create_wheel=False,
        force=True,
        silent=True,
    )
    root = out / "en_distilled_student-0.0.1"
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(site), str(root)],
        check=True,
    )
    monkeypatch.syspath_prepend(str(site))
    module = importlib.import_module("en_distilled_student")
    nlp = module.load()
    assert nlp.meta["distillation"]["student_encoder"] == {"layers": 2, "hidden_size": 64}
    assert _ents(nlp, TEXTS) == _ents(spacy.load(output / "model-last"), TEXTS)
