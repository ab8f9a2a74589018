"""spacy-modernbert.ConsoleLogger.v1: spaCy's training table, with "-" where a score is None."""

import io

import pytest
import spacy
from spacy.training.loggers import console_logger_v3
from spacy.util import registry

from spacy_modernbert.training_logger import console_logger


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
