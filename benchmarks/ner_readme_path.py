"""The README's real-data NER path, run as a user runs it, against the benchmark at its budget (issue 33).

Why: the protocol's figures come from `benchmarks/ner_study.py`, which builds the pipeline in
Python; a user follows the README instead: `convert-conll` at its defaults, `spacy train` with
a shipped config, `spacy.load`, `nlp(text)`. This runs that path on CoNLL-2003 and the
benchmark's `ours` at the same budget (updates, words per update, rate, seed, checkpoint), both
scored on CoNLL valid (the test split, which chooses nothing here), so the gap between what the
benchmark reports and what a user gets is a measured figure.

The README path (the NER half of `weasel run all-real`: the SMS half is left out):

    python -m spacy_modernbert convert-conll train.iob train.spacy --dev-output dev.spacy   # defaults
    python -m spacy_modernbert convert-conll valid.iob test.spacy
    python -m spacy train configs/cpu_tiny.cfg --nlp.pipeline '["transformer","ner","entity_consistency"]' ...

scored as `training/model-best` (what `weasel run` evaluates and packages) and `model-last`,
on the test docs (one sentence each) and on 10 consecutive test docs joined into one doc
without sentence boundaries (what `nlp("a paragraph")` gets). The benchmark side is one
`ner_study.py ours` run on the training pool with the config's settings (800 words per update,
6 state tokens, the config's rate and `max_steps`). Both start from the protocol's random-init
checkpoint (not `init-model-real`'s), so that they differ only in the path.

    python benchmarks/ner_readme_path.py --seeds 0,1   # -> benchmarks/results/ner_readme_path.json
    python benchmarks/ner_readme_path.py --max-steps 100   # a reduced budget, both sides alike
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "configs" / "cpu_tiny.cfg"
TAG = "readme_path33"
PATHS = {
    "best": f"README (spacy train {CONFIG.name}), model-best",
    "last": f"README (spacy train {CONFIG.name}), model-last",
    "benchmark": "benchmark (ner_study.py ours, same budget), last",
}
PARAGRAPH = 10  # test docs joined per paragraph
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "ner_readme_path.json"


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _run(cmd: List[str], log) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(
            f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}"
        )


def uninstalled_code() -> List[str]:
    """`--code` for `spacy train` when the project's tokenizer (`spacy-modernbert.Tokenizer.v1`,
    which configs/cpu_tiny.cfg names) is not among the installed entry points (an environment
    installed before it existed): what `pip install` of this checkout registers. Else nothing."""
    from importlib.metadata import entry_points

    from spacy_modernbert.tokenizer import TOKENIZER

    if any(ep.name == TOKENIZER for ep in entry_points(group="spacy_tokenizers")):
        return []
    return ["--code", str(ROOT / "spacy_modernbert" / "tokenizer.py")]


def config_budget(max_steps: Optional[int]) -> Dict[str, Any]:
    """The shipped config's rate, batch size and updates (`max_steps` overrides the updates)."""
    from spacy.util import load_config

    config = load_config(CONFIG, interpolate=True)
    steps = max_steps or config["training"]["max_steps"]
    return {
        "lr": config["training"]["optimizer"]["learn_rate"]["initial_rate"],
        "batch_words": config["training"]["batcher"]["size"],
        "max_steps": steps,
        "warmup_steps": round(0.1 * steps),
    }


def benchmark_settings(budget: Dict[str, Any]) -> Dict[str, Any]:
    """`ner_study.py ours` settings of the benchmark side at `budget` (the config's)."""
    return {
        "batch_words": budget["batch_words"],
        "epochs": 10,  # max_steps ends the run first
        "max_steps": budget["max_steps"],
        "extra_state_tokens": True,
    }


