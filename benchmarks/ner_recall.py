"""Why ours under-recalls on the pretrained NER protocol (issue 33): dev-only diagnostics, one change at a time.

On `ner_protocol.py --protocol pretrained` (round 6, `results/ner_pretrained_r5.json`) ours
(spaCy's transition-based `ner` on our encoder) trails the tuned HF loop by 1.29 F1 on test,
and the gap is recall (ours P 63-68 / R 50-54, HF P 54-58 / R 61-63). This module measures, on
the protocol's DEV split only (the last 10% of CoNLL train; CoNLL valid is never read here),
each candidate change to ours at ours' dev choice of that round (1-sentence docs, rate 2e-3,
30% warmup, global grad-norm clip 1.0, 125 updates), on dev seeds 0-2, and the HF loop at its
own choice (4e-3, 30% warmup) for its per-label errors. Every diagnostic has its own tag in
`benchmarks/ner_study_results.jsonl` (`recall33-<name>`), so none mixes with a protocol run.

ADOPTION RULE (fixed before any of these runs, commit message and notes say so): a change
is adopted into ours' protocol recipe only if its mean dev F1 over seeds 0-2 is at least
`MIN_GAIN` (+1.0) above the baseline's (the same point without the change, rerun here under
its own tag) AND it beats the baseline on at least `MIN_WINS` (2) of the 3 seeds. When
several pass, the one with the highest dev mean is adopted (one change). No test figure is
read by this module.

    python benchmarks/ner_recall.py run --jobs 1            # every diagnostic, seeds 0-2, dev
    python benchmarks/ner_recall.py run base hf --jobs 1    # some of them
    python benchmarks/ner_recall.py write                   # results/ner_recall_dev.json
    python benchmarks/ner_recall.py run --study config --jobs 2 && ... write --study config
                                      # batch 16's analogue at configs/cpu_tiny.cfg's budget
    python benchmarks/ner_recall.py run --study ship --jobs 2 && ... write --study ship
                                      # whether configs/cpu_tiny.cfg moves to 400 words

SHIP RULE (`--study ship`, issue 33 round 8; fixed 2026-12-03 20:14 UTC, before any of its runs,
in this docstring, the commit message and notes/issue_33a.md): `configs/cpu_tiny.cfg` moves to
`batch_by_words` size 400 with `max_steps`, `total_steps` and `warmup_steps` doubled (600 / 600
/ 60: the same data and epochs in twice the updates, warmup still 10% of the run) ONLY if, on
DEV (the last 10% of CoNLL train; CoNLL valid is the test split and is never read here), at
the config's budget (`ner_protocol.py config`'s: random-init checkpoint, 8,000 pool sentences
x 2 epochs, 6 state tokens, warmup 10% of the run), seeds 0-2:
- each recipe (batches of 800 words, shipped; 400 words, the candidate) is run at the shipped
  rate 2e-3 and its grid neighbours 1e-3 and 4e-3 (`ner_protocol.RATES`), and each recipe's
  rate is the one with the best mean dev F1 over seeds 0-2; when a recipe's best is at an end
  of that grid, the next rate beyond it (5e-4 or 8e-3) is run too and the choice made again;
  the shipped recipe gets the same rates as the candidate, so the candidate's rate recheck is
  no tuned knob the shipped one lacks (this can only make the rule stricter);
- the 400-word recipe at its chosen rate beats the 800-word recipe at its chosen rate by
  >= `SHIP_GAIN` (+0.5) mean dev F1 AND on >= `MIN_WINS` (2) of the 3 seeds.
If it passes, the config takes the 400-word recipe's chosen rate too (and the 800-word
recipe's chosen rate is recorded either way). Runs already in `ner_study_results.jsonl` under
tag `recall33-config` (800 and 400 words at 2e-3, seeds 0-2: the `config` study) are the same
runs and are reused, not run again.
"""

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import ner_protocol as protocol  # noqa: E402

