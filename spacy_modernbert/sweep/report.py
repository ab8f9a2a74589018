"""What a sweep leaves in its directory: best.cfg, trials.csv and sweep.svg.

best.cfg is the sweep's config with the command's overrides and the best trial's
parameters written in: `spacy train best.cfg` trains that trial again as it is.
"""

import csv
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..charts import Panel, Series, write_svg
from .space import Dimension
from .study import counted

TRIAL_ATTRS = ("steps", "seconds", "log", "error")


def finished_trials(study: Any) -> List[Any]:
    return [trial for trial in study.get_trials(deepcopy=False) if counted(trial)]


def write_trials_csv(path: Path, trials: List[Any], space: List[Dimension]) -> Path:
    """One row per counted trial: number, state, parameters, best score, steps, seconds, log or error."""
    with Path(path).open("w", newline="", encoding="utf8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["number", "state", *[d.path for d in space], "score", *TRIAL_ATTRS])
        for trial in trials:
            score = trial.user_attrs.get("score")
            writer.writerow(
                [trial.number, trial.state.name.lower()]
                + [trial.params.get(d.path, "") for d in space]
                + ["" if score is None else f"{score:.6f}"]
                + [trial.user_attrs.get(name, "") for name in TRIAL_ATTRS]
            )
    return Path(path)


def best_trial(trials: List[Any]) -> Optional[Any]:
    """The complete trial with the highest score (pruned trials stopped early: not a candidate)."""
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number), default=None)


def write_best_config(path: Path, config_path: Path, overrides: Dict[str, Any], best: Any) -> Path:
    from spacy.util import load_config

    config = load_config(config_path, overrides={**overrides, **best.params}, interpolate=False)
    config.to_disk(path)
    return Path(path)


def sweep_panels(trials: List[Any], space: List[Dimension]) -> List[Panel]:
    """Optimisation history, parameter importances, score against each parameter, trial curves."""
    scored = [
        (t.number, t.user_attrs["score"]) for t in trials if t.user_attrs.get("score") is not None
    ]
    best_so_far: List[float] = []
    for _, score in scored:
        best_so_far.append(max(score, best_so_far[-1]) if best_so_far else score)
    panels = [
        Panel(
            "Optimisation history",
            "trial",
            "best dev score",
            [
                Series(
                    "trial",
                    [n for n, _ in scored],
                    [s for _, s in scored],
                    lines=False,
                    points=True,
                ),
                Series("best so far", [n for n, _ in scored], best_so_far, colour="black"),
            ],
        )
    ]
    importances = parameter_importances(trials, space)
    if importances:
        panels.append(Panel("Parameter importance (fANOVA)", bars=list(importances.items())))
    for dim in space:
        points = [
            (t.params[dim.path], t.user_attrs["score"])
            for t in trials
            if dim.path in t.params and t.user_attrs.get("score") is not None
        ]
        xs = [_axis_value(dim, value) for value, _ in points]
        label = dim.path + (" (index in the list)" if _indexed(dim) else "")
        panels.append(
            Panel(
                f"Score vs {dim.path.split('.')[-1]}",
                label,
                "best dev score",
                [Series("", xs, [s for _, s in points], lines=False, points=True)],
                log_x=dim.log,
            )
        )
    curves = [
        Series(f"#{t.number} {t.state.name.lower()}", [s for s, _ in c], [v for _, v in c])
        for t in trials
        for c in [t.user_attrs.get("curve") or []]
        if c
    ]
    panels.append(Panel("Dev score during training", "step", "dev score", curves))
    return panels


def _indexed(dim: Dimension) -> bool:
    return dim.kind == "categorical" and not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in dim.values
    )


def _axis_value(dim: Dimension, value: Any) -> float:
    return float(list(dim.values).index(value)) if _indexed(dim) else float(value)


def parameter_importances(trials: List[Any], space: List[Dimension]) -> Dict[str, float]:
    """fANOVA importances over the complete trials ({} when too few to say anything)."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if len(space) < 2 or len(complete) < 3:
        return {}
    import optuna

    study = optuna.create_study(direction="maximize")
    study.add_trials(complete)
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):
        return {}


def write_report(
    output: Path, study: Any, space: List[Dimension], config_path: Path, overrides: Dict[str, Any]
) -> Dict[str, Any]:
    """Write trials.csv, best.cfg (when a trial completed) and sweep.svg; return a summary."""
    output = Path(output)
    trials = finished_trials(study)
    write_trials_csv(output / "trials.csv", trials, space)
    write_svg(output / "sweep.svg", sweep_panels(trials, space))
    best = best_trial(trials)
    if best is not None:
        write_best_config(output / "best.cfg", config_path, overrides, best)
    states = [t.state.name.lower() for t in trials]
    return {
        "trials": len(trials),
        "states": {state: states.count(state) for state in sorted(set(states))},
        "best": None
        if best is None
        else {"number": best.number, "score": best.value, "params": best.params},
        "steps": sum(int(t.user_attrs.get("steps", 0)) for t in trials),
    }
