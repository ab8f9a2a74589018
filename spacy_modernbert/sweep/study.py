"""The Optuna study behind `sweep`: storage, resume, and the loop that keeps K trials running.

Storage is SQLite in the output directory unless `--storage` names another SQLAlchemy URL
(PostgreSQL: several machines share one study). Every trial records its owner (host and
process id); a sweep that starts and finds a RUNNING trial whose owner on this host is gone
(the sweep was killed) marks it interrupted and queues the same parameters again, so a
resumed sweep ends with exactly N finished trials, none lost and none run twice. Interrupted
trials are kept in the study (state FAIL, user attribute `interrupted`) but never counted.

Trials are drawn in this process (TPE needs the study) and run by an engine (engines.py),
seen here as futures.
"""

import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable, Dict, List, Optional

from .space import Dimension

STUDY_NAME = "sweep"
OWNER_ATTR, INTERRUPTED_ATTR = "owner", "interrupted"
PRUNERS = ("median", "hyperband", "halving", "none")


class SweepError(RuntimeError):
    """A sweep that cannot start (storage, a study of another space); the message says why."""


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_pruner(name: str, prune_after: int) -> Any:
    """median: below the median of earlier trials at the same step; halving / hyperband:
    successive halving over the evaluated steps; none. No trial is pruned before step `prune_after`."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_warmup_steps=prune_after)
    if name in ("halving", "hyperband"):
        min_resource = prune_after if prune_after > 0 else "auto"
        if name == "halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource)
        return optuna.pruners.HyperbandPruner(
            min_resource=1 if min_resource == "auto" else min_resource
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SweepError(f"Unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


def open_study(storage: str, pruner: Any, seed: int, space: List[Dimension]) -> Any:
    """Create the study in `storage`, or load it to resume (refusing one of another space)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        rdb = optuna.storages.RDBStorage(storage, engine_kwargs=_engine_kwargs(storage))
        study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=rdb,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruner,
            load_if_exists=True,
        )
    except Exception as err:  # sqlalchemy: a bad URL, a server that does not answer, no driver
        raise SweepError(
            f"Cannot open the study storage {storage}: {type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}. "
            "Check the URL (sqlite:///path/sweep.db, postgresql://user@host/db) and that the server is reachable."
        ) from err
    described = {dim.path: dim.describe() for dim in space}
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", described)
    elif stored != described:
        raise SweepError(
            f"The study in {storage} was started with another search space ({stored}); "
            "resume it with the same space, or use a new --output (or --storage)."
        )
    return study


def _engine_kwargs(storage: str) -> Dict[str, Any]:
    # SQLite: wait for a writer in another thread or process instead of failing at once
    return {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}


def counted(trial: Any) -> bool:
    """A finished trial that counts towards --trials (not one interrupted by a killed sweep)."""
    return trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED_ATTR)


def recover_interrupted(study: Any) -> int:
    """Mark RUNNING trials of dead sweeps on this host interrupted, and queue their parameters again."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_host, _, pid = str(trial.user_attrs.get(OWNER_ATTR, "")).rpartition(":")
        if trial_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED_ATTR, True)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})
        recovered += 1
    return recovered


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


Submit = Callable[[Any, Dict[str, Any]], Future]
Tell = Callable[[Any, Dict[str, Any], Future], None]


def run_loop(
    study: Any,
    space: List[Dimension],
    n_trials: int,
    n_jobs: int,
    submit: Submit,
    tell: Tell,
    timeout: Optional[float] = None,
) -> None:
    """Keep up to `n_jobs` trials running until `n_trials` are counted (or `timeout` seconds
    have passed: then no new trial starts and the running ones finish)."""
    me = owner()
    start = time.perf_counter()
    pending: Dict[Future, Any] = {}
    while True:
        done = sum(1 for t in study.get_trials(deepcopy=False) if counted(t))
        while (
            len(pending) < n_jobs
            and done + len(pending) < n_trials
            and (timeout is None or time.perf_counter() - start < timeout)
        ):
            trial = study.ask()
            trial.set_user_attr(OWNER_ATTR, me)
            params = {dim.path: dim.suggest(trial) for dim in space}
            pending[submit(trial, params)] = (trial, params)
        if not pending:
            return
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            trial, params = pending.pop(future)
            tell(trial, params, future)
