"""configs/intents_*.cfg and the `intents` workflow: convert, train a few steps, save, load, predict."""

from pathlib import Path

import pytest
import spacy
import srsly
from spacy import util

from spacy_modernbert.cli.convert_clinc import convert_clinc

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stem", ["intents_cpu", "intents_gpu"])
def test_textcat_and_anomaly_scorer_share_the_encoder(stem):
    config = util.load_config(ROOT / "configs" / f"{stem}.cfg")
    assert config["nlp"]["pipeline"] == ["transformer", "textcat", "anomaly_scorer"]
    components = config["components"]
    assert components["textcat"]["model"]["exclusive_classes"] is True
    for name in ("textcat", "anomaly_scorer"):
        assert (
            components[name]["model"]["tok2vec"]["@architectures"]
            == "spacy-transformers.TransformerListener.v1"
        )
    labels = config["initialize"]["components"]["textcat"]["labels"]
    assert labels["@readers"] == "spacy.read_labels.v1"
    detector = components["anomaly_scorer"]["detector"]
    assert detector["@anomaly_detectors"] == "spacy-modernbert.IntentConfidenceDetector.v1"


def test_intents_workflow_is_separate_from_all():
    project = srsly.read_yaml(ROOT / "project.yml")
    workflow = project["workflows"]["intents"]
    assert workflow[0] == "intents-convert" and "intents-train" in workflow
    assert not set(workflow) & set(project["workflows"]["all"])
    names = {command["name"] for command in project["commands"]}
    assert set(workflow) <= names


def test_config_trains_and_the_saved_pipeline_answers_both_questions(
    clinc_file, tiny_checkpoint, tmp_path
):
    from spacy.cli.train import train

    corpus = tmp_path / "corpus"
    convert_clinc(clinc_file, corpus)
    overrides = {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / "dev.spacy"),
        "paths.intents": str(corpus / "intents.json"),
        "paths.base_model": str(tiny_checkpoint),
        "training.max_steps": 4,
        "training.optimizer.learn_rate.total_steps": 4,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.eval_frequency": 2,
        "components.anomaly_scorer.detector.memory_bank_size": 20,
    }
    train(ROOT / "configs" / "intents_cpu.cfg", tmp_path / "out", overrides=overrides)
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert nlp.get_pipe("textcat").labels == ("alarm", "balance", "weather")
    doc = nlp("what is the weather in paris")
    intents = {k: v for k, v in doc.cats.items() if k != "ANOMALY"}
    assert set(intents) == {"alarm", "balance", "weather"}
    assert sum(intents.values()) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= doc._.anomaly_score <= 1.0 and doc.cats["ANOMALY"] == doc._.anomaly_score
    assert isinstance(doc._.is_anomaly, bool)
    unsure = nlp.make_doc("x")
    unsure.cats = {"alarm": 0.34, "balance": 0.33, "weather": 0.33}
    sure = nlp.make_doc("y")
    sure.cats = {"alarm": 0.98, "balance": 0.01, "weather": 0.01}
    scorer = nlp.get_pipe("anomaly_scorer")
    scores = scorer._fitted.detector.scores(
        scorer._fitted.state, scorer._fitted.detector.doc_features(scorer.model, [sure, unsure])
    )
    assert scores[0] < scores[1]  # the loaded detector state ranks confidence as fitted
