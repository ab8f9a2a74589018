"""`python -m spacy_modernbert distill` and the model card of a distilled student."""

import shutil

import spacy
from typer.testing import CliRunner

from spacy_modernbert.__main__ import app


def test_cli_distills_with_config_overrides_and_keeps_other_outputs(
    teacher, student_config, texts, tmp_path
):
    output = tmp_path / "run"
    args = [
        "distill",
        str(teacher),
        str(student_config("narrow")),
        str(texts),
        "--output",
        str(output),
    ]
    args += [
        "--steps",
        "2",
        "--signals",
        "hidden,ner,anomaly",
        "--components.ner.model.hidden_width",
        "16",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    nlp = spacy.load(output / "model-last")
    assert nlp.config["components"]["ner"]["model"]["hidden_width"] == 16
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = CliRunner().invoke(app, args[:4] + ["--output", str(foreign), "--overwrite"])
    assert refused.exit_code == 1 and (foreign / "notes.txt").exists()
    bad = CliRunner().invoke(app, args + ["--overwrite", "--signals", "logits"])
    assert bad.exit_code == 1 and "Unknown signal" in bad.output


def test_model_card_has_a_distillation_section(run, tmp_path):
    output, _ = run
    pipeline = tmp_path / "student"
    shutil.copytree(output / "model-last", pipeline)
    result = CliRunner().invoke(app, ["model-card", str(pipeline)])
    assert result.exit_code == 0, result.output
    card = (pipeline / "README.md").read_text()
    assert "## Distillation" in card
    assert "Teacher encoder: 4 layers x 64; student encoder: 2 layers x 64" in card
    assert "teacher layers [0, 3]" in card
