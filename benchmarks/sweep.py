"""`python -m benchmarks sweep`: what `sweep`'s pruning saves and costs, and what --n-jobs buys (issue 28).

On the demo corpus (assets/demo: 420 train, 90 dev, 90 test reports), each trial is
`spacy train configs/cpu_tiny.cfg` for `--updates` updates (evaluated every `--eval-every`)
on a tiny random-init ModernBERT made by `init-model` from the demo training text, with
OMP_NUM_THREADS=1. The space is the rate (log-uniform) and the warm-up (int): both leave a
trial's compute unchanged, so steps and wall time compare settings fairly. Settings, each
one sweep of `--trials` trials with the TPE seed 0 and training seed 0:

  none-j1     no pruning, 1 trial at a time (the reference for steps and wall time)
  median-j1   median pruning (Optuna's default warm-up: none)
  median-after-j1  median pruning, no pruning before step --prune-after
  none-j2     no pruning, 2 trials at a time
  ray-j2      --engine ray, 2 at a time, the first --ray-trials trials (TPE's random start-up
              phase, where the parameters do not depend on completion order): the same
              parameters and scores as none-j2's first trials?

The shipped config (its rate and 10% warm-up) is trained once with the same budget and seed.
The dev split chooses (each trial's model-best, the sweep's best trial); the test split
reports the best trial's and the shipped config's model-best (spaCy's score weights).
"""

import os
import resource
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ._app import CacheDir, Output, app, defaults
from .report import log, write_json
from .results import command_line, record

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "cpu_tiny.cfg"
RATE = "training.optimizer.learn_rate.initial_rate"
WARMUP = "training.optimizer.learn_rate.warmup_steps"


class _NeverPrune:
    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return False


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(cache_dir: Path) -> Dict[str, Path]:
    """The tiny checkpoint and the demo corpus as .spacy files (cached)."""
    from spacy_modernbert.cli.convert import convert_jsonl
    from spacy_modernbert.tiny import create_tiny_checkpoint

    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {"checkpoint": cache_dir / "tiny-demo"}
    if not (paths["checkpoint"] / "config.json").exists():
        create_tiny_checkpoint(paths["checkpoint"], [ROOT / "assets" / "demo" / "train.jsonl"])
    for split in ("train", "dev", "test"):
        paths[split] = cache_dir / f"{split}.spacy"
        if not paths[split].exists():
            convert_jsonl(ROOT / "assets" / "demo" / f"{split}.jsonl", paths[split])
    return paths


def budget_overrides(paths: Dict[str, Path], updates: int, eval_every: int) -> Dict[str, Any]:
    return {
        "paths.train": str(paths["train"]),
        "paths.dev": str(paths["dev"]),
        "paths.base_model": str(paths["checkpoint"]),
        "training.max_steps": updates,
        "training.optimizer.learn_rate.total_steps": updates,
        "training.eval_frequency": eval_every,
        "system.seed": 0,
    }


def test_score(model: Path, test: Path) -> Dict[str, float]:
    """spaCy's weighted score (the config's score weights) and its parts on the test split."""
    import spacy
    from spacy.training import Corpus

    nlp = spacy.load(model)
    scores = nlp.evaluate(Corpus(str(test))(nlp))
    weights = {k: v for k, v in nlp.config["training"]["score_weights"].items() if v}
    total = sum((scores.get(k) or 0.0) * w for k, w in weights.items())
    return {"score": total, **{k: scores.get(k) for k in weights}}


def run_setting(
    name: str, work: Path, space: Path, overrides: Dict[str, Any], trials: int, **options: Any
) -> Dict[str, Any]:
    from spacy_modernbert.cli.sweep import sweep

    out = work / name
    log(f"{name}: {trials} trials, {options}")
    cpu, start = _children_cpu(), time.perf_counter()
    summary = sweep(CONFIG, space, out, trials=trials, overrides=overrides, **options)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    rows = _trial_rows(out)
    return {
        "setting": name,
        "trials": summary["trials"],
        "states": summary["states"],
        "steps": summary["steps"],
        "best_dev": summary["best"]["score"] if summary["best"] else None,
        "best_params": summary["best"]["params"] if summary["best"] else None,
        "best_trial": summary["best"]["number"] if summary["best"] else None,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "trial_rows": rows,
        "dir": str(out),
    }


