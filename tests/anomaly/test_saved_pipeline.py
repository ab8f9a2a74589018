"""Pipelines with anomaly_scorers saved by release 0.1.0 still load and give the same scores.

`tests/fixtures/pipeline_v0_1_anomaly` was written by 0.1.0 (see
tests/fixtures/make_anomaly_pipeline.py): a one-class scorer with that release's only
one-class head, Deep-SVDD (its cfg has no `detector`), and a supervised one.
"""

import json
import shutil
from pathlib import Path

import pytest
import spacy

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "pipeline_v0_1_anomaly"


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(FIXTURE)


def test_pipeline_saved_by_0_1_loads_to_the_same_scores(nlp):
    assert nlp.get_pipe("one_class").detector.name == "svdd"
    assert nlp.get_pipe("supervised").detector is None
    for record in json.loads((FIXTURE / "expected.json").read_text()):
        doc = nlp(record["text"])
        for name, expected in record["scores"].items():
            assert float(nlp.get_pipe(name).predict([doc])[0]) == pytest.approx(
                expected, abs=1e-6
            ), (name, record["text"])


def test_resaved_0_1_pipeline_names_its_detector_and_keeps_the_scores(nlp, tmp_path):
    nlp.to_disk(tmp_path / "again")
    cfg = json.loads((tmp_path / "again" / "one_class" / "cfg").read_text())
    assert cfg["detector"] == "svdd"
    again = spacy.load(tmp_path / "again")
    record = json.loads((FIXTURE / "expected.json").read_text())[2]
    doc = again(record["text"])
    assert float(again.get_pipe("one_class").predict([doc])[0]) == pytest.approx(
        record["scores"]["one_class"], abs=1e-6
    )


def test_a_0_1_one_class_cfg_without_its_config_block_is_not_guessed(tmp_path):
    """Only the 0.1.0 shape (mode one_class, no detector) is upgraded; a cfg naming a
    detector the config does not build is refused with both names."""
    path = tmp_path / "edited"
    shutil.copytree(FIXTURE, path)
    cfg = json.loads((path / "one_class" / "cfg").read_text())
    (path / "one_class" / "cfg").write_text(json.dumps({**cfg, "detector": "knn"}))
    with pytest.raises(ValueError, match="detector 'knn'.*config builds"):
        spacy.load(path)
