"""NER comparison under a held-out protocol (issue 33): choices on a dev split carved from CoNLL train, figures on CoNLL valid.

Why: the issue-19 study chose its rate, recipe and ablations on CoNLL valid and reported on
it too. Here every choice reads the dev split (`ner_study.load_split("dev")`: the last 10% of
CoNLL train, fixed) and CoNLL valid is read once per final run.

Invariant: `grid` runs score on dev only; `test` runs only the configurations that `select`
picks from dev results; `write` reads the results file and never trains.

    python benchmarks/ner_protocol.py grid --jobs 2    # every system x recipe x rate on dev, seed 0
    ... --dev-seeds 0,1,2                               # (every phase) choose on the mean of dev seeds
    python benchmarks/ner_protocol.py test --jobs 2    # each system's dev-best, seeds 0-2, on test
    python benchmarks/ner_protocol.py write            # benchmarks/results/ner.json
    python benchmarks/ner_protocol.py config --jobs 2  # configs/cpu_tiny.cfg's rate, at its budget

`--protocol pretrained` runs the same phases from a `pretrain`ed checkpoint instead (issue 33
item 4): the random-init checkpoint after `PRETRAIN` masked-LM steps of
`spacy_modernbert.pretrain` on the training pool's text (CoNLL train minus dev, in
`PRETRAIN_DOC`-sentence documents) plus `clinc150/wiki_sents.txt`; never dev or test text.
It is made once (cached beside the random one) and every system and seed starts from it;
its result is benchmarks/results/ner_pretrained.json.

Each run is one `benchmarks/ner_study.py` process (1 torch thread) appending one line to
`benchmarks/ner_study_results.jsonl` with its protocol's tag; a run already there is not run
again, so an interrupted phase resumes. Both systems start from the same checkpoint.

The dev choice rule (`--dev-seeds`, issue 33, round 6): by default every grid point runs on
dev seed 0 and the choice is its seed-0 F1 (rounds 1-5; `ner_pretrained_r4.json` reproduces
with it). `--dev-seeds 0,1,2` runs every grid point on each of those seeds and the choice is
each point's MEAN dev F1 over them, the same rule for both systems. This rule was fixed AFTER
round 5's test figures (`ner_pretrained_r4.json`) had been seen, motivated by a dev-only
finding made after that run (ours' seed-0 choice, 4e-3, averaged 50.66 on dev seeds 0-3
against 53.07 at 2e-3; no choice read test), and BEFORE the run that uses it
(`ner_pretrained_r5.json`, tag protocol33-pretrained-r5): it is pre-registered for that
run, not tuned on test.

The batch-size knob (`--batch-sizes`, issue 33, round 7): by default every recipe steps on
32 sentences (125 updates), the grid of rounds 1-6. `--batch-sizes 32,16` adds one recipe
per system at 16 sentences per step (250 updates over the same 2 epochs, the same data) and
30% warmup (ours on 1-sentence docs, global clip 1.0), at every rate: 4 more grid points for
each system, chosen by the same dev rule. Why: a dev-only diagnostic (`ner_recall.py`,
`results/ner_recall_dev.json`; no test read) of ours' recall at its round-6 choice passed its
pre-registered rule with batch 16 (dev mean 54.78 vs 53.24, 3 of 3 seeds), while a wider or
more-pieced ner hidden layer and a faster head rate did not. The knob is gridded for the HF
loop too, as many points, so neither system gets a tuned knob the other lacks. Fixed before
the run that uses it (`ner_pretrained_r6.json`, tag protocol33-pretrained-r6), after round
6's test figures had been seen.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "ner_study_results.jsonl"
TAG = "protocol33"
CACHE = ROOT / ".benchmark_cache"


@dataclass(frozen=True)
class Protocol:
    """Which checkpoint every run starts from, the tag of its runs and its result file."""

    name: str
    tag: str
    output: str  # benchmarks/results/<output>.json
    checkpoint: str  # described under the tables
    claim_prefix: str  # summary claims of two protocols must not read alike


_BPE = "its BPE (8,192) was trained on CoNLL-2003 train (dev included), never on CoNLL valid"
PROTOCOLS = {
    "random": Protocol(
        "random",
        TAG,
        "ner",
        "4 x 128 ModernBERT, random init, the same checkpoint for every system and seed; " + _BPE,
        "",
    ),
    "pretrained": Protocol(
        "pretrained",
        TAG + "-pretrained",
        "ner_pretrained",
        "the random-init 4 x 128 ModernBERT after a short masked-LM pretraining (`spacy_modernbert.pretrain`) "
        "on CoNLL-2003 train minus dev + CLINC150 wiki_sents, the same checkpoint for every system and seed; "
        + _BPE,
        "pretrained checkpoint: ",
    ),
}
# The pretraining phase of `--protocol pretrained`: a budget 2 shared CPU cores finish in
# minutes (steps of `batch_tokens` pieces in windows of `window`), documents of `PRETRAIN_DOC`
# consecutive pool sentences so that the encoder sees sentences next to their neighbours.
PRETRAIN = {"steps": 400, "lr": 1e-3, "window": 256, "batch_tokens": 4096, "mask_prob": 0.3}
PRETRAIN_DOC = 10
WIKI = Path("clinc150") / "wiki_sents.txt"
RATES = (1e-3, 2e-3, 4e-3, 8e-3)
SEEDS = (0, 1, 2)
DEV_SEEDS = (0,)  # the dev seeds each grid point runs on; the choice is their mean (`--dev-seeds`)
# The budget (2 CPU cores shared by several jobs): 2,000 sentences, 2 epochs of 32 sentences
# per step = 125 updates, for every system.
N_TRAIN, EPOCHS = 2000, 2
# The knobs each system tunes on dev besides the rate (the same rate grid for both): the
# warmup fraction of the linear schedule, both systems ({0.1, 0.3}: ours read 0.1 alone before
# round 5, while the HF loop tuned it); ours also its training docs, 1 or 10 consecutive
# sentences (the 10-sentence recipe at warmup 0.1 only: it reports the shipped-recipe view).
# A recipe without "warmup" runs at 0.1 (`ner_study.ours_ner`'s default).
# Both systems clip the encoder's gradients as the HF loop always has: one global L2 norm of
# 1.0 over all its parameters (`grad_clip_norm`, the encoder setting; before round 5 ours
# clipped each parameter alone, thinc's `grad_clip`, and some seeds collapsed on the
# pretrained checkpoint: 45.3 vs 52.6 with the global clip on dev seed 3, same rate). Not a
# tuned knob: the HF loop's fixed recipe, given to ours.
WARMUPS = (0.1, 0.3)
OURS_CLIP = {"grad_clip_norm": 1.0}
RECIPES: Dict[str, List[Dict[str, Any]]] = {
    "ours": [
        {"docs_of": 1, "epochs": EPOCHS, **OURS_CLIP},
        {"docs_of": 10, "epochs": EPOCHS, **OURS_CLIP},
        {"docs_of": 1, "epochs": EPOCHS, "warmup": WARMUPS[1], **OURS_CLIP},
    ],
    "hf": [{"warmup": w, "epochs": EPOCHS} for w in WARMUPS],
}
# Groups reported on test (each at its dev-best rate / knobs): ours per training-doc size,
# so the shipped recipe's figure exists on test whichever recipe wins.
GROUPS = {
    "ours, 1-sentence docs": ("ours", {"docs_of": 1}),
    "ours, 10-sentence docs": ("ours", {"docs_of": 10}),
    "hf loop": ("hf", None),
}

# Steps of `BATCH` sentences (125 updates) in every recipe above. `--batch-sizes 32,16` (round 7,
# pre-registered: module docstring) adds, for each other size, one recipe per system at that
# many sentences per step and 30% warmup (ours on 1-sentence docs): 4 more grid points each, the
# same for both systems. The default (32 alone) is the grid of rounds 1-6.
BATCH = 32
BATCH_SIZES = (BATCH,)


def recipes(batch_sizes: Sequence[int] = BATCH_SIZES) -> Dict[str, List[Dict[str, Any]]]:
    """RECIPES, plus each system's recipe at every batch size other than `BATCH`."""
    extra = [b for b in batch_sizes if b != BATCH]
    return {
        "ours": RECIPES["ours"]
        + [
            {"docs_of": 1, "epochs": EPOCHS, "warmup": WARMUPS[1], **OURS_CLIP, "batch_size": b}
            for b in extra
        ],
        "hf": RECIPES["hf"]
        + [{"warmup": WARMUPS[1], "epochs": EPOCHS, "batch_size": b} for b in extra],
    }