def _trial_rows(out: Path) -> List[Dict[str, str]]:
    import csv

    with (out / "trials.csv").open() as stream:
        return list(csv.DictReader(stream))


def run(
    output: Optional[Path] = Path("benchmarks/results/sweep.json"),
    cache_dir: Path = Path(".benchmark_cache/sweep"),
    trials: int = 16,
    updates: int = 60,
    eval_every: int = 10,
    prune_after: int = 20,
    ray_trials: int = 4,
    skip: str = "",
) -> Dict[str, Any]:
    from spacy_modernbert.sweep.trial import run_trial

    cache_dir = Path(cache_dir).resolve()
    paths = prepare(cache_dir)
    work = cache_dir / f"runs-{int(time.time())}"
    work.mkdir(parents=True)
    space = work / "space.yml"
    warmup_high = updates // 3
    space.write_text(
        f"{RATE}: {{log_uniform: [3.0e-4, 5.0e-3]}}\n{WARMUP}: {{int: [0, {warmup_high}]}}\n"
    )
    overrides = budget_overrides(paths, updates, eval_every)
    skipped = {s for s in skip.split(",") if s}
    settings = [
        ("none-j1", trials, {"pruner": "none"}),
        ("median-j1", trials, {"pruner": "median"}),
        ("median-after-j1", trials, {"pruner": "median", "prune_after": prune_after}),
        ("none-j2", trials, {"pruner": "none", "n_jobs": 2}),
        ("ray-j2", ray_trials, {"pruner": "none", "n_jobs": 2, "engine": "ray"}),
    ]
    results = {}
    for name, n, options in settings:
        if name not in skipped:
            results[name] = run_setting(name, work, space, overrides, n, **options)

    # the shipped config: its own rate and a 10% warm-up, the same budget and seed
    log("shipped config")
    shipped_dir = work / "shipped"
    shipped_overrides = {**overrides, WARMUP: updates // 10}
    trained = run_trial(CONFIG, shipped_dir, shipped_overrides, _NeverPrune())
    shipped = {
        "best_dev": trained.score,
        "curve": trained.scores,
        "test": test_score(shipped_dir / "model" / "model-best", paths["test"]),
    }
    for res in results.values():
        if res["best_trial"] is not None:
            model = (
                Path(res["dir"])
                / "trials"
                / f"trial_{res['best_trial']:04d}"
                / "model"
                / "model-best"
            )
            res["best_test"] = test_score(model, paths["test"])
    return _record(results, shipped, trials, updates, eval_every, prune_after, ray_trials, output)


_D = defaults(run)


@app.command("sweep")
def sweep_cli(
    # fmt: off
    output: Output = _D["output"],
    cache_dir: CacheDir = _D["cache_dir"],
    trials: int = typer.Option(_D["trials"], "--trials", help="Trials per sweep"),
    updates: int = typer.Option(_D["updates"], "--updates", help="Training updates per trial"),
    eval_every: int = typer.Option(
        _D["eval_every"], "--eval-every", help="Evaluate (and report to the pruner) every N updates"
    ),
    prune_after: int = typer.Option(
        _D["prune_after"], "--prune-after", help="The median-after setting's --prune-after"
    ),
    ray_trials: int = typer.Option(
        _D["ray_trials"], "--ray-trials", help="Trials of the ray-j2 setting"
    ),
    skip: str = typer.Option(
        _D["skip"],
        "--skip",
        help="Comma-separated settings not to run (none-j1, median-j1, median-after-j1, none-j2, ray-j2)",
    ),
    # fmt: on
) -> None:
    """Pruning (steps, best dev score vs the shipped config) and --n-jobs 2 vs 1 on the demo corpus."""
    run(output, cache_dir, trials, updates, eval_every, prune_after, ray_trials, skip)


def _record(results, shipped, trials, updates, eval_every, prune_after, ray_trials, output):
    reference = results.get("none-j1")
    rows = []
    for name, res in results.items():
        rows.append(
            {
                "setting": name,
                "trials": res["trials"],
                "states": res["states"],
                "training steps": res["steps"],
                "steps / none-j1": res["steps"] / reference["steps"] if reference else None,
                "best dev score": res["best_dev"],
                "its test score": (res.get("best_test") or {}).get("score"),
                "wall s": res["wall_s"],
                "wall / none-j1": res["wall_s"] / reference["wall_s"]
                if reference and name != "ray-j2"
                else None,
                "child CPU s": res["cpu_s"],
            }
        )
    rows.append(
        {
            "setting": "shipped config (1 run)",
            "trials": 1,
            "training steps": updates,
            "best dev score": shipped["best_dev"],
            "its test score": shipped["test"]["score"],
        }
    )
    summary = []
    caveat = (
        f"one sweep per setting (the issue's protocol), not 3 seeds; tiny random-init checkpoint, "
        f"{updates} updates per trial; 2 cores shared with other jobs (load in the result)"
    )
    for name in ("median-j1", "median-after-j1"):
        if name in results and reference:
            res = results[name]
            summary.append(
                {
                    "claim": f"sweep pruning ({name}): training steps of {trials} trials vs no pruning",
                    "figure": f"{res['steps'] / reference['steps']:.2f}x; best dev {res['best_dev']:.3f} vs {reference['best_dev']:.3f}",
                    "range": f"{res['states']}",
                    "baseline": f"none-j1: {reference['steps']} steps",
                    "split": "dev chooses and reports the sweep score",
                    "caveat": caveat,
                }
            )
    best = max(
        (r for r in results.values() if r["best_dev"] is not None),
        key=lambda r: r["best_dev"],
        default=None,
    )
    if reference:
        summary.append(
            {
                "claim": "sweep (no pruning) best trial vs the shipped config, same budget and seed",
                "figure": f"dev {reference['best_dev']:.3f} vs {shipped['best_dev']:.3f}; test {reference['best_test']['score']:.3f} vs {shipped['test']['score']:.3f}",
                "range": "-",
                "baseline": "configs/cpu_tiny.cfg's rate, 10% warm-up",
                "split": "dev chooses, test reports",
                "caveat": caveat,
            }
        )
    if "none-j2" in results and reference:
        par = results["none-j2"]
        summary.append(
            {
                "claim": f"sweep --n-jobs 2 vs 1, wall time of {trials} single-threaded trials",
                "figure": f"{par['wall_s'] / reference['wall_s']:.2f}x",
                "range": f"load avg after: {reference['load_avg_after']} / {par['load_avg_after']}",
                "baseline": f"--n-jobs 1: {reference['wall_s']:.0f} s",
                "split": "-",
                "caveat": "one run each on a shared 2-core machine: the other jobs' load changes both; a wall-time figure",
            }
        )
    if "ray-j2" in results and "none-j2" in results:
        ray_rows = results["ray-j2"]["trial_rows"]
        local_rows = results["none-j2"]["trial_rows"][: len(ray_rows)]
        same = [(r[RATE], r[WARMUP], r["score"]) for r in ray_rows] == [
            (r[RATE], r[WARMUP], r["score"]) for r in local_rows
        ]
        summary.append(
            {
                "claim": f"--engine ray (2 local workers) gives the local engine's trials: first {len(ray_rows)} trials",
                "figure": "identical parameters and scores" if same else "DIFFERENT",
                "range": "-",
                "baseline": "none-j2's first trials",
                "split": "dev",
                "caveat": "TPE's random start-up trials only (later ones depend on completion order)",
            }
        )
    result = record(
        "sweep",
        command_line("python -m benchmarks sweep"),
        {
            "chooses": "demo dev (90 reports): each trial's model-best and the sweep's best trial",
            "reports": "demo test (90 reports) for the best trial and the shipped config; steps and wall time",
            "checkpoint": "tiny random-init ModernBERT (init-model on the demo training text), no pretraining, the same for every trial",
            "seeds": "TPE seed 0, training seed 0; one sweep per setting",
        },
        [
            "setting",
            "trials",
            "states",
            "training steps",
            "steps / none-j1",
            "best dev score",
            "its test score",
            "wall s",
            "wall / none-j1",
            "child CPU s",
        ],
        rows,
        summary,
        updates=updates,
        eval_every=eval_every,
        prune_after=prune_after,
        ray_trials=ray_trials,
        settings={k: {kk: vv for kk, vv in v.items() if kk != "dir"} for k, v in results.items()},
        shipped=shipped,
        best=None if best is None else best["best_params"],
    )
    write_json(output, result)
    return result
