"""model-card: the README.md and meta.json that `spacy package` ships with the pipeline."""

import json

import spacy
from typer.testing import CliRunner

from spacy_modernbert.__main__ import app


def _pipeline(tmp_path):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in ("HOST", "TEAM"):
        ner.add_label(label)
    scorer = nlp.add_pipe("anomaly_scorer", config={"threshold": 0.25})
    nlp.initialize()
    scorer.set_threshold(0.3125)
    nlp.to_disk(tmp_path / "pipeline")
    return tmp_path / "pipeline"


def test_model_card_lists_components_labels_threshold_and_metrics(tmp_path):
    path = _pipeline(tmp_path)
    from spacy_modernbert.cli.evaluate import pipeline_fingerprint

    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps(
            {
                "pipeline_fingerprint": pipeline_fingerprint(path),
                "anomaly_threshold": 0.3125,
                "ents_f": 0.9,
                "ents_p": 0.8,
                "ents_r": 1.0,
                "anomaly_auc": 0.75,
                "anomaly_ap": None,
                "ents_per_type": {"HOST": {"p": 1.0, "r": 0.5, "f": 0.6667}},
            }
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "model-card",
            str(path),
            "--metrics",
            str(metrics),
            "--name",
            "demo",
            "--version",
            "1.2.3",
            "--license",
            "Apache-2.0",
        ],
    )
    assert result.exit_code == 0, result.output
    card = (path / "README.md").read_text()
    assert card.startswith("# en_demo 1.2.3")
    for expected in (
        "`ner` | `ner` | `HOST`, `TEAM`",
        "`anomaly_scorer` | `anomaly_scorer` | `ANOMALY`",
        "doc._.anomaly_score",
        "doc._.anomaly_score >= 0.312500",
        'doc.cats["ANOMALY"]',
        "| NER F (`ents_f`) | 90.00 |",
        "| Anomaly ROC AUC (`anomaly_auc`) | 75.00 |",
        "| `HOST` | 100.00 | 50.00 | 66.67 |",
        "`Apache-2.0`",
    ):
        assert expected in card, expected
    assert "anomaly_ap" not in card  # a None score gets no row, not 0.00
    meta = json.loads((path / "meta.json").read_text())
    assert (meta["name"], meta["version"], meta["license"]) == ("demo", "1.2.3", "Apache-2.0")
    assert meta["description"]


def test_model_card_refuses_a_directory_without_meta(tmp_path):
    result = CliRunner().invoke(app, ["model-card", str(tmp_path)])
    assert result.exit_code == 1 and "no meta.json" in result.output


def test_base_checkpoint_names_what_a_pretrain_run_started_from(tmp_path):
    from spacy_modernbert.cli.model_card import _pretraining

    run = tmp_path / "pretrained"
    run.mkdir()
    assert _pretraining(str(run)) == ""  # not a pretrain run directory
    (run / "pretrain_state.json").write_text(
        json.dumps({"step": 60, "base_model": "assets/tiny-modernbert"})
    )
    assert (
        _pretraining(str(run))
        == " (masked-LM pretraining of `assets/tiny-modernbert` for 60 steps with `pretrain`)"
    )
    (run / "pretrain_state.json").write_text("{not json")
    assert _pretraining(str(run)) == ""