Run = Tuple[str, float, Dict[str, Any], str, int]  # system, lr, settings, split, seed


def _key(system: str, lr: float, settings: Dict[str, Any], split: str, seed: int) -> str:
    return json.dumps([system, float(lr), sorted(settings.items()), split, seed])


def read_runs(
    results: Path = RESULTS, tag: str = TAG, n_train: int = N_TRAIN
) -> List[Dict[str, Any]]:
    if not results.exists():
        return []
    runs = [
        json.loads(line) for line in results.read_text(encoding="utf8").splitlines() if line.strip()
    ]
    return [r for r in runs if r.get("tag") == tag and r.get("n_train") == n_train]


def pretrain_texts(data_dir: Path) -> List[str]:
    """The pretraining text: the training pool (CoNLL train minus the dev split) in documents
    of `PRETRAIN_DOC` consecutive sentences, then CLINC150's wiki sentences when present."""
    from benchmarks.data import train_pool

    pool, _ = train_pool(data_dir)
    docs = [
        " ".join(w for words, _ in pool[i : i + PRETRAIN_DOC] for w in words)
        for i in range(0, len(pool), PRETRAIN_DOC)
    ]
    wiki = Path(data_dir) / WIKI
    if wiki.exists():
        docs += [
            line.strip() for line in wiki.read_text(encoding="utf8").splitlines() if line.strip()
        ]
    return docs


