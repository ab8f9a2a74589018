"""Curves, AUC/AP and threshold calibration (numbers checked by hand), and the calibrate command."""

import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_modernbert.anomaly.calibration import (
    best_f1_threshold,
    calibrate_pipeline,
    target_fpr_threshold,
)
from spacy_modernbert.anomaly.curves import (
    average_precision,
    precision_recall_curve,
    prf_at_threshold,
    roc_auc,
    roc_curve,
)

from .conftest import LABEL, examples, make_records, shared_pipeline, train

GOLD = [0, 0, 1, 1, 0, 1]
SCORES = [0.1, 0.4, 0.35, 0.8, 0.7, 0.9]


def test_roc_auc_and_ap_match_hand_computed_values():
    # pairs (pos, neg) ranked right: 0.35>0.1; 0.8>all; 0.9>all -> 1 + 3 + 3 = 7 of 9
    assert roc_auc(GOLD, SCORES) == pytest.approx(7 / 9)
    # ranked: 0.9(+) 0.8(+) 0.7(-) 0.4(-) 0.35(+) 0.1(-): AP = (1 + 1 + 3/5) / 3
    assert average_precision(GOLD, SCORES) == pytest.approx((1 + 1 + 0.6) / 3)
    fpr, tpr, _ = roc_curve(GOLD, SCORES)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    precision, recall, _ = precision_recall_curve(GOLD, SCORES)
    assert recall[-1] == 1.0 and precision[0] == 1.0


def test_ties_count_one_half_and_single_class_gives_none():
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert average_precision([0, 0], [0.2, 0.3]) is None
    with pytest.raises(ValueError, match="0.0 \\(normal\\) or 1.0"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0, 1], [0.1, float("nan")])


def test_prf_at_threshold():
    p, r, f = prf_at_threshold(GOLD, SCORES, 0.5)  # flags 0.8, 0.7, 0.9: tp 2, fp 1, fn 1
    assert (p, r) == (pytest.approx(2 / 3), pytest.approx(2 / 3)) and f == pytest.approx(2 / 3)


def test_best_f1_threshold_sits_in_the_gap_of_the_best_cut():
    result = best_f1_threshold(GOLD, SCORES)
    # best F1: flag 0.9 and 0.8 (P 1, R 2/3, F 0.8), threshold between 0.8 and 0.7
    assert 0.7 < result.threshold <= 0.8
    assert result.f1 == pytest.approx(0.8) and result.precision == 1.0
    with pytest.raises(ValueError, match="at least one document labelled 1.0"):
        best_f1_threshold([0, 0], [0.1, 0.2])


def test_target_fpr_threshold_respects_the_budget():
    result = target_fpr_threshold(GOLD, SCORES, target_fpr=0.34)  # one false positive of 3 allowed
    # flags 0.9, 0.8 and the normal 0.7; flagging 0.4 too would be a second false positive
    assert result.fpr == pytest.approx(1 / 3) and result.recall == pytest.approx(2 / 3)
    assert 0.4 < result.threshold <= 0.7
    strict = target_fpr_threshold(GOLD, SCORES, target_fpr=0.0)
    assert strict.fpr == 0.0 and 0.7 < strict.threshold <= 0.8
    nothing = target_fpr_threshold([0, 0, 1], [0.9, 0.8, 0.1], target_fpr=0.0)
    assert nothing.threshold > 0.9 and nothing.recall == 0.0


@pytest.fixture(scope="module")
def trained_pipeline_dir(tmp_path_factory):
    spacy.util.fix_random_seed(0)
    nlp = shared_pipeline("supervised")
    train(nlp, examples(nlp, make_records(80, 0.2, seed=21)), epochs=5)
    path = tmp_path_factory.mktemp("calibrate")
    nlp.to_disk(path / "pipeline")
    dev = DocBin()
    for text, _, gold in make_records(40, 0.3, seed=22):
        doc = nlp.make_doc(text)
        doc.cats = {LABEL: gold}
        dev.add(doc)
    dev.to_disk(path / "dev.spacy")
    return path


def test_calibrate_pipeline_stores_threshold_in_component_and_config(
    trained_pipeline_dir, tmp_path
):
    nlp = spacy.load(trained_pipeline_dir / "pipeline")
    result = calibrate_pipeline(
        nlp, trained_pipeline_dir / "dev.spacy", method="target_fpr", target_fpr=0.1
    )
    assert result.fpr <= 0.1 and result.n_docs == 40
    pipe = nlp.get_pipe("anomaly_scorer")
    assert pipe.threshold == result.threshold
    nlp.to_disk(tmp_path / "calibrated")
    reloaded = spacy.load(tmp_path / "calibrated")
    assert reloaded.get_pipe("anomaly_scorer").threshold == result.threshold
    assert reloaded.config["components"]["anomaly_scorer"]["threshold"] == result.threshold
    doc = reloaded("Alice reported breach stolen rootkit deploy cache today .")
    assert doc._.is_anomaly == (doc._.anomaly_score >= result.threshold)


def test_calibrate_command_writes_calibrated_pipeline(trained_pipeline_dir, tmp_path):
    out = tmp_path / "calibrated"
    cmd = [
        sys.executable,
        "-m",
        "spacy_modernbert",
        "calibrate",
        str(trained_pipeline_dir / "pipeline"),
        str(trained_pipeline_dir / "dev.spacy"),
        "--output",
        str(out),
        "--method",
        "best_f1",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Threshold" in run.stdout
    threshold = spacy.load(out).get_pipe("anomaly_scorer").threshold
    assert threshold != 0.5
    bad = subprocess.run(
        cmd[:5] + [str(tmp_path / "missing.spacy")], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode != 0 and "Calibration data not found" in bad.stdout


def test_scorer_reports_the_false_positive_rate_at_the_threshold():
    """On normal docs only, P/R/F say nothing; the share of normal docs flagged does (issue 26, item 9)."""
    import spacy
    from spacy.training import Example

    from spacy_modernbert.anomaly.scoring import anomaly_score

    nlp = spacy.blank("en")
    examples = []
    for score in (0.1, 0.6, 0.7, 0.2):
        predicted, reference = nlp.make_doc("x"), nlp.make_doc("x")
        predicted.cats, reference.cats = {"ANOMALY": score}, {"ANOMALY": 0.0}
        examples.append(Example(predicted, reference))
    assert anomaly_score(examples, threshold=0.5)["anomaly_fpr"] == 0.5
