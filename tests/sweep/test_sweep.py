"""`sweep` end to end on a stand-in trainer (fake_train.py): trials, pruning, failures, resume
after kill -9, storage errors, the Ray engine; and once with the real `spacy train`."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from spacy.util import load_config

from spacy_modernbert.cli.sweep import sweep
from spacy_modernbert.sweep.trial import run_trial
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "cpu_tiny.cfg"
FAKE = [sys.executable, str(Path(__file__).with_name("fake_train.py"))]
RATE = "training.optimizer.learn_rate.initial_rate"


def _space(tmp_path, text=f"{RATE}: {{log_uniform: [1.0e-5, 1.0e-1]}}\n"):
    path = tmp_path / "space.yml"
    path.write_text(text)
    return path


def _said(capsys):
    """What the command printed, as one line (wasabi wraps long messages)."""
    return " ".join(capsys.readouterr().out.split())


def _rows(output):
    with (output / "trials.csv").open() as stream:
        return list(csv.DictReader(stream))


def test_sweep_writes_trials_best_config_and_plots(tmp_path):
    space = _space(
        tmp_path,
        f"{RATE}: {{log_uniform: [1.0e-5, 1.0e-1]}}\ntraining.dropout: {{uniform: [0.0, 0.3]}}\n",
    )
    out = tmp_path / "sweep"
    summary = sweep(CONFIG, space, out, trials=4, pruner="none", train_command=FAKE)
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["state"] for r in rows} == {"complete"} and summary["steps"] == 4 * 50
    best = max(rows, key=lambda r: float(r["score"]))
    assert summary["best"]["number"] == int(best["number"])
    config = load_config(out / "best.cfg", interpolate=False)  # complete, with the best values in
    assert config["training"]["optimizer"]["learn_rate"]["initial_rate"] == pytest.approx(
        float(best[RATE])
    )
    assert config["training"]["dropout"] == pytest.approx(float(best["training.dropout"]))
    assert config["training"]["logger"]["metrics_file"] is None
    assert config["components"] == load_config(CONFIG, interpolate=False)["components"]
    svg = (out / "sweep.svg").read_text()
    assert (
        svg.startswith("<svg") and "Optimisation history" in svg and "Score vs initial_rate" in svg
    )
    assert "Dev score during training" in svg and svg.count("<polyline") >= 4 + 2


def test_failed_trial_is_recorded_with_its_log_and_the_sweep_goes_on(tmp_path):
    space = _space(tmp_path, "training.dropout: {categorical: [0.1, 0.95]}\n")
    out = tmp_path / "sweep"
    summary = sweep(CONFIG, space, out, trials=4, pruner="none", train_command=FAKE)
    rows = _rows(out)
    failed = [r for r in rows if r["state"] == "fail"]
    assert len(rows) == 4 and failed and len(failed) < 4
    assert all(r["training.dropout"] == "0.95" for r in failed)
    assert "exited with code 3: RuntimeError: training diverged (fake)" in failed[0]["error"]
    assert "train.log" in failed[0]["error"]
    assert summary["best"]["params"]["training.dropout"] == 0.1


class _PruneAt:
    def __init__(self, n):
        self.n, self.reports = n, []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) >= self.n


def test_trial_reports_each_evaluation_and_stops_when_pruned(tmp_path):
    os.environ["FAKE_SLEEP"] = "0.3"
    try:
        reporter = _PruneAt(2)
        start = time.perf_counter()
        result = run_trial(CONFIG, tmp_path / "t", {RATE: 1e-3}, reporter, train_command=FAKE)
    finally:
        del os.environ["FAKE_SLEEP"]
    assert result.state == "pruned" and result.steps == 20
    assert [step for step, _ in reporter.reports] == [10, 20]
    assert time.perf_counter() - start < 5 * 0.3  # stopped before the run's 5 evaluations
    complete = run_trial(CONFIG, tmp_path / "u", {RATE: 1e-3}, _PruneAt(99), train_command=FAKE)
    assert (
        complete.state == "complete"
        and complete.steps == 50
        and complete.score == pytest.approx(1.0)
    )


def test_median_pruner_stops_trials_behind_the_median(tmp_path):
    out = tmp_path / "sweep"
    summary = sweep(
        CONFIG, _space(tmp_path), out, trials=10, pruner="median", seed=1, train_command=FAKE
    )
    rows = _rows(out)
    pruned = [r for r in rows if r["state"] == "pruned"]
    assert len(rows) == 10 and pruned
    assert all(int(r["steps"]) < 50 for r in pruned)
    assert summary["steps"] < 10 * 50


def _running_sweep(tmp_path, out, trials):
    code = (
        "import sys; from spacy_modernbert.cli.sweep import sweep; "
        f"sweep({str(CONFIG)!r}, {str(_space(tmp_path))!r}, {str(out)!r}, trials={trials}, "
        f"pruner='none', train_command={FAKE!r})"
    )
    env = {**os.environ, "FAKE_SLEEP": "0.2", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def test_killed_sweep_resumes_to_exactly_n_trials(tmp_path):
    import optuna

    out = tmp_path / "sweep"
    process = _running_sweep(tmp_path, out, trials=4)
    third = out / "trials" / "trial_0002" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (third.exists() and third.read_text().count("\n") >= 1) and time.time() < deadline:
        time.sleep(0.05)
    assert third.exists(), "the sweep never reached its third trial"
    process.send_signal(signal.SIGKILL)  # kill -9, mid-trial
    process.wait()
    summary = sweep(CONFIG, _space(tmp_path), out, trials=4, pruner="none", train_command=FAKE)
    rows = _rows(out)
    assert len(rows) == 4 and summary["trials"] == 4 and {r["state"] for r in rows} == {"complete"}
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out / 'sweep.db'}")
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert [t.number for t in interrupted] == [2]  # the trial the kill cut short ...
    rerun = [t for t in study.trials if t.user_attrs.get("rerun_of") == 2]
    assert len(rerun) == 1 and rerun[0].params == interrupted[0].params  # ... ran again, once
    assert [r["number"] for r in rows] == ["0", "1", "3", "4"]  # trials 0 and 1 were not run twice
    again = sweep(CONFIG, _space(tmp_path), out, trials=4, pruner="none", train_command=FAKE)
    assert again["trials"] == 4 and len(_rows(out)) == 4  # a finished sweep has nothing left to do


def test_resume_with_another_space_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    sweep(CONFIG, _space(tmp_path), out, trials=1, pruner="none", train_command=FAKE)
    other = _space(tmp_path, f"{RATE}: {{log_uniform: [1.0e-4, 1.0e-2]}}\n")
    with pytest.raises(SystemExit):
        sweep(CONFIG, other, out, trials=2, pruner="none", train_command=FAKE)
    assert "started with another search space" in _said(capsys)


@pytest.mark.parametrize(
    "storage",
    ["sqlite:////nonexistent-dir/for/sure/sweep.db", "postgresql://nobody@127.0.0.1:9/none"],
)
def test_unreachable_storage_is_one_clear_error(tmp_path, capsys, storage):
    with pytest.raises(SystemExit):
        sweep(
            CONFIG,
            _space(tmp_path),
            tmp_path / "out",
            trials=1,
            storage=storage,
            train_command=FAKE,
        )
    assert f"Cannot open the study storage {storage}" in _said(capsys)


def test_config_without_our_logger_is_refused(tmp_path, capsys):
    config = load_config(CONFIG, interpolate=False)
    config["training"]["logger"] = {"@loggers": "spacy.ConsoleLogger.v3"}
    config.to_disk(tmp_path / "other.cfg")
    with pytest.raises(SystemExit):
        sweep(tmp_path / "other.cfg", _space(tmp_path), tmp_path / "out", train_command=FAKE)
    assert "spacy-modernbert.ConsoleLogger.v1" in _said(capsys)


@pytest.mark.slow
def test_ray_engine_gives_the_local_engine_s_trials(tmp_path):
    pytest.importorskip("ray")
    import ray

    results = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        sweep(
            CONFIG,
            _space(tmp_path),
            out,
            trials=3,
            n_jobs=2,
            engine=engine,
            pruner="none",
            train_command=FAKE,
        )
        results[engine] = [(r["number"], r[RATE], r["score"], r["state"]) for r in _rows(out)]
    ray.shutdown()
    assert results["ray"] == results["local"] and len(results["ray"]) == 3


@pytest.mark.slow
def test_sweep_over_real_spacy_train_on_the_demo_corpus(tmp_path, tiny_checkpoint):
    """Two real trials (tiny checkpoint, 4 updates, demo corpus slices): the logger's metrics
    reach the sweep, and best.cfg trains as it is."""
    from spacy_modernbert.cli.convert import convert_jsonl

    for split in ("train", "dev"):
        convert_jsonl(ROOT / "assets" / "demo" / f"{split}.jsonl", tmp_path / f"{split}.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),
        "paths.base_model": str(tiny_checkpoint),
        "corpora.train.limit": 16,
        "corpora.dev.limit": 16,
        "training.max_steps": 4,
        "training.optimizer.learn_rate.total_steps": 4,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.eval_frequency": 2,
    }
    space = _space(tmp_path, f"{RATE}: {{log_uniform: [1.0e-4, 1.0e-2]}}\n")
    out = tmp_path / "sweep"
    summary = sweep(CONFIG, space, out, trials=2, n_jobs=2, pruner="none", overrides=overrides)
    rows = _rows(out)
    assert [r["state"] for r in rows] == ["complete", "complete"], rows
    assert all(int(r["steps"]) == 4 for r in rows)
    curve = [json.loads(line) for line in (out / "trials" / "trial_0000" / "metrics.jsonl").open()]
    assert [r["step"] for r in curve] == [0, 2, 4] and "ner" in curve[-1]["losses"]
    assert (out / "trials" / "trial_0000" / "model" / "model-best").is_dir()
    best = load_config(out / "best.cfg", interpolate=False)
    assert best["paths"]["base_model"] == str(tiny_checkpoint)
    assert (
        best["training"]["optimizer"]["learn_rate"]["initial_rate"]
        == summary["best"]["params"][RATE]
    )
