"""One sweep trial: `spacy train` with the trial's overrides, in a subprocess, followed as it runs.

The trial's training writes one JSON line per evaluation (our logger's `metrics_file`); the
sweep reads each new line, reports its score to the trial (Optuna's intermediate values),
and stops the process as soon as the pruner says the trial is behind. A process that
exits with an error is a failed trial, named with its log.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

SPACY_TRAIN = [sys.executable, "-m", "spacy", "train"]
POLL_SECONDS = 0.25


class Reporter(Protocol):
    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


class TrialFailed(RuntimeError):
    """The training process exited with an error; the message names its log."""


@dataclass
class TrialResult:
    state: str  # "complete" or "pruned"
    score: Optional[float]  # the best evaluation's score (the one model-best keeps)
    steps: int  # the last evaluated step
    seconds: float
    scores: List[List[float]]  # [step, score] per evaluation
    log: str  # the training process's output


def override_args(overrides: Dict[str, Any]) -> List[str]:
    """`--path value` pairs as spaCy's CLI reads them (values as JSON)."""
    args: List[str] = []
    for path, value in overrides.items():
        args += [f"--{path}", json.dumps(value)]
    return args


def run_trial(
    config: Path,
    trial_dir: Path,
    overrides: Dict[str, Any],
    reporter: Reporter,
    *,
    train_command: Optional[List[str]] = None,
    threads: int = 1,
    gpu_id: int = -1,
) -> TrialResult:
    """Train one trial in `trial_dir` (model/, metrics.jsonl, train.log) and follow it."""
    trial_dir = Path(trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    metrics, log = trial_dir / "metrics.jsonl", trial_dir / "train.log"
    metrics.unlink(missing_ok=True)
    command = list(train_command or SPACY_TRAIN) + [
        str(config),
        "--output",
        str(trial_dir / "model"),
    ]
    command += ["--gpu-id", str(gpu_id)] if gpu_id >= 0 else []
    command += ["--training.logger.metrics_file", str(metrics)] + override_args(overrides)
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    start = time.perf_counter()
    scores: List[List[float]] = []
    with log.open("w", encoding="utf8") as log_stream:
        log_stream.write("$ " + " ".join(command) + "\n")
        log_stream.flush()
        process = subprocess.Popen(
            command,
            stdout=log_stream,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        follower = _LineFollower(metrics)
        pruned = False
        try:
            while True:
                finished = process.poll() is not None
                for record in follower.new_records():
                    if record.get("score") is None:
                        continue
                    step, score = int(record["step"]), float(record["score"])
                    scores.append([step, score])
                    reporter.report(score, step)
                    if reporter.should_prune():
                        pruned = True
                        break
                if pruned or finished:
                    break
                time.sleep(POLL_SECONDS)
        finally:
            if process.poll() is None:
                _kill(process)
    seconds = time.perf_counter() - start
    if not pruned and process.returncode != 0:
        raise TrialFailed(
            f"training exited with code {process.returncode}: {_last_line(log)} (log: {log})"
        )
    return TrialResult(
        state="pruned" if pruned else "complete",
        score=max((s for _, s in scores), default=None),
        steps=int(scores[-1][0]) if scores else 0,
        seconds=seconds,
        scores=scores,
        log=str(log),
    )


class _LineFollower:
    """The complete JSON lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new_records(self) -> List[Dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _die_with_parent() -> None:
    """Linux: the training process is killed when the sweep dies (even by kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _last_line(log: Path) -> str:
    lines = [
        line
        for line in log.read_text(encoding="utf8", errors="replace").splitlines()
        if line.strip()
    ]
    return lines[-1].strip()[:300] if lines else "no output"