SEEDS = (0, 1, 2)
TAG_PREFIX = "recall33-"
MIN_GAIN, MIN_WINS = 1.0, 2
SHIP_GAIN = 0.5  # `--study ship`'s rule (docstring)
# ours' dev choice of round 6 (ner_pretrained_r5.json) and the HF loop's
BASE_LR = 2e-3
BASE = {"docs_of": 1, "epochs": protocol.EPOCHS, "warmup": 0.3, **protocol.OURS_CLIP}
# name -> (system, lr, settings): each a single change to BASE (the HF loop: its own choice)
DIAGNOSTICS: Dict[str, Tuple[str, float, Dict[str, Any]]] = {
    "base": ("ours", BASE_LR, BASE),
    "hf": ("hf", 4e-3, {"warmup": 0.3, "epochs": protocol.EPOCHS}),
    # the ner's hidden layer (64 wide, 2 maxout pieces in ner_study / the configs)
    "hidden_width_128": ("ours", BASE_LR, {**BASE, "hidden_width": 128}),
    "hidden_width_256": ("ours", BASE_LR, {**BASE, "hidden_width": 256}),
    "maxout_pieces_3": ("ours", BASE_LR, {**BASE, "maxout_pieces": 3}),
    # the randomly initialized ner head at 2x / 4x the encoder's rate (the encoder stays at 2e-3:
    # the encoder's learn_rate_scale)
    "head_rate_x2": ("ours", 2 * BASE_LR, {**BASE, "learn_rate_scale": 0.5}),
    "head_rate_x4": ("ours", 4 * BASE_LR, {**BASE, "learn_rate_scale": 0.25}),
    # the ner learns from whole docs instead of ~100-move cuts (spaCy's default 100)
    "oracle_cut_1000": ("ours", BASE_LR, {**BASE, "oracle_cut": 1000}),
    # 16 sentences per step: 250 updates over the same 2 epochs
    "batch_16": ("ours", BASE_LR, {**BASE, "batch_size": 16}),
}


# `--study config`: the one adopted change carried to configs/cpu_tiny.cfg's budget
# (`ner_protocol.py config`: the random-init checkpoint, 8,000 pool sentences x 2 epochs in
# batches of about 800 words, about 290 updates, 6 state tokens, the config's rate 2e-3), with
# batches of 400 words (twice the updates over the same data), dev seeds 0-2, one tag for both.
CONFIG_DIAGNOSTICS: Dict[str, Tuple[str, float, Dict[str, Any]]] = {
    "config_base": ("ours", 2e-3, dict(protocol.CONFIG_SETTINGS)),
    "config_batch_words_400": ("ours", 2e-3, {**protocol.CONFIG_SETTINGS, "batch_words": 400}),
}


# `--study ship`: both recipes of the `config` study at the shipped rate and its neighbours (the
# names of the `config` study's two points are kept: the same runs), plus one rate beyond each
# end of the grid, run only when a recipe's best is at that end (SHIP RULE, docstring).
SHIP_RATES = (1e-3, 2e-3, 4e-3)
SHIP_EDGES = {1e-3: 5e-4, 4e-3: 8e-3}
SHIP_RECIPES = {"config_base": 800, "config_batch_words_400": 400}


def ship_name(recipe: str, lr: float) -> str:
    return recipe if lr == 2e-3 else f"{recipe}_lr{lr:g}"


SHIP_DIAGNOSTICS: Dict[str, Tuple[str, float, Dict[str, Any]]] = {
    ship_name(recipe, lr): ("ours", lr, {**protocol.CONFIG_SETTINGS, "batch_words": words})
    for recipe, words in SHIP_RECIPES.items()
    for lr in sorted({*SHIP_RATES, *SHIP_EDGES.values()})
}


@dataclass(frozen=True)
class Study:
    diagnostics: Dict[str, Tuple[str, float, Dict[str, Any]]]
    base: str
    n_train: int
    tag: str  # "" : one tag per diagnostic (TAG_PREFIX + name)
    checkpoint: str
    output: str
    # the ship rule: each recipe (the value of this setting) at its best-mean rate, the base
    # recipe's best against the others'; "" : every diagnostic against `base` as it is
    recipe_key: str = ""
    min_gain: float = MIN_GAIN


STUDIES = {
    "pretrained": Study(
        DIAGNOSTICS,
        "base",
        protocol.N_TRAIN,
        "",
        protocol.PROTOCOLS["pretrained"].checkpoint,
        "ner_recall_dev",
    ),
    "config": Study(
        CONFIG_DIAGNOSTICS,
        "config_base",
        protocol.CONFIG_N_TRAIN,
        TAG_PREFIX + "config",
        protocol.PROTOCOLS["random"].checkpoint
        + f"; configs/cpu_tiny.cfg's budget: {protocol.CONFIG_N_TRAIN:,} pool sentences x 2 epochs",
        "ner_recall_config_dev",
    ),
    "ship": Study(
        SHIP_DIAGNOSTICS,
        "config_base",
        protocol.CONFIG_N_TRAIN,
        TAG_PREFIX + "config",
        protocol.PROTOCOLS["random"].checkpoint
        + f"; configs/cpu_tiny.cfg's budget: {protocol.CONFIG_N_TRAIN:,} pool sentences x 2 epochs",
        "ner_ship_config_dev",
        recipe_key="batch_words",
        min_gain=SHIP_GAIN,
    ),
}


