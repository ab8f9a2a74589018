"""spacy-modernbert.ConsoleLogger.v1: spaCy's training table, with "-" where a score is None;
its metrics file (one JSON line per evaluation), `plot-training` over it, and the logger chained
with spacy-loggers' MLflow logger (offline: an SQLite tracking store)."""

import io
import json

import pytest
import spacy
from spacy.training.loggers import console_logger_v3
from spacy.util import registry

from spacy_modernbert.cli.plot_training import plot_training
from spacy_modernbert.training_logger import console_logger, read_metrics


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    nlp.add_pipe("anomaly_scorer")
    return nlp


def _info(**scores):
    return {
        "epoch": 1,
        "step": 40,
        "losses": {"ner": 12.5, "anomaly_scorer": 3.25},
        "other_scores": scores,
        "score": 0.42,
    }


def _table(setup, nlp, info):
    out = io.StringIO()
    log_step, finalize = setup(nlp, out, io.StringIO())
    log_step(info)
    finalize()
    return out.getvalue().splitlines()


def test_registered_under_its_config_name():
    assert registry.loggers.get("spacy-modernbert.ConsoleLogger.v1") is console_logger


def test_none_score_prints_a_dash_not_zero(nlp):
    scores = {
        "ents_f": 0.8,
        "ents_p": 0.75,
        "ents_r": 0.86,
        "anomaly_ap": 0.5,
        "anomaly_f": 0.4,
    }  # no anomaly_auc
    header, rule, row = _table(console_logger(), nlp, _info(**scores))
    spacy_row = _table(console_logger_v3(), nlp, _info(**scores))[2]
    column = header.index("ANOMALY_AUC")
    width = len("ANOMALY_AUC")
    assert spacy_row[column : column + width].strip() == "0.00"  # what spaCy's own logger shows
    assert row[column : column + width].strip() == "-"
    # every other cell is spaCy's
    assert (
        row[:column] == spacy_row[:column] and row[column + width :] == spacy_row[column + width :]
    )
    assert "80.00" in row and "12.50" in row


def test_complete_scores_print_exactly_as_spacy(nlp):
    scores = {
        "ents_f": 0.8,
        "ents_p": 0.75,
        "ents_r": 0.86,
        "anomaly_auc": 0.9,
        "anomaly_ap": 0.5,
        "anomaly_f": 0.4,
    }
    assert _table(console_logger(), nlp, _info(**scores)) == _table(
        console_logger_v3(), nlp, _info(**scores)
    )


# --- the metrics file, plot-training, MLflow ------------------------------------------------


def _eval_info(step, score, loss):
    return {
        "epoch": 1,
        "step": step,
        "losses": {"ner": loss, "anomaly_scorer": loss / 2},
        "other_scores": {"ents_f": score, "ents_per_type": {"X": {"f": score}}},
        "score": score,
        "words": 100,
        "seconds": 3,
    }


def _run(setup, nlp, steps):
    log_step, finalize = setup(nlp, io.StringIO(), io.StringIO())
    for step, score, loss in steps:
        log_step(None)  # a step without evaluation: nothing written
        log_step(_eval_info(step, score, loss))
    finalize()


STEPS = [(10, 0.2, 8.0), (20, 0.5, 4.0), (30, 0.6, 2.0)]


def test_metrics_file_has_one_line_per_evaluation(nlp, tmp_path):
    path = tmp_path / "training" / "metrics.jsonl"
    _run(console_logger(metrics_file=path), nlp, STEPS)
    records = read_metrics(path)
    assert [r["step"] for r in records] == [10, 20, 30]
    assert [r["score"] for r in records] == [0.2, 0.5, 0.6]
    assert records[1]["losses"] == {"ner": 4.0, "anomaly_scorer": 2.0}
    assert records[2]["scores"] == {"ents_f": 0.6}  # the numbers (not per-type tables)
    assert all(isinstance(r["seconds"], float) for r in records)


def test_without_metrics_file_nothing_is_written(nlp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run(console_logger(), nlp, STEPS)
    assert list(tmp_path.iterdir()) == []


def test_read_metrics_skips_a_line_still_being_written(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1, "score": 0.1}) + "\n" + '{"step": 2, "sco')
    assert read_metrics(path) == [{"step": 1, "score": 0.1}]


def test_plot_training_draws_loss_and_score_curves(nlp, tmp_path, capsys):
    _run(console_logger(metrics_file=tmp_path / "metrics.jsonl"), nlp, STEPS)
    svg = plot_training(tmp_path).read_text()  # the directory: its metrics.jsonl
    assert (tmp_path / "curves.svg").exists()
    assert "Training loss" in svg and "Dev scores" in svg
    assert svg.count("<polyline") == 2 + 2 + 2  # 2 frames, 2 loss lines, score + ents_f
    with pytest.raises(SystemExit):  # the house overwrite rule
        plot_training(tmp_path)
    assert plot_training(tmp_path, tmp_path / "again.svg").read_text() == svg
    plot_training(tmp_path, overwrite=True)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        plot_training(tmp_path / "missing.jsonl")
    assert "metrics_file" in " ".join(capsys.readouterr().out.split())


def test_chained_with_spacy_loggers_mlflow(nlp, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    # an SQLite store: no server (MLflow 3 refuses its old mlruns/ file store by default)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    mlflow.set_tracking_uri(store)
    chain = registry.loggers.get("spacy.ChainLogger.v1")(
        logger1=console_logger(metrics_file=tmp_path / "metrics.jsonl"),
        logger2=registry.loggers.get("spacy.MLflowLogger.v2")(run_name="chained"),
    )
    _run(chain, nlp, STEPS)
    run = mlflow.search_runs(search_all_experiments=True, output_format="list")[0]
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "score")
    assert [m.value for m in history] == [0.2, 0.5, 0.6]  # spacy-loggers logs no step
    assert [r["score"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0.2, 0.5, 0.6]