def ensure_pretrained(cache_dir: Path, data_dir: Path, log=print) -> Tuple[Path, Dict[str, Any]]:
    """(checkpoint, its record): the random-init checkpoint after `PRETRAIN`, made once and
    cached; a cached one made with other settings or text is made again."""
    from benchmarks import data as bdata
    from spacy_modernbert.pretrain.loop import pretrain

    base = bdata.ensure_checkpoint(
        Path(cache_dir) / "modernbert-small-random", "small", data_dir, log=log
    )
    out = Path(cache_dir) / "modernbert-small-pretrained-33"
    texts = pretrain_texts(data_dir)
    record = {
        "base": base.name,
        **PRETRAIN,
        "documents": len(texts),
        "wiki_sents": (Path(data_dir) / WIKI).exists(),
    }
    marker = out / "protocol_pretrain.json"
    if marker.exists():
        stored = json.loads(marker.read_text(encoding="utf8"))
        if {k: stored.get(k) for k in record} == record:
            return out, stored
    log(f"pretraining {base} for {PRETRAIN['steps']} steps on {len(texts):,} documents -> {out}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "pretrain.txt"
        text.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf8")
        state = pretrain(
            base,
            [text],
            out,
            steps=PRETRAIN["steps"],
            lr=PRETRAIN["lr"],
            window=PRETRAIN["window"],
            batch_tokens=PRETRAIN["batch_tokens"],
            mask_prob=PRETRAIN["mask_prob"],
            bf16=False,
            save_every=PRETRAIN["steps"],
            log_every=20,
            force=True,
        )
    record.update(held_out_mlm_loss=state.get("held_out"), seconds=round(time.perf_counter() - t0))
    marker.write_text(json.dumps(record, indent=1), encoding="utf8")
    return out, record


def ensure_pretrained_longer(
    cache_dir: Path, data_dir: Path, steps: int, log=print
) -> Tuple[Path, Dict[str, Any]]:
    """(checkpoint, its record): the protocol's pretrained checkpoint (`ensure_pretrained`)
    continued on the same text with the same settings to `steps` steps in all (`pretrain
    --resume`: the linear schedule is re-planned for `steps`, so the rate rises back to where
    that schedule is at step `PRETRAIN["steps"]` and decays to 0 at `steps`). Saved every 400
    steps: an interrupted run resumes from its last save. A separate checkpoint
    (`modernbert-small-pretrained-33-<steps>`); the protocol's own is unchanged."""
    from spacy_modernbert.pretrain.loop import pretrain

    first, record = ensure_pretrained(cache_dir, data_dir, log)
    out = Path(cache_dir) / f"{first.name}-{steps}"
    marker = out / "protocol_pretrain.json"
    if marker.exists():
        return out, json.loads(marker.read_text(encoding="utf8"))
    state = out / "pretrain_state.json"
    resume = out if state.exists() else first
    log(f"continuing {resume} to {steps} steps -> {out}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "pretrain.txt"
        texts = pretrain_texts(data_dir)
        text.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf8")
        result = pretrain(
            Path(cache_dir) / record["base"],
            [text],
            out,
            steps=steps,
            lr=PRETRAIN["lr"],
            window=PRETRAIN["window"],
            batch_tokens=PRETRAIN["batch_tokens"],
            mask_prob=PRETRAIN["mask_prob"],
            bf16=False,
            save_every=400,
            log_every=20,
            resume=resume,
            force=resume is first,
        )
    longer = {
        **record,
        "steps": steps,
        "continued_from": f"{first.name} (step {PRETRAIN['steps']})",
        "held_out_mlm_loss": result.get("held_out"),
        "seconds": round(time.perf_counter() - t0),
    }
    marker.write_text(json.dumps(longer, indent=1), encoding="utf8")
    return out, longer


def grid_runs(
    dev_seeds: Sequence[int] = DEV_SEEDS, batch_sizes: Sequence[int] = BATCH_SIZES
) -> List[Run]:
    """Every system x recipe x rate on dev, on each dev seed, the systems' recipes interleaved;
    seed by seed (a grid stopped early leaves whole seeds)."""
    grid = recipes(batch_sizes)
    pairs = [
        (system, recipe)
        for k in range(max(map(len, grid.values())))
        for system, system_recipes in grid.items()
        if k < len(system_recipes)
        for recipe in [system_recipes[k]]
    ]
    return [
        (system, lr, dict(recipe), "dev", seed)
        for seed in dev_seeds
        for system, recipe in pairs
        for lr in RATES
    ]


def seeds_text(seeds: Sequence[int]) -> str:
    """'seed 0', 'seeds 0-2' (consecutive) or 'seeds 0, 3'."""
    seeds = sorted(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def grid_points(
    runs: Sequence[Dict[str, Any]],
    dev_seeds: Sequence[int] = DEV_SEEDS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> List[Dict[str, Any]]:
    """One record per grid point (system, rate, recipe) that ran on every dev seed: "f1" (and
    "f1_by_doc_size") is its mean over `dev_seeds`, the score the choice reads; "f1_by_seed"
    the seeds' own, "f1_seed0" seed 0's when it is one of them. Science, test and other-seed
    runs do not count; a point missing a seed is left out."""
    by_point: Dict[str, Dict[int, Dict[str, Any]]] = {}
    grid = recipes(batch_sizes)
    for r in runs:
        if r["split"] == "dev" and r["seed"] in dev_seeds and r["settings"] in grid[r["system"]]:
            key = json.dumps([r["system"], float(r["lr"]), sorted(r["settings"].items())])
            by_point.setdefault(key, {})[r["seed"]] = r
    points = []
    for seeds in by_point.values():
        if set(seeds) != set(dev_seeds):
            continue
        first = seeds[min(seeds)]
        sizes = set.intersection(*(set(r["f1_by_doc_size"]) for r in seeds.values()))
        points.append(
            {
                **{k: first[k] for k in ("system", "lr", "settings")},
                "f1": round(statistics.mean(r["f1"] for r in seeds.values()), 2),
                "f1_by_doc_size": {
                    k: round(statistics.mean(r["f1_by_doc_size"][k] for r in seeds.values()), 2)
                    for k in sorted(sizes)
                },
                "f1_by_seed": {s: seeds[s]["f1"] for s in sorted(seeds)},
                **({"f1_seed0": seeds[0]["f1"]} if 0 in seeds else {}),
            }
        )
        if all("train_seconds" in r for r in seeds.values()):
            points[-1]["train_seconds"] = statistics.mean(
                r["train_seconds"] for r in seeds.values()
            )
    return points


def select(
    runs: Sequence[Dict[str, Any]],
    dev_seeds: Sequence[int] = DEV_SEEDS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> Dict[str, Dict[str, Any]]:
    """Each group's best grid point by its mean sentence-level dev F1 over `dev_seeds` (seed 0
    alone by default: its seed-0 F1); KeyError when the grid is incomplete."""
    chosen = {}
    dev = grid_points(runs, dev_seeds, batch_sizes)
    grid = recipes(batch_sizes)
    for group, (system, fixed) in GROUPS.items():
        points = [
            r
            for r in dev
            if r["system"] == system
            and all(r["settings"].get(k) == v for k, v in (fixed or {}).items())
        ]
        expected = len(RATES) * sum(
            all(recipe.get(k) == v for k, v in (fixed or {}).items()) for recipe in grid[system]
        )
        if len(points) < expected:
            raise KeyError(
                f"{group}: {len(points)} of {expected} dev grid points on {seeds_text(dev_seeds)} "
                "in the results: run the grid phase first"
            )
        chosen[group] = max(points, key=lambda r: r["f1"])
    return chosen


# One cause at a time (issue 33): the 10-sentence recipe at its dev-best rate with one change,
# on dev. sentence_windows: no attention across sentences in training or scoring (is the cost
# the encoder attending across sentences?); oracle_cut: the ner learns from whole docs
# instead of ~100-token cuts.
SCIENCE = [{"sentence_windows": True}, {"oracle_cut": 1000}]
# Controls at the same rate, seed 0 unless given: 1-sentence docs batched as 10-sentence docs
# are (3 blocks of 10 consecutive sentences per step), and a second seed of the main pair.
CONTROLS = [({"docs_of": 1, "block_shuffle": 10}, 0), ({"sentence_windows": True}, 1), ({}, 1)]


def science_runs(
    runs: Sequence[Dict[str, Any]],
    dev_seeds: Sequence[int] = DEV_SEEDS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> List[Run]:
    base = select(runs, dev_seeds, batch_sizes)["ours, 10-sentence docs"]
    return [
        ("ours", base["lr"], {**base["settings"], **change}, "dev", 0) for change in SCIENCE
    ] + [
        ("ours", base["lr"], {**base["settings"], **change}, "dev", seed)
        for change, seed in CONTROLS
    ]


# The shipped config's own budget (configs/cpu_tiny.cfg: 300 updates of about 800 words, 6 state
# tokens), ours on 1-sentence docs from the random-init checkpoint, the same rates, on dev:
# 8,000 pool sentences x 2 epochs in batches of 800 words is about 290 updates. Its best rate
# is the config's `initial_rate` (tests/project/test_configs.py).
CONFIG_TAG, CONFIG_N_TRAIN = "cpu_tiny_budget33", 8000
CONFIG_SETTINGS = {"batch_words": 800, "epochs": 2, "extra_state_tokens": True}


def config_runs() -> List[Run]:
    return [("ours", lr, dict(CONFIG_SETTINGS), "dev", 0) for lr in RATES]


def config_choice(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The best dev run at the config's budget; KeyError until every rate has run."""
    points = [r for r in runs if r["split"] == "dev" and r["settings"] == CONFIG_SETTINGS]
    if {r["lr"] for r in points} < set(RATES):
        raise KeyError(f"{len(points)} of {len(RATES)} config-budget runs: run the config phase")
    return max(points, key=lambda r: r["f1"])


def test_runs(
    runs: Sequence[Dict[str, Any]],
    skip_other: bool = False,
    dev_seeds: Sequence[int] = DEV_SEEDS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> List[Run]:
    """Seeds x each group's dev choice; dev's best ours recipe and the HF loop first, the other
    ours recipe last (the order only matters when the budget runs out)."""
    chosen = select(runs, dev_seeds, batch_sizes)
    ours = [g for g in chosen if chosen[g]["system"] == "ours"]
    best = max(ours, key=lambda g: chosen[g]["f1"])
    order = [
        best,
        *[g for g in chosen if chosen[g]["system"] != "ours"],
        *([] if skip_other else [g for g in ours if g != best]),
    ]
    return [
        (chosen[g]["system"], chosen[g]["lr"], chosen[g]["settings"], "test", seed)
        for g in order
        for seed in SEEDS
    ]


def execute(
    todo: Sequence[Run],
    jobs: int,
    results: Path,
    extra: Sequence[str] = (),
    tag: str = TAG,
    n_train: int = N_TRAIN,
) -> None:
    done = {
        _key(r["system"], r["lr"], r["settings"], r["split"], r["seed"])
        for r in read_runs(results, tag, n_train)
    }
    todo = [run for run in todo if _key(*run) not in done]
    print(f"{len(todo)} runs to do ({jobs} at a time)", flush=True)

    def one(run: Run) -> int:
        system, lr, settings, split, seed = run
        cmd = [
            sys.executable,
            str(ROOT / "benchmarks" / "ner_study.py"),
            system,
            "--lr",
            repr(lr),
            "--split",
            split,
            "--seed",
            str(seed),
            "--tag",
            tag,
            "--results",
            str(results),
            "--n-train",
            str(n_train),
            *extra,
        ]
        for k, v in settings.items():
            cmd += ["--set", f"{k}={v}"]
        t0 = time.time()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        tail = [
            line for line in proc.stdout.splitlines() if "RESULT" in line
        ] or proc.stderr.splitlines()[-3:]
        print(
            f"[{time.strftime('%H:%M:%S')}] {system} {lr:g} {settings} {split} seed {seed}: "
            f"rc {proc.returncode}, {time.time() - t0:.0f} s: {' | '.join(tail)}",
            flush=True,
        )
        return proc.returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = list(pool.map(one, todo))
    if any(codes):
        raise SystemExit(f"{sum(1 for c in codes if c)} runs failed")


def _stats(values: Sequence[float]) -> Dict[str, float]:
    return {
        "mean": round(statistics.mean(values), 2),
        "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(
    runs: Sequence[Dict[str, Any]],
    dev_seeds: Sequence[int] = DEV_SEEDS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> Dict[str, Any]:
    """Per group: its dev choice, the dev grid, and test mean / std / range over the seeds.
    With several dev seeds, rows and grid points also carry the mean over them ("dev_f1_mean",
    the score the choice read) and each seed's F1."""
    chosen = select(runs, dev_seeds, batch_sizes)
    several = tuple(dev_seeds) != (0,)
    grid_recipes = recipes(batch_sizes)
    rows = []
    for group, best in chosen.items():
        test = [
            r
            for r in runs
            if r["split"] == "test"
            and r["system"] == best["system"]
            and r["lr"] == best["lr"]
            and r["settings"] == best["settings"]
        ]
        row = {
            "system": group,
            "lr": best["lr"],
            "settings": best["settings"],
            **(
                {
                    "dev_f1_mean": best["f1"],
                    "dev_f1_by_seed": best["f1_by_seed"],
                    "dev_f1_10sent_mean": best["f1_by_doc_size"].get("10"),
                }
                if several
                else {
                    "dev_f1_seed0": best["f1"],
                    "dev_f1_10sent_seed0": best["f1_by_doc_size"].get("10"),
                }
            ),
        }
        if test:
            row.update(
                {
                    "test_f1": _stats([r["f1"] for r in test]),
                    "test_f1_10sent_docs": _stats([r["f1_by_doc_size"]["10"] for r in test]),
                    # the same trained pipeline with `sentence_windows` switched on at inference
                    **(
                        {
                            "test_f1_10sent_docs_sentence_windows": _stats(
                                [r["f1_by_doc_size"]["10sw"] for r in test]
                            )
                        }
                        if all("10sw" in r["f1_by_doc_size"] for r in test)
                        else {}
                    ),
                    # ... and as the shipped configs read a paragraph without sentence
                    # boundaries: split by the encoder's `sentence_rules` (encoder/sentences.py)
                    **(
                        {
                            "test_f1_10sent_docs_shipped": _stats(
                                [r["f1_by_doc_size"]["10sz"] for r in test]
                            )
                        }
                        if all("10sz" in r["f1_by_doc_size"] for r in test)
                        else {}
                    ),
                    "train_words_per_s_median": statistics.median(
                        r["train_words_per_s"] for r in test
                    ),
                    "seeds": sorted(r["seed"] for r in test),
                }
            )
        rows.append(row)
    grid = [
        {
            "system": r["system"],
            "lr": r["lr"],
            "settings": r["settings"],
            "dev_f1": r["f1"],  # the mean over the dev seeds with several
            "dev_f1_10sent_docs": r["f1_by_doc_size"].get("10"),
            **({"dev_f1_by_seed": r["f1_by_seed"]} if several else {}),
            "train_seconds": r.get("train_seconds"),
        }
        for r in grid_points(runs, dev_seeds, batch_sizes)
    ]
    science = [
        {
            "lr": r["lr"],
            "settings": r["settings"],
            "seed": r["seed"],
            "dev_f1": r["f1"],
            "dev_f1_by_doc_size": r["f1_by_doc_size"],
        }
        for r in runs
        if r["split"] == "dev"
        and (r["settings"] not in grid_recipes[r["system"]] or r["seed"] not in dev_seeds)
    ]
    return {
        "rows": rows,
        "science": science,
        "dev_grid": sorted(grid, key=lambda g: (g["system"], json.dumps(g["settings"]), g["lr"])),
    }


def markdown(summary: Dict[str, Any]) -> str:
    """The dev grid and the test table as markdown (docs/ner.md, BENCHMARKS.md)."""
    from benchmarks.report import table

    def knob(settings: Dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in settings.items() if k != "epochs")

    cells: Dict[Tuple[str, str], Dict[float, str]] = {}
    for g in summary["dev_grid"]:
        cells.setdefault((g["system"], knob(g["settings"])), {})[g["lr"]] = (
            f"{g['dev_f1']:.1f} / {g['dev_f1_10sent_docs']:.1f}"
        )
    dev = table(
        ["system", "knob", *[f"lr {r:g}" for r in RATES]],
        [[system, k, *[row.get(r, "-") for r in RATES]] for (system, k), row in cells.items()],
    )

    def cell(row: Dict[str, Any], key: str) -> str:
        st = row.get(key)
        return (
            f"{st['mean']:.2f} ± {st['std']:.2f} [{st['min']:.1f}-{st['max']:.1f}]" if st else "-"
        )

    test = table(
        [
            "system (dev's choice)",
            "lr",
            "knob",
            "dev F1",
            "test F1, sentences",
            "test F1, 10-sentence docs",
            "same, sentence_windows",
            "same, shipped (rule-split sentences)",
            "train words/s",
        ],
        [
            [
                r["system"],
                f"{r['lr']:g}",
                knob(r["settings"]),
                f"{r.get('dev_f1_mean', r.get('dev_f1_seed0')):.1f}",
                cell(r, "test_f1"),
                cell(r, "test_f1_10sent_docs"),
                cell(r, "test_f1_10sent_docs_sentence_windows"),
                cell(r, "test_f1_10sent_docs_shipped"),
                f"{r['train_words_per_s_median']:.0f}" if "train_words_per_s_median" in r else "-",
            ]
            for r in summary["rows"]
        ],
    )
    return dev + "\n\n" + test


def protocol_runs(results: Path, tag: str, grid_tag: Optional[str] = None) -> List[Dict[str, Any]]:
    """The runs of `tag`; with `grid_tag`, the dev runs (the grid that chooses) come from that
    tag instead: a rerun of the test phase on newer code, at the rates an earlier grid chose."""
    runs = read_runs(results, tag)
    if not grid_tag or grid_tag == tag:
        return runs
    return [r for r in read_runs(results, grid_tag) if r["split"] == "dev"] + [
        r for r in runs if r["split"] != "dev"
    ]


def write(
    results: Path,
    output: Path,
    protocol: Protocol = PROTOCOLS["random"],
    pretraining: Optional[Dict[str, Any]] = None,
    tag: Optional[str] = None,
    grid_tag: Optional[str] = None,
    grid_note: str = "",
    claim_prefix: Optional[str] = None,
    dev_seeds: Sequence[int] = DEV_SEEDS,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> Dict[str, Any]:
    """claim_prefix: instead of the protocol's, so that a rerun's summary claims do not read
    like the earlier run's (`--claim-prefix`). dev_seeds: the choice read each grid point's
    mean dev F1 over these seeds (`--dev-seeds`). batch_sizes: the grid's batch sizes
    (`--batch-sizes`)."""
    from benchmarks.report import write_json
    from benchmarks.results import header_of_runs

    tag = tag or protocol.tag
    runs = protocol_runs(results, tag, grid_tag)
    summary = summarize(runs, dev_seeds, batch_sizes)
    several = tuple(dev_seeds) != (0,)
    dev_key = "dev_f1_mean" if several else "dev_f1_seed0"
    by = {row["system"]: row for row in summary["rows"]}
    ours_group = max(
        ("ours, 1-sentence docs", "ours, 10-sentence docs"), key=lambda g: by[g][dev_key]
    )
    ours, hf = by[ours_group], by["hf loop"]
    other = by[
        "ours, 10-sentence docs"
        if ours_group == "ours, 1-sentence docs"
        else "ours, 1-sentence docs"
    ]

    def diff(a: Dict[str, Any], b: Dict[str, Any], key: str = "test_f1") -> str:
        return f"{a[key]['mean'] - b[key]['mean']:+.2f}"

    loads = [r["load_avg"][0] for r in runs if r["split"] == "test"]
    dev_utc = sorted(r["utc"] for r in runs if r["split"] == "dev" and "utc" in r) or [None]
    test_utc = sorted(r["utc"] for r in runs if r["split"] == "test" and "utc" in r) or [None]
    budget = (
        f"{N_TRAIN:,} CoNLL-2003 train sentences ({N_TRAIN // 10} blocks of 10 consecutive), {EPOCHS} epochs of "
        f"{BATCH} sentences per step ({EPOCHS * N_TRAIN // BATCH} updates)"
        + "".join(
            f" or, in the recipes with batch_size {b}, {b} ({EPOCHS * N_TRAIN // b} updates)"
            for b in batch_sizes
            if b != BATCH
        )
        + ", 1 torch thread per run, 2 runs at a time"
    )
    checkpoint = protocol.checkpoint
    if pretraining:
        checkpoint += (
            f"; pretraining: {pretraining['steps']} steps of {pretraining['batch_tokens']:,} pieces "
            f"(windows of {pretraining['window']}, rate {pretraining['lr']:g}) on {pretraining['documents']:,} documents"
        )
    prefix = protocol.claim_prefix if claim_prefix is None else claim_prefix
    flag = f" --protocol {protocol.name}" if protocol.name != "random" else ""
    tags = (
        (f" --tag {tag}" if tag != protocol.tag else "")
        + (f" --grid-tag {grid_tag}" if grid_tag and grid_tag != tag else "")
        + (f" --dev-seeds {','.join(map(str, dev_seeds))}" if several else "")
        + (
            f" --batch-sizes {','.join(map(str, batch_sizes))}"
            if tuple(batch_sizes) != BATCH_SIZES
            else ""
        )
    )
    chosen_on = f"chosen on the mean of dev {seeds_text(dev_seeds)}" if several else ""
    # the flags that made these runs and this file: a test phase run with --skip-other has
    # no test figure for the other recipe; a file written elsewhere names its --output
    skip = " --skip-other" if "test_f1" not in other else ""
    out = Path(output).resolve()
    out_flag = (
        ""
        if out == (ROOT / "benchmarks" / "results" / f"{protocol.output}.json").resolve()
        else f" --output {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
    )
    prefix_flag = "" if claim_prefix is None else f" --claim-prefix {json.dumps(claim_prefix)}"
    phase_flags = {
        "grid": " --jobs 2",
        "test": " --jobs 2" + skip,
        "write": out_flag + prefix_flag,
    }
    result = {
        # load_avg: the 1-minute load average at the end of each test run, [lowest, highest]
        **header_of_runs(
            protocol.output,
            " && ".join(
                f"python benchmarks/ner_protocol.py {phase}{flag}{phase_flags[phase]}{tags}"
                for phase in (("grid",) if not grid_tag or grid_tag == tag else ())
                + ("test", "write")
            ),
            loads,
        ),
        "protocol": {
            "chooses": "dev: the last 10% of CoNLL-2003 train (1,404 sentences), "
            + (
                f"the mean F1 over {seeds_text(dev_seeds)} of each grid point (the rule fixed after "
                "round 5's test, before this run: module docstring)"
                if several
                else "seed 0 of each grid point"
            )
            + (f" ({grid_note})" if grid_note else ""),
            "dev_seeds": list(dev_seeds),
            "reports": "test: CoNLL-2003 valid (3,250 sentences), once per final run",
            "checkpoint": checkpoint,
            **({"pretraining": pretraining} if pretraining else {}),
            "seeds": len(SEEDS),
            "budget": budget,
            # where the runs are (benchmarks/ner_study_results.jsonl) and when they ran
            "tag": tag,
            "grid_tag": grid_tag or tag,
            "dev_runs_utc": [dev_utc[0], dev_utc[-1]],
            "test_runs_utc": [test_utc[0], test_utc[-1]],
            "grid": {"rates": list(RATES), **recipes(batch_sizes)},
        },
        "columns": [
            "system",
            "lr",
            "settings",
            dev_key,
            *(["dev_f1_by_seed"] if several else []),
            "test_f1",
            "test_f1_10sent_docs",
            "test_f1_10sent_docs_sentence_windows",
            "test_f1_10sent_docs_shipped",
            "train_words_per_s_median",
        ],
        # what dev chose: the shipped defaults follow it (tests/project/test_ner_recipe.py)
        "chosen": {
            "ours": {
                "docs_of": ours["settings"]["docs_of"],
                "lr": ours["lr"],
                "warmup": ours["settings"].get("warmup", 0.1),
                "batch_size": ours["settings"].get("batch_size", BATCH),
            },
            "hf": {"lr": hf["lr"], **{k: v for k, v in hf["settings"].items() if k != "epochs"}},
        },
        "rows": summary["rows"],
        "dev_grid": summary["dev_grid"],
        "science_dev": summary["science"],
        "summary": [
            {
                "claim": f"{prefix}ours ({ours_group}, dev-chosen) vs the tuned HF loop, entity F1 on sentences",
                "figure": f"{ours['test_f1']['mean']:.2f} vs {hf['test_f1']['mean']:.2f} ({diff(ours, hf)})",
                "range": f"ours {ours['test_f1']['min']}-{ours['test_f1']['max']}, hf {hf['test_f1']['min']}-{hf['test_f1']['max']}",
                "baseline": f"ModernBertForTokenClassification, AdamW, lr {hf['lr']:g}, {hf['settings']}",
                "split": "test (CoNLL valid), mean of 3 seeds"
                + (f"; {chosen_on}" if several else ""),
                "caveat": f"{protocol.name} checkpoint; {budget}",
            },
            {
                "claim": f"{prefix}ours on 10-sentence docs at inference (a user's paragraph) vs the tuned HF loop on the same docs",
                "figure": f"{ours['test_f1_10sent_docs']['mean']:.2f} vs {hf['test_f1_10sent_docs']['mean']:.2f} "
                f"({diff(ours, hf, 'test_f1_10sent_docs')})",
                "range": f"ours {ours['test_f1_10sent_docs']['min']}-{ours['test_f1_10sent_docs']['max']}",
                "baseline": "the same runs scored on 10 consecutive valid sentences per doc",
                "split": "test (CoNLL valid), mean of 3 seeds"
                + (f"; {chosen_on}" if several else ""),
                "caveat": "CoNLL valid has no document marks: 10 consecutive sentences",
            },
        ]
        + (
            []
            if "test_f1_10sent_docs_sentence_windows" not in ours
            else [
                {
                    "claim": f"{prefix}paragraphs read sentence by sentence: the same trained pipelines with sentence_windows at inference",
                    "figure": f"{ours['test_f1_10sent_docs_sentence_windows']['mean']:.2f} on 10-sentence docs "
                    f"(whole docs: {ours['test_f1_10sent_docs']['mean']:.2f}; sentences: {ours['test_f1']['mean']:.2f})",
                    "range": f"{ours['test_f1_10sent_docs_sentence_windows']['min']}-{ours['test_f1_10sent_docs_sentence_windows']['max']}",
                    "baseline": "the same runs on whole 10-sentence docs",
                    "split": "test (CoNLL valid), 3 seeds",
                    "caveat": "a config switch at inference, no retraining; at CoNLL's gold sentence starts",
                },
            ]
        )
        + (
            []
            if "test_f1_10sent_docs_shipped" not in ours
            else [
                {
                    "claim": f"{prefix}paragraphs as the shipped configs read them: sentence_windows on docs without "
                    "sentence boundaries, split by the encoder's sentence_rules (news, as the configs set them)",
                    "figure": f"{ours['test_f1_10sent_docs_shipped']['mean']:.2f} on 10-sentence docs "
                    f"(gold sentence starts: {ours.get('test_f1_10sent_docs_sentence_windows', {}).get('mean', float('nan')):.2f}; "
                    f"whole docs: {ours['test_f1_10sent_docs']['mean']:.2f}; sentences: {ours['test_f1']['mean']:.2f})",
                    "range": f"{ours['test_f1_10sent_docs_shipped']['min']}-{ours['test_f1_10sent_docs_shipped']['max']}",
                    "baseline": "the same runs on whole 10-sentence docs and on sentences",
                    "split": "test (CoNLL valid), 3 seeds",
                    "caveat": "the docs carry no sentence starts: what nlp(paragraph) gets with configs/*.cfg",
                },
            ]
        )
        + (
            []
            if "test_f1" not in other
            else [
                {
                    "claim": f"{prefix}training docs: {ours_group} (dev's choice) vs the other recipe",
                    "figure": f"{ours['test_f1']['mean']:.2f} vs {other['test_f1']['mean']:.2f} ({diff(ours, other)}) on sentences; "
                    f"{ours['test_f1_10sent_docs']['mean']:.2f} vs {other['test_f1_10sent_docs']['mean']:.2f} on 10-sentence docs",
                    "range": f"{other['test_f1']['min']}-{other['test_f1']['max']} (other recipe, sentences)",
                    "baseline": f"{other['system']} at its dev-best rate {other['lr']:g}",
                    "split": (chosen_on if several else "chosen on dev")
                    + ", reported on test, 3 seeds each",
                    "caveat": "random-init encoder: context is not pretrained"
                    if protocol.name == "random"
                    else f"encoder pretrained briefly ({pretraining and pretraining['steps']} steps)",
                },
            ]
        )
        + [
            {
                "claim": f"{prefix}training words/s, ours / HF loop (same runs)",
                "figure": f"{ours['train_words_per_s_median'] / hf['train_words_per_s_median']:.2f}x",
                "range": "medians of 3 test runs each",
                "baseline": "HF loop",
                "split": "-",
                "caveat": "2 shared cores, load average in load_avg; a wall-time figure",
            },
        ],
    }
    write_json(output, result)
    return result


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", choices=["grid", "test", "science", "write", "show", "config"])
    p.add_argument(
        "--skip-other",
        action="store_true",
        help="test: only dev's best ours recipe and the HF loop",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (1 torch thread each)")
    p.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="random",
        help="random: every run starts from the random-init checkpoint; pretrained: from it after "
        "the PRETRAIN masked-LM phase (made once, cached in --cache-dir)",
    )
    p.add_argument(
        "--tag",
        default=None,
        help="the runs' tag in --results (default: the protocol's); a new tag reruns a phase on newer code",
    )
    p.add_argument(
        "--grid-tag",
        default=None,
        help="test/write: choose from the dev grid of this tag (default: --tag's own grid)",
    )
    p.add_argument(
        "--grid-note",
        default="",
        help="write: what to say of that grid under the table (when it ran, on which checkpoint)",
    )
    p.add_argument(
        "--claim-prefix",
        default=None,
        help="write: the summary claims' prefix instead of the protocol's (a rerun's claims must "
        "not read like an earlier run's)",
    )
    p.add_argument(
        "--dev-seeds",
        default=",".join(map(str, DEV_SEEDS)),
        help="grid: run every grid point on these dev seeds; test/write/science/show: choose each "
        "group's point by its mean dev F1 over them (the same rule for both systems)",
    )
    p.add_argument(
        "--batch-sizes",
        default=",".join(map(str, BATCH_SIZES)),
        help="grid/test/write/...: sentences per step; each size other than 32 adds one recipe per "
        "system at it (30%% warmup; ours on 1-sentence docs), the same for both systems",
    )
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--cache-dir", type=Path, default=CACHE)
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="default: benchmarks/results/ner.json (random) or ner_pretrained.json (pretrained)",
    )
    args = p.parse_args(argv)
    dev_seeds = tuple(int(s) for s in args.dev_seeds.split(","))
    batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    if BATCH not in batch_sizes:
        p.error(f"--batch-sizes must include {BATCH} (the grid of every earlier round)")
    protocol = PROTOCOLS[args.protocol]
    output = args.output or ROOT / "benchmarks" / "results" / f"{protocol.output}.json"
    extra: List[str] = []
    pretraining = None
    if protocol.name == "pretrained" and args.phase in ("grid", "test", "science", "write"):
        from benchmarks.ner_study import DATA_DIR

        checkpoint, pretraining = ensure_pretrained(args.cache_dir, DATA_DIR)
        extra = ["--checkpoint", str(checkpoint)]
    tag = args.tag or protocol.tag
    runs = protocol_runs(args.results, tag, args.grid_tag)
    if args.phase == "config":
        # the rate of configs/cpu_tiny.cfg, chosen on dev at the config's own budget
        execute(config_runs(), args.jobs, args.results, tag=CONFIG_TAG, n_train=CONFIG_N_TRAIN)
        done = read_runs(args.results, CONFIG_TAG, CONFIG_N_TRAIN)
        for r in sorted(done, key=lambda r: r["lr"]):
            print(f"lr {r['lr']:g}: dev F1 {r['f1']:.2f}")
        print(f"dev's choice: {config_choice(done)['lr']:g}")
    elif args.phase == "grid":
        execute(grid_runs(dev_seeds, batch_sizes), args.jobs, args.results, extra, tag)
    elif args.phase == "test":
        execute(
            test_runs(runs, args.skip_other, dev_seeds, batch_sizes),
            args.jobs,
            args.results,
            extra,
            tag,
        )
    elif args.phase == "science":
        execute(science_runs(runs, dev_seeds, batch_sizes), args.jobs, args.results, extra, tag)
    elif args.phase == "write":
        result = write(
            args.results,
            output,
            protocol,
            pretraining,
            tag,
            args.grid_tag,
            args.grid_note,
            args.claim_prefix,
            dev_seeds,
            batch_sizes,
        )
        print(json.dumps(result["summary"], indent=1))
    else:
        print(markdown(summarize(runs, dev_seeds, batch_sizes)))


if __name__ == "__main__":
    main()