def tag_of(name: str, study: Study = STUDIES["pretrained"]) -> str:
    return study.tag or TAG_PREFIX + name


def runs_of(
    name: str, results: Path = protocol.RESULTS, study: Study = STUDIES["pretrained"]
) -> Dict[int, Dict[str, Any]]:
    """{seed: run} of diagnostic `name` (its tag, its system / rate / settings, dev)."""
    system, lr, settings = study.diagnostics[name]
    return {
        r["seed"]: r
        for r in protocol.read_runs(results, tag_of(name, study), study.n_train)
        if r["split"] == "dev"
        and r["system"] == system
        and r["lr"] == lr
        and r["settings"] == settings
        and r["seed"] in SEEDS
    }


def run(
    names: Sequence[str],
    jobs: int,
    results: Path,
    cache_dir: Path,
    study: Study = STUDIES["pretrained"],
) -> None:
    from benchmarks.ner_study import DATA_DIR

    extra: List[str] = []
    if study is STUDIES["pretrained"]:
        checkpoint, _ = protocol.ensure_pretrained(cache_dir, DATA_DIR)
        extra = ["--checkpoint", str(checkpoint)]
    for name in names:
        system, lr, settings = study.diagnostics[name]
        todo = [(system, lr, dict(settings), "dev", seed) for seed in SEEDS]
        print(f"{name}:", flush=True)
        protocol.execute(todo, jobs, results, extra, tag_of(name, study), study.n_train)
    if study.recipe_key:  # a recipe's best at an end of the grid: the next rate too (SHIP RULE)
        more = pending(results, study)
        if more:
            run(more, jobs, results, cache_dir, study)


def default_names(study: Study) -> List[str]:
    """What `run` runs when no names are given: every diagnostic, or a ship study's rate grid
    (the rates beyond its ends follow when `pending` asks for them)."""
    if not study.recipe_key:
        return list(study.diagnostics)
    base = study.diagnostics[study.base][2][study.recipe_key]
    grid = [n for n, (_, lr, _) in study.diagnostics.items() if lr in SHIP_RATES]
    # the candidate's rates first
    return sorted(grid, key=lambda n: study.diagnostics[n][2][study.recipe_key] == base)


def _complete(results: Path, study: Study) -> Dict[str, Dict[int, Dict[str, Any]]]:
    """{name: {seed: run}} of the diagnostics that have run on every seed."""
    out = {}
    for name in study.diagnostics:
        runs = runs_of(name, results, study)
        if set(runs) == set(SEEDS):
            out[name] = runs
    return out


def _mean_f1(runs: Dict[int, Dict[str, Any]]) -> float:
    return statistics.mean(runs[s]["f1"] for s in SEEDS)


def recipe_choices(results: Path, study: Study) -> Dict[Any, str]:
    """{recipe: the name of its diagnostic with the best mean dev F1 over SEEDS} (ship rule)."""
    choices: Dict[Any, str] = {}
    for name, runs in _complete(results, study).items():
        recipe = study.diagnostics[name][2][study.recipe_key]
        best = choices.get(recipe)
        if best is None or _mean_f1(runs) > _mean_f1(runs_of(best, results, study)):
            choices[recipe] = name
    return choices


def pending(results: Path, study: Study) -> List[str]:
    """The rates beyond the grid's ends that the ship rule still needs: for each recipe whose
    best rate is at an end of SHIP_RATES, the next rate out, when it has not run on every seed."""
    done = _complete(results, study)
    out = []
    for name in recipe_choices(results, study).values():
        _, lr, settings = study.diagnostics[name]
        if lr in SHIP_EDGES:
            edge = next(
                n
                for n, (_, r, s) in study.diagnostics.items()
                if r == SHIP_EDGES[lr] and s == settings
            )
            if edge not in done:
                out.append(edge)
    return out


