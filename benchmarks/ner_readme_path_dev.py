"""Why the README path trails the benchmark at the shipped config's budget: a DEV-only diagnosis (issue 33).

`benchmarks/ner_readme_path.py` found the README path (`spacy train configs/cpu_tiny.cfg`)
1.3-1.7 F1 behind the benchmark side (`ner_study.py ours` at the same settings) on test once the
config moved to 400-word batches. The two loops differ systematically in two ways: `spacy train`
trains on spaCy's tokens of the text (the benchmark on CoNLL's tokens), and the config's
`sentence_windows = true` also applies in training, where a doc without sentence starts is split
by the encoder's rules. Each arm below switches one of them, on DEV only (the split
`convert-conll --dev-output` carves: the last 10% of CoNLL-2003 train, ner_study's dev), seeds
0-2, the config's budget, the same random-init checkpoint, model-last (model-best is chosen on
dev, so it is never reported on dev):

- R:       the README path exactly, scored as `ner_readme_path.score` scores (spaCy's tokens);
- R-nowin: R with `--components.transformer.model.sentence_windows false` (training and scoring);
- B:       the benchmark side (`ner_study.py ours --split dev`, `ner_readme_path.benchmark_settings`);
- B-retok: B trained on docs made as `spacy train` makes them (`ours_ner(retokenize=True)`).

THE RULE (pre-registered 2026-12-03 ~22:25 UTC, commit 012c5c9, before any run): with
G = mean(B) - mean(R), G < 0.5 means dev shows no systematic gap (the test gap is then seed
noise). Otherwise a factor explains the gap if switching it moves the dev mean by >= G/2 in the
gap's direction AND moves the same seed that way on >= 2 of 3 seeds (re-tokenization:
B - B-retok; training sentence windows: R-nowin - R). A fix passes if the fixed README path's dev
mean is within 0.5 of B's or above. Fix arms (`FIXES`, tried in this order): R-goldsents (training
docs keep their sentence starts), R-fixed (also words with a hyphen kept whole: the config as
shipped); R and R-nowin override both back to the config they ran on.

    python benchmarks/ner_readme_path_dev.py --arms R,B-retok &   # runs may go in 2 processes
    python benchmarks/ner_readme_path_dev.py --arms R-nowin,B     # -> ner_readme_path_dev.json
    python benchmarks/ner_readme_path_dev.py                      # every arm read back: writes

The result file is written once every arm and seed has a result (the others are read back).
"""

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TAG = "readme_path33-dev"
SEEDS = (0, 1, 2)
MIN_GAP = 0.5  # below it, dev shows no systematic gap
FIX_TOLERANCE = 0.5  # a fix passes within this much of B (or above it)
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "ner_readme_path_dev.json"


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    path: str  # "readme" (spacy train) | "benchmark" (ner_study.py ours)
    overrides: Tuple[str, ...] = ()  # readme: more `spacy train` overrides
    settings: Dict[str, Any] = field(default_factory=dict)  # benchmark: more ours_ner keywords


# The config before the fixes: its training corpus read as spacy.Corpus.v1 reads it (no sentence
# starts on the predicted docs) and spaCy's tokenizer (hyphens split, as spacy.Tokenizer.v1);
# R and R-nowin ran on that config, before gold_sentences and split_hyphens existed.
SPACY_TOKENS = ("--nlp.tokenizer.split_hyphens", "true")
BEFORE_FIX = ("--corpora.train.gold_sentences", "false") + SPACY_TOKENS
ARMS = {
    arm.name: arm
    for arm in (
        Arm("R", "README path (spacy train cpu_tiny.cfg), model-last", "readme", BEFORE_FIX),
        Arm(
            "R-nowin",
            "README path, sentence_windows false (training and scoring), model-last",
            "readme",
            BEFORE_FIX + ("--components.transformer.model.sentence_windows", "false"),
        ),
        Arm("B", "benchmark (ner_study.py ours, same budget)", "benchmark"),
        Arm(
            "B-retok",
            "benchmark trained on spaCy's tokens of the text (as spacy train)",
            "benchmark",
            settings={"retokenize": True},
        ),
    )
}
# The fixes, checked after the rule named both factors, in the order they were tried: training
# docs keep their sentence starts (`ContextCorpus.v1` gold_sentences; failed the fix rule), then
# also words with a hyphen kept whole (`Tokenizer.v1` split_hyphens false): the config as shipped.
FIXES = {
    arm.name: arm
    for arm in (
        Arm(
            "R-goldsents",
            "README path, training docs keep their sentence starts (gold_sentences), model-last",
            "readme",
            SPACY_TOKENS,
        ),
        Arm(
            "R-fixed",
            "README path as shipped: gold_sentences and hyphenated words whole, model-last",
            "readme",
        ),
    )
}
# factor -> (arm with the README path's value, arm without it): the move is a - b, signed so
# that a positive move is in the gap's direction (B above R)
FACTORS = {
    "re-tokenization in training": ("B", "B-retok"),
    "sentence windows in training": ("R-nowin", "R"),
}


