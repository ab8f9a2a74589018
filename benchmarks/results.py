"""One result file per benchmark run: `benchmarks/results/<benchmark>.json`, in one schema.

Why: every figure on BENCHMARKS.md is generated from these files (`python -m benchmarks
report`), so a number on the page always has its command, commit, machine, load and date
beside it, and which split chose the settings and which split reports them.

Invariant: `record()` returns the schema below and refuses a protocol without the four
keys or a summary row without the six keys; `protocol["chooses"] != protocol["reports"]`
for an accuracy figure is the benchmark's job (the page prints both beside each table).

    {"benchmark", "command", "commit", "date", "machine", "load_avg",
     "protocol": {"chooses", "reports", "checkpoint", "seeds"},
     "columns": [...], "rows": [{column: value}], "summary": [{claim, figure, range, baseline, split, caveat}],
     ...any extra keys (raw per-run detail)}
"""

import datetime
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROTOCOL_KEYS = ("chooses", "reports", "checkpoint", "seeds")
SUMMARY_KEYS = ("claim", "figure", "range", "baseline", "split", "caveat")


def git_commit() -> str:
    """The checkout's HEAD (with `+dirty` when tracked files differ), or "unknown"; read once,
    when the benchmark starts (a commit made while it runs is not the code that ran)."""
    global _COMMIT
    if _COMMIT is None:
        _COMMIT = _read_commit()
    return _COMMIT


_COMMIT = None


def head_commit() -> str:
    """The checkout's HEAD as it is now (no `+dirty` mark), or "unknown": what the NER
    benchmarks' write phases record, whose runs were made earlier by their own processes."""
    root = Path(__file__).resolve().parents[1]
    try:
        return subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _read_commit() -> str:
    root = Path(__file__).resolve().parents[1]
    sha = head_commit()
    if sha == "unknown":
        return sha
    try:
        dirty = (
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(root),
                    "diff",
                    "--quiet",
                    "HEAD",
                    "--",
                    ".",
                    ":!benchmarks/results",
                ]
            ).returncode
            != 0
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def load_avg() -> List[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def command_line(default: str) -> str:
    """The command that is running, as a user would type it (`default` when called from Python)."""
    if (
        sys.argv
        and Path(sys.argv[0]).name == "__main__.py"
        and Path(sys.argv[0]).parent.name == "benchmarks"
    ):
        return "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return default


def header(
    benchmark: str,
    command: str,
    *,
    commit: Optional[str] = None,
    machine: Optional[Dict[str, Any]] = None,
    load: Optional[Sequence[Any]] = None,
) -> Dict[str, Any]:
    """The keys every result file opens with: benchmark, command, commit, date (UTC), machine
    and load_avg. `commit` defaults to the HEAD read when the benchmark started (`git_commit`);
    a write phase that reads runs made earlier passes `head_commit()`. `load` defaults to the
    load average now; a benchmark that sampled it during its runs passes what it sampled."""
    if machine is None:
        from .report import machine_info

        machine = machine_info("cpu")
    return {
        "benchmark": benchmark,
        "command": command,
        "commit": git_commit() if commit is None else commit,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine,
        "load_avg": load_avg() if load is None else list(load),
    }


def header_of_runs(benchmark: str, command: str, loads: Sequence[float]) -> Dict[str, Any]:
    """`header` for a write phase that reads runs its own processes made earlier (the NER
    studies): the commit is HEAD as it is now and the load is the runs' 1-minute load
    averages, [lowest, highest]."""
    return header(benchmark, command, commit=head_commit(), load=[min(loads), max(loads)])


def record(
    benchmark: str,
    command: str,
    protocol: Dict[str, Any],
    columns: Sequence[str],
    rows: Sequence[Dict[str, Any]],
    summary: Sequence[Dict[str, Any]],
    machine: Optional[Dict[str, Any]] = None,
    **extra: Any,
) -> Dict[str, Any]:
    """A result in the schema of the module docstring."""
    missing = [k for k in PROTOCOL_KEYS if k not in protocol]
    if missing:
        raise ValueError(f"result {benchmark!r}: protocol lacks {missing}")
    for row in summary:
        lacking = [k for k in SUMMARY_KEYS if k not in row]
        if lacking:
            raise ValueError(
                f"result {benchmark!r}: summary row {row.get('claim')!r} lacks {lacking}"
            )
    return {
        **header(benchmark, command, machine=machine),
        "protocol": dict(protocol),
        "columns": list(columns),
        "rows": [dict(r) for r in rows],
        "summary": [dict(s) for s in summary],
        **extra,
    }


def round_order(systems: Sequence[str], round_: int) -> List[str]:
    """The speed protocol's order of round `round_`: as listed on even rounds, reversed on odd
    ones (ABC, CBA, ABC, ...), so no system always runs first or last on a drifting machine."""
    return list(systems) if round_ % 2 == 0 else list(reversed(systems))


def median_range(values: Sequence[float]) -> Dict[str, Any]:
    """{"median", "range": [min, max], "samples"} of repeated measurements."""
    import statistics

    return {
        "median": statistics.median(values),
        "range": [min(values), max(values)],
        "samples": list(values),
    }


def ratio_verdict(low: float, high: float) -> str:
    """What a range of per-round ratios (ours / anchor) supports: a lead only when all of it is above 1."""
    if low > 1.0:
        return "ours faster"
    if high < 1.0:
        return "ours slower"
    return "level: the range spans 1, no claim"