def _merge_errors(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The runs' `errors` (accuracy.span_errors) summed over seeds."""
    total: Dict[str, Any] = {
        "by_label": {},
        "by_length": {},
        "missed": {},
        "n_gold": 0,
        "n_pred": 0,
    }
    for r in runs:
        e = r["errors"]
        for part in ("by_label", "by_length"):
            for key, counts in e[part].items():
                slot = total[part].setdefault(key, {"tp": 0, "fp": 0, "fn": 0})
                for k, v in counts.items():
                    slot[k] += v
        for k, v in e["missed"].items():
            total["missed"][k] = total["missed"].get(k, 0) + v
        total["n_gold"] += e["n_gold"]
        total["n_pred"] += e["n_pred"]
    return total


def _pr(counts: Dict[str, int]) -> str:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    p = 100 * tp / (tp + fp) if tp + fp else 0.0
    r = 100 * tp / (tp + fn) if tp + fn else 0.0
    return f"{p:.1f}/{r:.1f}"


def verdict(
    base: Dict[int, float], other: Dict[int, float], min_gain: float = MIN_GAIN
) -> Dict[str, Any]:
    """The adoption rule: gain of the mean over SEEDS >= min_gain and wins on >= MIN_WINS seeds."""
    gain = statistics.mean(other.values()) - statistics.mean(base.values())
    wins = sum(other[s] > base[s] for s in SEEDS)
    return {
        "gain": round(gain, 2),
        "wins": wins,
        "passes": round(gain, 6) >= min_gain and wins >= MIN_WINS,
    }


def summarize(
    results: Path = protocol.RESULTS, study: Study = STUDIES["pretrained"]
) -> List[Dict[str, Any]]:
    """One row per diagnostic whose 3 seeds have run: dev F1 mean / by seed, P / R, the rule's
    verdict against `base`, predicted and gold entity counts, P/R per label and per length
    (summed over seeds) and the kinds of missed entities. A ship study (`recipe_key`) compares
    each recipe's rows with the base recipe at its best rate, and marks each recipe's `chosen` row."""
    complete = _complete(results, study)
    base_name, chosen = study.base, set()
    base_settings = study.diagnostics[study.base][2]
    if study.recipe_key:
        choices = recipe_choices(results, study)
        chosen = set(choices.values())
        base_name = choices.get(base_settings[study.recipe_key], study.base)
    if base_name not in complete:
        raise KeyError(
            f"the base diagnostic has not run on every seed: run `run {study.base}` first"
        )
    base_f1 = {s: complete[base_name][s]["f1"] for s in SEEDS}
    rows = []
    for name, (system, lr, settings) in study.diagnostics.items():
        if name not in complete:
            continue
        runs = complete[name]
        f1 = {s: runs[s]["f1"] for s in SEEDS}
        compared = system == "ours" and name != base_name
        if study.recipe_key:
            compared = settings[study.recipe_key] != base_settings[study.recipe_key]
        errors = _merge_errors([runs[s] for s in SEEDS])
        change = {k: v for k, v in settings.items() if base_settings.get(k) != v}
        rows.append(
            {
                "diagnostic": name,
                "system": system,
                "lr": f"{lr:g}",  # as written (the page rounds floats below 1 to 3 decimals)
                "change": (change or None) if system == "ours" else settings,
                "dev_f1_mean": round(statistics.mean(f1.values()), 2),
                "dev_f1_by_seed": f1,
                "dev_p_mean": round(statistics.mean(runs[s]["p"] for s in SEEDS), 2),
                "dev_r_mean": round(statistics.mean(runs[s]["r"] for s in SEEDS), 2),
                "vs_base": verdict(base_f1, f1, study.min_gain) if compared else None,
                **({"chosen": name in chosen} if study.recipe_key else {}),
                "predicted_per_gold": round(errors["n_pred"] / errors["n_gold"], 3),
                "p_r_by_label": {k: _pr(v) for k, v in errors["by_label"].items()},
                "p_r_by_length": {k: _pr(v) for k, v in errors["by_length"].items()},
                "missed": errors["missed"],
                "train_words_per_s_mean": round(
                    statistics.mean(runs[s]["train_words_per_s"] for s in SEEDS)
                ),
            }
        )
    return rows


def adopted(rows: Sequence[Dict[str, Any]]) -> Optional[str]:
    """The diagnostic the rule adopts (the best dev mean among those that pass), or None."""
    passing = [r for r in rows if r["vs_base"] and r["vs_base"]["passes"] and r.get("chosen", True)]
    return max(passing, key=lambda r: r["dev_f1_mean"])["diagnostic"] if passing else None


def shipped_recipe(results: Path = protocol.RESULTS) -> Optional[Dict[str, Any]]:
    """What the ship rule puts in configs/cpu_tiny.cfg: {"lr", "batch_words"} of the candidate
    recipe's chosen rate when it passes, None when it does not (or is undecided: the config keeps
    the 800-word recipe and `ner_protocol.py config`'s rate)."""
    study = STUDIES["ship"]
    try:
        rows = summarize(results, study)
    except KeyError:
        return None
    name = None if pending(results, study) else adopted(rows)
    if name is None:
        return None
    _, lr, settings = study.diagnostics[name]
    return {"lr": lr, "batch_words": settings["batch_words"]}


def write(results: Path, output: Path, study: Study = STUDIES["pretrained"]) -> Dict[str, Any]:
    from benchmarks.report import write_json
    from benchmarks.results import header_of_runs

    rows = summarize(results, study)
    runs = [r for name in study.diagnostics for r in runs_of(name, results, study).values()]
    flag = "" if study is STUDIES["pretrained"] else f" --study {output_study(study)}"
    loads = [r["load_avg"][0] for r in runs]
    result = {
        **header_of_runs(
            output.stem,
            f"python benchmarks/ner_recall.py run{flag} --jobs "
            + ("1" if study is STUDIES["pretrained"] else "2")
            + f" && python benchmarks/ner_recall.py write{flag}",
            loads,
        ),
        "protocol": {
            "chooses": "dev: the last 10% of CoNLL-2003 train (1,404 sentences), seeds 0-2; "
            + (
                f"the rule: each recipe ({study.recipe_key}) at its rate of best mean dev F1 "
                f"(grid {', '.join(f'{r:g}' for r in SHIP_RATES)}, one rate further when the "
                f"best is at an end); the candidate's choice ships only if it gains "
                f">= {study.min_gain:+.1f} over the shipped recipe's choice and wins >= "
                f"{MIN_WINS} of 3 seeds (fixed before the runs)"
                if study.recipe_key
                else f"the rule: adopt a change only if its mean dev F1 gains >= "
                f"{study.min_gain:+.1f} over `{study.base}` and wins >= {MIN_WINS} of 3 seeds "
                "(fixed before the runs)"
            ),
            "reports": "dev only: a diagnostic, no test figure",
            "checkpoint": study.checkpoint,
            "seeds": len(SEEDS),
            "tags": sorted({tag_of(name, study) for name in study.diagnostics}),
        },
        "columns": [
            "diagnostic",
            "lr",
            "change",
            "dev_f1_mean",
            "dev_f1_by_seed",
            "dev_p_mean",
            "dev_r_mean",
            "vs_base",
            *(["chosen"] if study.recipe_key else []),
            "predicted_per_gold",
            "p_r_by_label",
            "p_r_by_length",
            "missed",
            "train_words_per_s_mean",
        ],
        "rows": rows,
        # a ship study decides nothing while a rate beyond its grid's end is still to run
        "adopted": None if study.recipe_key and pending(results, study) else adopted(rows),
        **({"pending": pending(results, study)} if study.recipe_key else {}),
    }
    write_json(output, result)
    return result


def output_study(study: Study) -> str:
    return next(name for name, s in STUDIES.items() if s is study)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", choices=["run", "write"])
    p.add_argument(
        "names", nargs="*", help=f"run: which diagnostics (default all: {', '.join(DIAGNOSTICS)})"
    )
    p.add_argument(
        "--study",
        choices=sorted(STUDIES),
        default="pretrained",
        help="pretrained: the diagnostics on the pretrained protocol; config: the adopted change "
        "at configs/cpu_tiny.cfg's budget; ship: that change with a rate recheck for both "
        "recipes, the rule that moves the config (SHIP RULE)",
    )
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--results", type=Path, default=protocol.RESULTS)
    p.add_argument("--cache-dir", type=Path, default=protocol.CACHE)
    p.add_argument("--output", type=Path, default=None, help="default: results/<study's file>.json")
    args = p.parse_args(argv)
    study = STUDIES[args.study]
    output = args.output or ROOT / "benchmarks" / "results" / f"{study.output}.json"
    unknown = [n for n in args.names if n not in study.diagnostics]
    if unknown:
        p.error(f"unknown diagnostics {unknown}: one of {', '.join(study.diagnostics)}")
    if args.phase == "run":
        run(args.names or default_names(study), args.jobs, args.results, args.cache_dir, study)
    else:
        result = write(args.results, output, study)
        for row in result["rows"]:
            print(json.dumps(row))
        print(f"adopted: {result['adopted']}")


if __name__ == "__main__":
    main()