def _mean(values: Sequence[float]) -> float:
    return round(statistics.mean(values), 2)


def verdict(f1: Dict[str, Dict[int, float]], seeds: Sequence[int] = SEEDS) -> Dict[str, Any]:
    """The pre-registered rule on dev F1 by arm and seed (module docstring)."""
    gap = round(_mean([f1["B"][s] for s in seeds]) - _mean([f1["R"][s] for s in seeds]), 2)
    out: Dict[str, Any] = {"gap": gap, "systematic": gap >= MIN_GAP, "factors": {}}
    for name, (a, b) in FACTORS.items():
        if a not in f1 or b not in f1:
            continue
        moves = {s: round(f1[a][s] - f1[b][s], 2) for s in seeds}
        move = round(_mean([f1[a][s] for s in seeds]) - _mean([f1[b][s] for s in seeds]), 2)
        wins = sum(1 for m in moves.values() if m > 0)
        out["factors"][name] = {
            "move": move,
            "moves_by_seed": moves,
            "seeds_in_gap_direction": wins,
            "explains": bool(out["systematic"] and move >= gap / 2 and wins >= 2),
        }
    return out


def fix_verdict(
    f1: Dict[str, Dict[int, float]], name: str, seeds: Sequence[int] = SEEDS
) -> Dict[str, Any]:
    """A fix arm against B (and R): its dev mean, and whether it passes `fix_passes`."""
    fixed = [f1[name][s] for s in seeds]
    bench = [f1["B"][s] for s in seeds]
    return {
        "mean": _mean(fixed),
        "vs_B": round(_mean(fixed) - _mean(bench), 2),
        "vs_R": round(_mean(fixed) - _mean([f1["R"][s] for s in seeds]), 2),
        "passes": fix_passes(fixed, bench),
    }


def fix_passes(fixed: Sequence[float], bench: Sequence[float]) -> bool:
    """A fixed README path passes if its dev mean is within FIX_TOLERANCE of B's, or above."""
    return _mean(fixed) >= _mean(bench) - FIX_TOLERANCE


def conclusion(v: Dict[str, Any]) -> str:
    if not v["systematic"]:
        return f"B - R = {v['gap']:+.2f} < {MIN_GAP}: dev shows no systematic gap"
    if not v["factors"]:
        return f"B - R = {v['gap']:+.2f} (no factor arms in this run)"
    named = [n for n, f in v["factors"].items() if f["explains"]]
    if not named:
        return f"B - R = {v['gap']:+.2f}: neither factor moves >= G/2 on >= 2 seeds (unexplained)"
    return f"B - R = {v['gap']:+.2f}: explained by " + " and ".join(named)


def complete_arms(
    f1: Dict[str, Dict[int, float]], seeds: Sequence[int], required: Sequence[str]
) -> Tuple[Dict[str, Dict[int, float]], List[str]]:
    """(the arms with a result for every seed, the "arm/seed" results `required` still lacks)."""
    missing = [f"{n}/{s}" for n in required for s in seeds if s not in f1.get(n, {})]
    return {n: v for n, v in f1.items() if all(s in v for s in seeds)}, missing