def benchmark_run(
    results: Path,
    tag: str,
    budget: Dict[str, Any],
    seed: int,
    split: str,
    n_train: int,
    checkpoint: Optional[Path] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> Optional[Dict[str, Any]]:
    """The benchmark side's run (`ner_study.py ours` at `benchmark_settings(budget)` plus
    `extra`, scored on `split`): run from `checkpoint` unless `results` already holds it under
    `tag`; without `checkpoint` only read back. None: no such run."""
    from benchmarks import ner_protocol as proto

    settings = {**benchmark_settings(budget), **(extra or {})}
    if checkpoint is not None:
        proto.execute(
            [("ours", budget["lr"], settings, split, seed)],
            1,
            results,
            ["--checkpoint", str(checkpoint)],
            tag=tag,
            n_train=n_train,
        )
    found = [
        r
        for r in proto.read_runs(results, tag, n_train)
        if r["settings"] == settings
        and r["seed"] == seed
        and r["lr"] == budget["lr"]
        and r["split"] == split
    ]
    return found[-1] if found else None


def paragraphs(refs: List[Any], with_lines: bool = False) -> List[Any]:
    """PARAGRAPH consecutive sentence docs joined into one doc (no sentence boundaries set):
    with spaces, or (`with_lines`) with a line break after each sentence that does not end in
    sentence punctuation (a headline, a dateline, a score line: 42% of CoNLL valid's sentences),
    as newswire text lays them out."""
    from spacy.pipeline import Sentencizer
    from spacy.tokens import Doc

    punct = set(Sentencizer.default_punct_chars)
    out = []
    for i in range(0, len(refs), PARAGRAPH):
        group = refs[i : i + PARAGRAPH]
        if not with_lines:
            out.append(Doc.from_docs(group))
            continue
        words, spaces, ents = [], [], []
        for k, doc in enumerate(group):
            words += [t.text for t in doc]
            spaces += [True] * len(doc)
            ents += [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O" for t in doc]
            if k < len(group) - 1 and doc[-1].text not in punct:
                spaces[-1] = False
                words.append("\n")
                spaces.append(False)
                ents.append("O")
        spaces[-1] = False
        out.append(Doc(group[0].vocab, words=words, spaces=spaces, ents=ents))
    return out


VIEWS = ("sentences", f"paragraphs_of_{PARAGRAPH}", f"paragraphs_of_{PARAGRAPH}_with_line_breaks")


def score(model: Path, test: Path, views: Sequence[str] = VIEWS) -> Dict[str, float]:
    """Entity F1 of a trained pipeline on the test docs and on paragraphs of PARAGRAPH docs
    (no sentence boundaries: a user's `nlp(paragraph)`), as `spacy evaluate` scores."""
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    import spacy_modernbert.tokenizer  # noqa: F401  (registered, as the entry point does)

    nlp = spacy.load(model)
    refs = list(DocBin().from_disk(test).get_docs(nlp.vocab))
    make = {
        VIEWS[0]: lambda: refs,
        VIEWS[1]: lambda: paragraphs(refs),
        VIEWS[2]: lambda: paragraphs(refs, with_lines=True),
    }
    out = {}
    for name in views:
        examples = [Example(nlp.make_doc(doc.text), doc) for doc in make[name]()]
        out[name] = round(100 * nlp.evaluate(examples, batch_size=64)["ents_f"], 2)
    return out


def readme_path(
    work: Path,
    conll: Path,
    checkpoint: Path,
    budget: Dict[str, Any],
    seed: int,
    log,
    overrides: Sequence[str] = (),
) -> None:
    """convert-conll at its defaults, then `spacy train` with the shipped config (NER half);
    `overrides`: more `--section.key value` pairs for `spacy train` (a diagnostic arm)."""
    cli = [sys.executable, "-m", "spacy_modernbert", "convert-conll"]
    _run(
        cli
        + [conll / "train.iob", work / "train.spacy", "--dev-output", work / "dev.spacy"]
        + ["--overwrite"],
        log,
    )
    _run(cli + [conll / "valid.iob", work / "test.spacy", "--overwrite"], log)
    train = [sys.executable, "-m", "spacy", "train", CONFIG, "--output", work / "training"]
    train += ["--paths.train", work / "train.spacy", "--paths.dev", work / "dev.spacy"]
    train += ["--paths.base_model", checkpoint, "--system.seed", str(seed)]
    # the NER half of all-real: the config's pipeline without anomaly_scorer, so its score
    # weight goes (a rule pipe after ner, such as entity_consistency, stays: users get it)
    train += ["--nlp.pipeline", json.dumps(ner_half())]
    train += ["--training.score_weights.anomaly_auc", "0"]
    train += uninstalled_code()
    config_steps = config_budget(None)["max_steps"]
    if budget["max_steps"] != config_steps:
        train += ["--training.max_steps", str(budget["max_steps"])]
        train += ["--training.optimizer.learn_rate.total_steps", str(budget["max_steps"])]
        train += ["--training.optimizer.learn_rate.warmup_steps", str(budget["warmup_steps"])]
        train += ["--training.eval_frequency", str(max(1, budget["max_steps"] // 8))]
    _run(train + list(overrides), log)


def ner_half(config: Path = CONFIG) -> List[str]:
    """The shipped config's pipeline without `anomaly_scorer`: what the README path trains."""
    from spacy.util import load_config

    return [name for name in load_config(config)["nlp"]["pipeline"] if name != "anomaly_scorer"]


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    from benchmarks import data as bdata
    from benchmarks import ner_protocol as proto
    from benchmarks.ner_study import DATA_DIR
    from benchmarks.report import write_json
    from benchmarks.results import head_commit, header

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--cache-dir", type=Path, default=proto.CACHE)
    p.add_argument("--work", type=Path, default=proto.CACHE / "readme-path")
    p.add_argument("--max-steps", type=int, default=0, help="0: the config's max_steps")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, each for both paths")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="a seed already trained (and scored) in --work is read back, not run again",
    )
    p.add_argument("--results", type=Path, default=proto.RESULTS)
    p.add_argument(
        "--tag",
        default=TAG,
        help="the benchmark side's runs are read back by tag, settings and seed: another tag "
        "runs them again (on newer code)",
    )
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = p.parse_args(argv)
    log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True)  # noqa: E731
    checkpoint = bdata.ensure_checkpoint(
        args.cache_dir / "modernbert-small-random", "small", args.data_dir, log=log
    )
    budget = config_budget(args.max_steps)
    seeds = [int(x) for x in args.seeds.split(",")]
    pool = len(bdata.train_pool(args.data_dir)[0])
    # the benchmark's `ours` at the same budget, on the same pool (ner_study.py, test split)
    rows, per_seed = [], {}
    for seed in seeds:
        work = args.work / f"steps{budget['max_steps']}-seed{seed}"
        work.mkdir(parents=True, exist_ok=True)
        scores = work / "scores.json"
        # 1. the README path, as a user types it
        if not (args.reuse and scores.exists()):
            t0 = time.perf_counter()
            if not (args.reuse and (work / "training" / "model-last" / "meta.json").exists()):
                readme_path(work, args.data_dir / "conll2003", checkpoint, budget, seed, log)
            readme = {
                which: score(work / "training" / f"model-{which}", work / "test.spacy")
                for which in ("best", "last")
            }
            readme["seconds"] = round(time.perf_counter() - t0)
            scores.write_text(json.dumps(readme), encoding="utf8")
        readme = json.loads(scores.read_text(encoding="utf8"))
        for which in ("best", "last"):  # a view added since (or dropped from) the cache
            missing = [v for v in VIEWS if v not in readme[which]]
            if missing:
                model = work / "training" / f"model-{which}"
                readme[which].update(score(model, work / "test.spacy", missing))
                scores.write_text(json.dumps(readme), encoding="utf8")
        log(f"README path, seed {seed}: {readme}")
        # 2. the benchmark
        bench = benchmark_run(
            args.results, args.tag, budget, seed, "test", pool // 10 * 10, checkpoint
        )
        per_seed[seed] = {
            "best": readme["best"],
            "last": readme["last"],
            "benchmark": {
                "sentences": bench["f1"],
                f"paragraphs_of_{PARAGRAPH}": bench["f1_by_doc_size"]["10sz"],
            },
        }
        for key, name in PATHS.items():
            rows.append({"path": name, "seed": seed, **per_seed[seed][key]})

    def mean(key: str, column: str = "sentences") -> float:
        return round(sum(per_seed[s][key][column] for s in seeds) / len(seeds), 2)

    for key, name in PATHS.items():
        means = {c: mean(key, c) for c in per_seed[seeds[0]][key]}
        rows.append({"path": name, "seed": "mean", **means})
    readme_best, readme_last, bench = mean("best"), mean("last"), mean("benchmark")
    result = {
        **header(
            "ner_readme_path",
            "python benchmarks/ner_readme_path.py"
            + (f" --max-steps {args.max_steps}" if args.max_steps else "")
            + (f" --seeds {args.seeds}" if seeds != [0] else "")
            + (f" --tag {args.tag}" if args.tag != TAG else "")
            + (f" --output {_shown(args.output)}" if args.output != DEFAULT_OUTPUT else ""),
            commit=head_commit(),
        ),
        "protocol": {
            "chooses": "nothing: the shipped config's settings; model-best is chosen on the dev split "
            "that convert-conll --dev-output carves (the last 10% of CoNLL-2003 train)",
            "reports": "test: CoNLL-2003 valid (3,250 sentences), converted by convert-conll",
            "checkpoint": "4 x 128 ModernBERT, random init (benchmarks' modernbert-small-random), "
            "the same for both paths",
            "seeds": len(seeds),
            "budget": f"{budget['max_steps']} updates of about {budget['batch_words']} words, rate "
            f"{budget['lr']:g}, warmup {budget['warmup_steps']} steps, on the training pool "
            f"(CoNLL-2003 train minus dev, {pool:,} sentences); the NER half of all-real (no SMS)",
        },
        "columns": [
            "path",
            "seed",
            "sentences",
            f"paragraphs_of_{PARAGRAPH}",
            f"paragraphs_of_{PARAGRAPH}_with_line_breaks",
        ],
        "rows": rows,
        "summary": [
            {
                "claim": "the README's real-data path (defaults) vs the benchmark's figure at the same budget, entity F1 on test sentences",
                "figure": f"{readme_best:.2f} (model-best) / {readme_last:.2f} (model-last) vs {bench:.2f} "
                f"({readme_best - bench:+.2f} / {readme_last - bench:+.2f})",
                "range": "; ".join(
                    f"seed {s}: {per_seed[s]['best']['sentences']} / {per_seed[s]['last']['sentences']} "
                    f"vs {per_seed[s]['benchmark']['sentences']}"
                    for s in seeds
                ),
                "baseline": "benchmarks/ner_study.py ours, the config's settings",
                "split": f"test (CoNLL valid), mean of {len(seeds)} seed(s)",
                "caveat": f"{budget['max_steps']} updates; the NER half of all-real",
            }
        ],
    }
    write_json(args.output, result)
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    main()
