"""Where sweep trials run: `local` threads or `ray` tasks, both handing back futures.

Each engine gets `run(trial, params)`, which trains one trial and reports its evaluations
to the trial. Locally that trial is the Optuna trial itself; a Ray task, which may run on
another machine of the cluster, rebuilds it from the study's storage (so pruning works the
same way there; the storage must then be reachable from the workers, e.g. PostgreSQL, or a
SQLite file on a local cluster).
"""

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Tuple

ENGINES = ("local", "ray")
Run = Callable[[Any, Dict[str, Any]], Any]


def local_engine(n_jobs: int, run: Run) -> Tuple[Callable[[Any, Dict[str, Any]], Future], Callable]:
    """Threads: each runs `run(trial, params)`, which follows one training subprocess."""
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="sweep-trial")

    def submit(trial: Any, params: Dict[str, Any]) -> Future:
        return pool.submit(run, trial, params)

    return submit, pool.shutdown


def ray_engine(
    run: Run, storage: str, study_name: str, pruner: Any, cpus: int, gpus: int, address: Any = None
) -> Tuple[Callable[[Any, Dict[str, Any]], Future], Callable]:
    """Ray tasks (`ray.init(address)`: a running cluster, or a local one): `cpus` CPUs and
    `gpus` GPUs each, so a cluster runs one GPU trial per GPU."""
    try:
        import ray
    except ImportError as err:
        raise RuntimeError(
            'The ray engine needs Ray: pip install "spacy-modernbert[ray]" (or use --engine local)'
        ) from err
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_remote_trial)

    def submit(trial: Any, params: Dict[str, Any]) -> Future:
        return task.remote(run, storage, study_name, pruner, trial._trial_id, params).future()

    return submit, lambda: None


def _remote_trial(
    run: Run, storage: str, study_name: str, pruner: Any, trial_id: int, params: Dict[str, Any]
) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    return run(optuna.trial.Trial(study, trial_id), params)