def run_readme_arm(
    arm: Arm, seed: int, work: Path, data_dir: Path, checkpoint: Path, budget, log
) -> Dict[str, Any]:
    """The README path with the arm's overrides, model-last scored on the dev sentences
    (cached in the run's folder: scores.json)."""
    from benchmarks.ner_readme_path import VIEWS, readme_path, score

    scores = work / "scores.json"
    if scores.exists():
        return json.loads(scores.read_text(encoding="utf8"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not (work / "training" / "model-last" / "meta.json").exists():
        readme_path(work, data_dir / "conll2003", checkpoint, budget, seed, log, arm.overrides)
    f1 = score(work / "training" / "model-last", work / "dev.spacy", VIEWS[:1])[VIEWS[0]]
    out = {"f1": f1, "seconds": round(time.perf_counter() - t0), "load": os.getloadavg()[0]}
    scores.write_text(json.dumps(out), encoding="utf8")
    return out


def run_benchmark_arm(
    arm: Arm,
    seed: int,
    results: Path,
    tag: str,
    budget,
    n_train: int,
    checkpoint: Optional[Path] = None,
) -> Optional[Dict[str, Any]]:
    """`ner_study.py ours` on dev at the README path's settings plus the arm's: run from
    `checkpoint` unless already in `results` under `tag`; without `checkpoint` only read back
    (None: no such run)."""
    from benchmarks.ner_readme_path import benchmark_run

    run = benchmark_run(results, tag, budget, seed, "dev", n_train, checkpoint, arm.settings)
    if run is None:
        return None
    return {"f1": run["f1"], "load": run["load_avg"][0]}


POST_HOC = (
    "nothing: a diagnostic beside the pre-registered run (more seeds of some arms), run after "
    "the fix was chosen and tested; the configs stay as the pre-registered rule decided"
)


def write(
    output: Path,
    f1: Dict[str, Dict[int, float]],
    loads: List[float],
    seeds,
    budget,
    command,
    post_hoc: bool = False,
) -> Dict[str, Any]:
    from benchmarks.report import write_json
    from benchmarks.results import header_of_runs

    v = verdict(f1, seeds)
    arms = {n: a for n, a in {**ARMS, **FIXES}.items() if n in f1}
    rows = []
    for name in arms:
        row = {"arm": name, "what": arms[name].label}
        row.update({f"seed {s}": f1[name][s] for s in seeds})
        row["mean"] = _mean([f1[name][s] for s in seeds])
        if name in FIXES:
            fix = fix_verdict(f1, name, seeds)
            row["rule"] = (
                f"{'passes' if fix['passes'] else 'fails'}: {fix['vs_B']:+.2f} vs B "
                f"(within {FIX_TOLERANCE} or above passes), {fix['vs_R']:+.2f} vs R"
            )
            v.setdefault("fixes", {})[name] = fix
        rows.append(row)
    for name, f in v["factors"].items():
        a, b = FACTORS[name]
        rows.append(
            {
                "arm": f"{a} - {b}",
                "what": f"move of {name} (positive: the gap's direction)",
                **{f"seed {s}": f["moves_by_seed"][s] for s in seeds},
                "mean": f["move"],
                "rule": f"explains (>= {v['gap'] / 2:.2f}, {f['seeds_in_gap_direction']}/3 seeds)"
                if f["explains"]
                else f"does not ({f['seeds_in_gap_direction']}/3 seeds in the gap's direction)",
            }
        )
    result = {
        **header_of_runs("ner_readme_path_dev", command, loads),
        "protocol": {
            "chooses": POST_HOC
            if post_hoc
            else "dev: which factor explains the B - R gap (it moves the dev mean >= half the "
            "gap in its direction on >= 2 of 3 seeds; a gap < 0.5 is no systematic gap) and whether "
            "a fix passes (its dev mean within 0.5 of B's or above), both rules fixed before the "
            "runs; the fixes were tried in the order of the rows",
            "reports": "dev only: the last 10% of CoNLL-2003 train (1,404 sentences, what "
            "convert-conll --dev-output carves), model-last; no test figure",
            "checkpoint": "4 x 128 ModernBERT, random init (benchmarks' modernbert-small-random), "
            "the same for every arm and seed",
            "seeds": len(seeds),
            "budget": f"{budget['max_steps']} updates of about {budget['batch_words']} words, rate "
            f"{budget['lr']:g}, warmup {budget['warmup_steps']} steps, the training pool",
        },
        "columns": ["arm", "what", *[f"seed {s}" for s in seeds], "mean", "rule"],
        "rows": rows,
        "verdict": {**v, "conclusion": conclusion(v)},
    }
    write_json(output, result)
    return result


def add_study_arguments(
    p: argparse.ArgumentParser,
    work: str,
    arms: str,
    arms_help: str,
    seeds: Sequence[int],
    tag: str,
) -> None:
    """The options every README-path dev study takes (this one and ner_readme_path_seeds)."""
    from benchmarks import ner_protocol as proto
    from benchmarks.ner_study import DATA_DIR

    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--cache-dir", type=Path, default=proto.CACHE)
    p.add_argument("--work", type=Path, default=proto.CACHE / work)
    p.add_argument("--arms", default=arms, help=arms_help)
    p.add_argument("--seeds", default=",".join(map(str, seeds)))
    p.add_argument("--tag", default=tag)
    p.add_argument("--results", type=Path, default=proto.RESULTS)


def study_setup(p: argparse.ArgumentParser, args: argparse.Namespace, known: Sequence[str]):
    """What a README-path dev study's runs share, from its parsed options: (log, the random-init
    checkpoint, the chosen arms (refused unless in `known`), seeds, the config's budget, the
    benchmark side's training sentences). Scoring runs in this process on 1 thread; each
    training run is its own 1-thread process."""
    import torch

    from benchmarks import data as bdata
    from benchmarks.ner_readme_path import config_budget

    torch.set_num_threads(1)
    log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    checkpoint = bdata.ensure_checkpoint(
        args.cache_dir / "modernbert-small-random", "small", args.data_dir, log=log
    )
    chosen = [a for a in args.arms.split(",") if a]
    unknown = [a for a in chosen if a not in known]
    if unknown:
        p.error(f"unknown arm(s) {unknown}: choose from {', '.join(known)}")
    seeds = [int(x) for x in args.seeds.split(",")]
    n_train = len(bdata.train_pool(args.data_dir)[0]) // 10 * 10
    return log, checkpoint, chosen, seeds, config_budget(None), n_train


def main(argv: Optional[List[str]] = None) -> Optional[Dict[str, Any]]:
    from benchmarks.ner_readme_path import _shown

    known = list({**ARMS, **FIXES})
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_study_arguments(
        p,
        work="readme-path-dev",
        arms=",".join(ARMS),
        arms_help=f"arms to run (the others are read back): {', '.join(known)}",
        seeds=SEEDS,
        tag=TAG,
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="write with the arms that have every seed (R and B at least): a diagnostic beside "
        "the pre-registered run, e.g. more seeds of some arms",
    )
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = p.parse_args(argv)
    log, checkpoint, chosen, seeds, budget, n_train = study_setup(p, args, known)
    f1: Dict[str, Dict[int, float]] = {}
    loads: List[float] = []
    for name, arm in {**ARMS, **FIXES}.items():
        for seed in seeds:
            run = name in chosen
            if arm.path == "readme":
                work = args.work / args.tag / f"{name}-seed{seed}"
                if not run and not (work / "scores.json").exists():
                    continue
                got = run_readme_arm(arm, seed, work, args.data_dir, checkpoint, budget, log)
            else:
                got = run_benchmark_arm(
                    arm, seed, args.results, args.tag, budget, n_train, checkpoint if run else None
                )
                if got is None:
                    continue
            log(f"{name} seed {seed}: dev F1 {got['f1']}")
            f1.setdefault(name, {})[seed] = got["f1"]
            loads.append(got["load"])
    f1, missing = complete_arms(f1, seeds, ("R", "B") if args.partial else tuple(ARMS))
    if missing:
        log(f"not written: no result yet for {', '.join(missing)}")
        return None
    command = (
        "python benchmarks/ner_readme_path_dev.py"
        + (f" --tag {args.tag}" if args.tag != TAG else "")
        + (f" --seeds {args.seeds}" if seeds != list(SEEDS) else "")
        + (" --partial" if args.partial else "")
        + (f" --output {_shown(args.output)}" if args.output != DEFAULT_OUTPUT else "")
    )
    result = write(args.output, f1, loads, seeds, budget, command, post_hoc=args.partial)
    print(json.dumps(result["verdict"], indent=1))
    return result


if __name__ == "__main__":
    main()
