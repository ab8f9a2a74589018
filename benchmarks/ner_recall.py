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
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import ner_protocol as protocol  # noqa: E402

SEEDS = (0, 1, 2)
TAG_PREFIX = "recall33-"
MIN_GAIN, MIN_WINS = 1.0, 2
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


def tag_of(name: str) -> str:
    return TAG_PREFIX + name


def runs_of(name: str, results: Path = protocol.RESULTS) -> Dict[int, Dict[str, Any]]:
    """{seed: run} of diagnostic `name` (its tag, its system / rate / settings, dev)."""
    system, lr, settings = DIAGNOSTICS[name]
    return {
        r["seed"]: r
        for r in protocol.read_runs(results, tag_of(name))
        if r["split"] == "dev"
        and r["system"] == system
        and r["lr"] == lr
        and r["settings"] == settings
        and r["seed"] in SEEDS
    }


def run(names: Sequence[str], jobs: int, results: Path, cache_dir: Path) -> None:
    from benchmarks.ner_study import DATA_DIR

    checkpoint, _ = protocol.ensure_pretrained(cache_dir, DATA_DIR)
    for name in names:
        system, lr, settings = DIAGNOSTICS[name]
        todo = [(system, lr, dict(settings), "dev", seed) for seed in SEEDS]
        print(f"{name}:", flush=True)
        protocol.execute(todo, jobs, results, ["--checkpoint", str(checkpoint)], tag_of(name))


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


def verdict(base: Dict[int, float], other: Dict[int, float]) -> Dict[str, Any]:
    """The adoption rule: gain of the mean over SEEDS >= MIN_GAIN and wins on >= MIN_WINS seeds."""
    gain = statistics.mean(other.values()) - statistics.mean(base.values())
    wins = sum(other[s] > base[s] for s in SEEDS)
    return {
        "gain": round(gain, 2),
        "wins": wins,
        "passes": gain >= MIN_GAIN and wins >= MIN_WINS,
    }


def summarize(results: Path = protocol.RESULTS) -> List[Dict[str, Any]]:
    """One row per diagnostic whose 3 seeds have run: dev F1 mean / by seed, P / R, the rule's
    verdict against `base`, predicted and gold entity counts, P/R per label and per length
    (summed over seeds) and the kinds of missed entities."""
    base = runs_of("base", results)
    if set(base) != set(SEEDS):
        raise KeyError("the base diagnostic has not run on every seed: run `run base` first")
    base_f1 = {s: base[s]["f1"] for s in SEEDS}
    rows = []
    for name, (system, lr, settings) in DIAGNOSTICS.items():
        runs = runs_of(name, results)
        if set(runs) != set(SEEDS):
            continue
        f1 = {s: runs[s]["f1"] for s in SEEDS}
        errors = _merge_errors([runs[s] for s in SEEDS])
        change = {k: v for k, v in settings.items() if BASE.get(k) != v}
        rows.append(
            {
                "diagnostic": name,
                "system": system,
                "lr": lr,
                "change": (change or None) if system == "ours" else settings,
                "dev_f1_mean": round(statistics.mean(f1.values()), 2),
                "dev_f1_by_seed": f1,
                "dev_p_mean": round(statistics.mean(runs[s]["p"] for s in SEEDS), 2),
                "dev_r_mean": round(statistics.mean(runs[s]["r"] for s in SEEDS), 2),
                **(
                    {"vs_base": verdict(base_f1, f1)}
                    if system == "ours" and name != "base"
                    else {"vs_base": None}
                ),
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
    passing = [r for r in rows if r["vs_base"] and r["vs_base"]["passes"]]
    return max(passing, key=lambda r: r["dev_f1_mean"])["diagnostic"] if passing else None


def write(results: Path, output: Path) -> Dict[str, Any]:
    from benchmarks.report import machine_info, write_json
    from benchmarks.results import head_commit

    rows = summarize(results)
    runs = [r for name in DIAGNOSTICS for r in runs_of(name, results).values()]
    loads = [r["load_avg"][0] for r in runs]
    result = {
        "benchmark": output.stem,
        "command": "python benchmarks/ner_recall.py run --jobs 1 && python benchmarks/ner_recall.py write",
        "commit": head_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info("cpu"),
        "load_avg": [min(loads), max(loads)],
        "protocol": {
            "chooses": "dev: the last 10% of CoNLL-2003 train (1,404 sentences), seeds 0-2; "
            f"the rule: adopt a change only if its mean dev F1 gains >= {MIN_GAIN:+.1f} over "
            f"`base` and wins >= {MIN_WINS} of 3 seeds (fixed before the runs)",
            "reports": "dev only: a diagnostic, no test figure",
            "checkpoint": protocol.PROTOCOLS["pretrained"].checkpoint,
            "seeds": len(SEEDS),
            "tags": [tag_of(name) for name in DIAGNOSTICS],
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
            "predicted_per_gold",
            "p_r_by_label",
            "p_r_by_length",
            "missed",
            "train_words_per_s_mean",
        ],
        "rows": rows,
        "adopted": adopted(rows),
    }
    write_json(output, result)
    return result


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", choices=["run", "write"])
    p.add_argument(
        "names", nargs="*", help=f"run: which diagnostics (default all: {', '.join(DIAGNOSTICS)})"
    )
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--results", type=Path, default=protocol.RESULTS)
    p.add_argument("--cache-dir", type=Path, default=protocol.CACHE)
    p.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks" / "results" / "ner_recall_dev.json"
    )
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in DIAGNOSTICS]
    if unknown:
        p.error(f"unknown diagnostics {unknown}: one of {', '.join(DIAGNOSTICS)}")
    if args.phase == "run":
        run(args.names or list(DIAGNOSTICS), args.jobs, args.results, args.cache_dir)
    else:
        result = write(args.results, args.output)
        for row in result["rows"]:
            print(json.dumps(row))
        print(f"adopted: {result['adopted']}")


if __name__ == "__main__":
    main()
