"""The evaluation curves: the PR plot is the step function AP integrates, with its baseline."""

import numpy
import pytest

from spacy_modernbert.anomaly.curves import average_precision, precision_recall_curve
from spacy_modernbert.anomaly.plots import pr_step_points, write_curve_svg


def test_pr_steps_start_without_a_spike_and_enclose_the_average_precision():
    gold = [0, 0, 1, 1, 0, 1, 0, 0]  # the two top-scored docs are normal
    scores = [0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.2, 0.1]
    precision, recall, _ = precision_recall_curve(gold, scores)
    assert recall[0] == 0 and precision[0] == 0  # the raw curve starts at (0, 0)
    xs, ys = pr_step_points(precision, recall)
    assert (xs[0], ys[0]) == (
        0.0,
        pytest.approx(1 / 3),
    )  # the first step is at the first hit's precision
    assert all(b >= a for a, b in zip(xs, xs[1:])) and xs[-1] == 1.0
    area = sum((x1 - x0) * y for x0, x1, y in zip(xs[::2], xs[1::2], ys[::2]))
    assert area == pytest.approx(average_precision(gold, scores))


def test_pr_svg_has_the_ap_title_and_the_prevalence_line(tmp_path):
    xs, ys = pr_step_points(numpy.array([1.0, 0.5]), numpy.array([0.5, 1.0]))
    path = write_curve_svg(
        tmp_path / "pr.svg",
        xs,
        ys,
        "Precision-recall (AP 0.750)",
        "recall",
        "precision",
        baseline=(0.25, "prevalence 0.250"),
    )
    svg = path.read_text()
    assert "Precision-recall (AP 0.750)" in svg and "prevalence 0.250" in svg
    assert svg.count("<polyline") == 3  # axes, baseline, curve
