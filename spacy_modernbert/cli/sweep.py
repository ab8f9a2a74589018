"""`python -m spacy_modernbert sweep`: hyperparameter search over a training config.

Each trial is `spacy train CONFIG` with the trial's parameters as overrides, in its own
process; its evaluations are reported as they come, so the pruner stops bad trials early.
The study lives in `--storage` (SQLite in the output directory by default), so the same
command after a crash or a kill continues the sweep. Extra `--section.setting value`
arguments are passed to every trial, as with `spacy train`.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from ._util import app

LOGGER = "spacy-modernbert.ConsoleLogger.v1"


@app.command("sweep", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sweep_cli(
    # fmt: off
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Training config (.cfg) every trial starts from"),
    space: Path = typer.Argument(
        ...,
        help="Search space: YAML (or .cfg with a \\[space] section) mapping config paths to {log_uniform|uniform|int|categorical: [...]}",
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Sweep directory: the study (sweep.db), trials/, trials.csv, best.cfg, sweep.svg",
    ),
    trials: int = typer.Option(
        20,
        "--trials",
        "-n",
        help="Number of finished trials to reach (a resumed sweep counts those already done)",
    ),
    n_jobs: int = typer.Option(1, "--n-jobs", "-j", help="Trials run at once"),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        help="SQLAlchemy URL of the study (default: sqlite:///OUTPUT/sweep.db); a shared PostgreSQL URL lets machines share one study",
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local: subprocesses on this machine; ray: Ray tasks (pip install spacy-modernbert\\[ray])",
    ),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster to join with --engine ray (default: a local one)"
    ),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", help="Start no new trial after this many seconds"
    ),
    pruner: str = typer.Option("median", "--pruner", help="median, halving, hyperband or none"),
    prune_after: int = typer.Option(
        0, "--prune-after", help="No pruning before this training step"
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the TPE sampler"),
    threads: int = typer.Option(1, "--threads", help="CPU threads per trial (OMP_NUM_THREADS)"),
    gpu_id: int = typer.Option(
        -1,
        "--gpu-id",
        "-g",
        help="GPU for the trials (-1: CPU); with --engine ray each trial gets one GPU of the cluster",
    ),
    # fmt: on
) -> None:
    """Search hyperparameters: Optuna TPE over `spacy train` trials, pruned, resumable."""
    from spacy.cli._util import parse_config_overrides

    sweep(
        config,
        space,
        output,
        trials=trials,
        n_jobs=n_jobs,
        storage=storage,
        engine=engine,
        ray_address=ray_address,
        timeout=timeout,
        pruner=pruner,
        prune_after=prune_after,
        seed=seed,
        threads=threads,
        gpu_id=gpu_id,
        overrides=parse_config_overrides(ctx.args),
    )


def sweep(
    config: Path,
    space: Path,
    output: Path,
    *,
    trials: int = 20,
    n_jobs: int = 1,
    storage: Optional[str] = None,
    engine: str = "local",
    ray_address: Optional[str] = None,
    timeout: Optional[float] = None,
    pruner: str = "median",
    prune_after: int = 0,
    seed: int = 0,
    threads: int = 1,
    gpu_id: int = -1,
    overrides: Optional[Dict[str, Any]] = None,
    train_command: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """Run (or resume) a sweep; returns the summary (trials, states, best, steps)."""
    from ..sweep.engines import ENGINES, local_engine, ray_engine
    from ..sweep.report import write_report
    from ..sweep.study import (
        PRUNERS,
        STUDY_NAME,
        SweepError,
        make_pruner,
        open_study,
        recover_interrupted,
        run_loop,
    )
    from ..sweep.trial import run_trial

    config, output = Path(config).resolve(), Path(output).resolve()
    overrides = dict(overrides or {})
    if trials < 1 or n_jobs < 1:
        msg.fail("--trials and --n-jobs must be at least 1", exits=1)
    if engine not in ENGINES:
        msg.fail(f"Unknown engine {engine!r}: use one of {', '.join(ENGINES)}", exits=1)
    if pruner not in PRUNERS:
        msg.fail(f"Unknown pruner {pruner!r}: use one of {', '.join(PRUNERS)}", exits=1)
    dims = _check_inputs(config, space, overrides)
    output.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{output / 'sweep.db'}"
    pruner_object = make_pruner(pruner, prune_after)
    try:
        study = open_study(storage, pruner_object, seed, dims)
    except SweepError as err:
        msg.fail(str(err), exits=1)
    recovered = recover_interrupted(study)
    if recovered:
        msg.info(f"Resuming: {recovered} trial(s) interrupted by a stopped sweep will run again")
    trial_gpu = 0 if (engine == "ray" and gpu_id >= 0) else gpu_id

    def run(trial: Any, params: Dict[str, Any]) -> Any:
        return run_trial(
            config,
            output / "trials" / f"trial_{trial.number:04d}",
            {**overrides, **params},
            trial,
            train_command=train_command,
            threads=threads,
            gpu_id=trial_gpu,
        )

    if engine == "ray":
        submit, close = ray_engine(
            run, storage, STUDY_NAME, pruner_object, threads, int(gpu_id >= 0), ray_address
        )
    else:
        submit, close = local_engine(n_jobs, run)
    msg.info(f"Sweep in {output}: {trials} trials, {n_jobs} at a time ({engine}), pruner {pruner}")
    try:
        run_loop(
            study, dims, trials, n_jobs, submit, lambda t, p, f: _tell(study, t, p, f), timeout
        )
    finally:
        close()
    summary = write_report(output, study, dims, config, overrides)
    best = summary["best"]
    msg.good(
        f"{summary['trials']} trials ({', '.join(f'{n} {s}' for s, n in summary['states'].items())}), "
        f"{summary['steps']} training steps"
    )
    if best:
        msg.good(f"Best: trial {best['number']}, score {best['score']:.4f}, {best['params']}")
        msg.text(f"Train it: python -m spacy train {output / 'best.cfg'} --output training/")
    else:
        msg.warn("No trial completed: no best.cfg written (see the logs named in trials.csv)")
    return summary


def _check_inputs(config: Path, space: Path, overrides: Dict[str, Any]) -> List[Any]:
    """The config (loadable, with our logger, which writes the metrics trials report) and the space."""
    from spacy.util import load_config

    from ..sweep.space import SpaceError, parse_space, read_space

    if not config.is_file():
        msg.fail(f"Config not found: {config}", exits=1)
    try:
        loaded = load_config(config, overrides=overrides, interpolate=False)
    except Exception as err:
        msg.fail(f"Cannot read the config {config}: {err}", exits=1)
    logger = loaded.get("training", {}).get("logger", {}).get("@loggers")
    if logger != LOGGER:
        msg.fail(
            f"{config}: [training.logger] is {logger!r}; sweep follows trials through {LOGGER} "
            f'(its metrics_file). Set @loggers = "{LOGGER}" (spacy-loggers\' loggers chain with it: '
            "spacy.ChainLogger.v1).",
            exits=1,
        )
    try:
        return parse_space(read_space(space), loaded)
    except SpaceError as err:
        msg.fail(f"Search space {space}: {err}", exits=1)


def _tell(study: Any, trial: Any, params: Dict[str, Any], future: Any) -> None:
    from optuna.trial import TrialState

    try:
        result = future.result()
    except Exception as err:  # TrialFailed, or a Ray task error wrapping it
        error = (str(err).strip().splitlines() or [type(err).__name__])[-1]
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        msg.warn(f"Trial {trial.number} failed ({params}): {error}")
        return
    log = result.log
    for name, value in (
        ("steps", result.steps),
        ("seconds", round(result.seconds, 1)),
        ("score", result.score),
        ("curve", result.scores),
        ("log", log),
    ):
        trial.set_user_attr(name, value)
    if result.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    elif result.score is None:
        trial.set_user_attr("error", f"no evaluation with a score (log: {log})")
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, result.score)
    score = "-" if result.score is None else f"{result.score:.4f}"
    msg.text(
        f"Trial {trial.number} {result.state}: best score {score} by step {result.steps} "
        f"({result.seconds:.0f}s) {params}"
    )
