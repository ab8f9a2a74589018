"""`python -m benchmarks vocab-downstream`: does `extend-vocab` help the tasks, after the same pretraining?

For each seed, the systems of `benchmarks/vocab.py`'s MLM comparison (no extension; extend-vocab
with mean, contextual and random init of the new rows) start from the same small checkpoint
(random init, pretrained `--general-steps` on CoNLL-2003 train) and get the same `pretrain`
budget on the domain's training text (`--max-words-per-term 1,3` adds the extensions with
multi-word tokens; `--inits` picks the inits compared); then, on each domain:

* demo reports (the project's generator, `--demo-docs` reports, seed 0): held-out MLM loss per
  word on the dev reports, and NER: `--ner-docs` train reports, `--ner-epochs` epochs of
  `--ner-batch` docs, warmup_linear (10% warmup), the project's NER recipe
  (benchmarks/systems.py); F1 on the dev reports. The rate: 1e-3 (the earlier runs' rate), or
  with `--ner-rates` a grid (1e-3,2e-3,4e-3: the rates the project's NER recipes have used)
  from which each system gets its own rate,
  the one with the best mean F1 on a choosing split (the last `--ner-choose-docs` demo *train*
  reports, never trained on) over all its seeds; the dev reports only report.
  `--ner-epochs` is 6 (450 updates): at 3 (225 updates, the earlier runs) the NER had not
  converged (training loss still 1-7 per update at the end) and whether it had learned where a
  TIME span ends (the ner's state sees the next token only through the encoder) depended on
  the NER seed: 8 of 18 extended runs ended at 88-90 F1, and a probe without extension at 93.
  Neither a rate of 5e-4, 2e-3 or 4e-3, global gradient clipping, batch 16, beta2 0.98, nor
  new rows rescaled to the base rows' norm removed that; 6 epochs did (training loss 0.0).
  (Those probes were scored on the dev reports; the criterion for 6 is the training loss.)
* CLINC150: held-out MLM loss per word on in-scope val utterances, and out-of-scope AUROC: the
  one-class `KnnDetector` (10 neighbours, its default) fitted on the pooled embeddings of
  `--clinc-fit` in-scope train utterances (the first of each intent), scored on the first
  `--clinc-val` in-scope val utterances of each intent against the 100 `oos_val` ones.

Nothing else is chosen: every other setting is fixed above, before any run; the dev / val splits
only report.
No text of the reporting splits reaches a tokenizer or a checkpoint (extensions are mined and
pretrained on train text only; `oos_*` never). No pretrained weights exist offline.
"""

import json
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer

from . import data as bdata
from ._app import CacheDir, DataDir, Output, Threads, app, defaults
from .report import log, machine_info, table, write_json
from .results import header
from .vocab import (
    _settings,
    domain_runs,
    domains,
    general_checkpoint,
    mlm_row,
    parse_variants,
)

NER_RATE = 1e-3  # the rate of the earlier runs (configs/cpu_tiny.cfg had it then; it has 2e-3 now)
NO_EXTENSION = "no extension"


def ner_f1(
    checkpoint: Path,
    train: Sequence[dict],
    dev: Sequence[dict],
    epochs: int,
    batch: int,
    seed: int,
    rate: float = NER_RATE,
    choose: Sequence[dict] = (),
) -> Dict[str, float]:
    """Train the project's NER recipe on `train` demo records from `checkpoint` at `rate`;
    scores on `dev` (and F1 on the choosing split `choose`, if given, as `choose_f`)."""
    import spacy
    from spacy.training import Example

    from spacy_modernbert.data.from_jsonl import record_to_doc

    from .accuracy import _train_spacy
    from .systems import build_pipeline

    spacy.util.fix_random_seed(seed)
    nlp = build_pipeline("ours", checkpoint, components=("ner",))

    def examples(records):
        return [
            Example(
                nlp.make_doc(r["text"]),
                record_to_doc(nlp, {"text": r["text"], "entities": r["entities"]}),
            )
            for r in records
        ]

    seconds = _train_spacy(nlp, examples(train), epochs, batch, seed, "ner", "ner", rate)
    scores = nlp.evaluate(examples(dev))
    out = {
        "ents_f": round(100 * scores["ents_f"], 2),
        "ents_p": round(100 * scores["ents_p"], 2),
        "ents_r": round(100 * scores["ents_r"], 2),
        "train_seconds": round(seconds, 1),
    }
    if choose:
        out["choose_f"] = round(100 * nlp.evaluate(examples(choose))["ents_f"], 2)
    return out


def ner_over_seeds(
    run: Path,
    demo: Dict[str, Any],
    n_docs: int,
    epochs: int,
    batch: int,
    seed: int,
    n_seeds: int,
    log: Any,
    system: str,
    rate: float = NER_RATE,
    choose: Sequence[dict] = (),
) -> Dict[str, Any]:
    """NER F1 of one pretrained checkpoint at `rate`, the mean over `n_seeds` NER runs (NER seeds
    seed * n_seeds ... + n_seeds - 1; 1 run: the checkpoint's own seed). Why: a 225-update NER
    run on the demo reports sometimes fails on one decision (a TIME span's end) for a given NER
    seed whatever the checkpoint, so one NER seed per checkpoint measures that draw, not the
    checkpoint."""
    ner_seeds = [seed * n_seeds + k for k in range(n_seeds)]
    each = []
    for ner_seed in ner_seeds:
        each.append(
            ner_f1(run, demo["train"][:n_docs], demo["dev"], epochs, batch, ner_seed, rate, choose)
        )
        chose = f", choosing split {each[-1]['choose_f']}" if choose else ""
        log(
            f"  seed {seed} {system}: rate {rate:g}, NER seed {ner_seed}: F1 {each[-1]['ents_f']}{chose}"
        )
    mean = {k: round(statistics.mean(e[k] for e in each), 2) for k in each[0]}
    return {**mean, "rate": rate, "ner_seeds": ner_seeds, "ner_runs": [e["ents_f"] for e in each]}


def choose_split(train: Sequence[dict], n_docs: int, n_choose: int) -> List[dict]:
    """The NER rate's choosing split: the last `n_choose` demo train reports, apart from the
    first `n_docs` the NER trains on (an error when they would overlap)."""
    if n_choose <= 0:
        return []
    if n_docs + n_choose > len(train):
        raise ValueError(
            f"--ner-docs {n_docs} + --ner-choose-docs {n_choose} exceed the {len(train)} demo "
            "train reports: the choosing split would overlap the NER's training reports. "
            "Lower one of them or raise --demo-docs."
        )
    return list(train[len(train) - n_choose :])


def chosen_rates(runs: Sequence[dict]) -> Dict[tuple, float]:
    """(domain, system) -> its NER rate: the best mean choosing-split F1 over its seeds (ties:
    the lower rate); a system run at one rate keeps it. Only seeds run at every rate count."""
    by_key: Dict[tuple, Dict[float, Dict[int, float]]] = {}
    for r in runs:
        if r["metric"] == "NER F1 (dev)":
            by_rate = by_key.setdefault((r["domain"], r["system"]), {})
            by_rate.setdefault(r.get("rate", NER_RATE), {})[r["seed"]] = r.get("choose_f", 0.0)
    chosen = {}
    for key, by_rate in by_key.items():
        seeds = set.intersection(*(set(v) for v in by_rate.values()))
        score = {
            rate: statistics.mean(v[s] for s in seeds) if seeds else float("-inf")
            for rate, v in by_rate.items()
        }
        chosen[key] = max(sorted(score), key=lambda rate: score[rate])
    return chosen


def at_chosen_rates(runs: Sequence[dict], chosen: Dict[tuple, float]) -> List[dict]:
    """The runs that report: every non-NER run, and NER runs at their system's chosen rate."""
    return [
        r
        for r in runs
        if r["metric"] != "NER F1 (dev)"
        or r.get("rate", NER_RATE) == chosen[(r["domain"], r["system"])]
    ]


CLINC_CHOOSE = "clinc150-choose"


def clinc_splits(data_dir: Path, n_fit: int, n_val: int, choose: int = 0) -> Dict[str, List[str]]:
    """train (in-scope text mined and pretrained on), fit (first n_fit train utterances per
    intent), val (first n_val per intent of the scored in-scope split), oos, held (the MLM's
    held-out text).

    choose 0: the reporting split: all in-scope train; val / held: CLINC150 val; oos: oos_val.
    choose N: the choosing split, carved from train alone: the last N train utterances of each
    intent are held out of train (never mined or pretrained on) and are val / held; oos:
    oos_train. Nothing of CLINC150 val or oos_val is read."""
    data = json.loads((Path(data_dir) / "clinc150" / "clinc150_train_val.json").read_text("utf8"))

    def first(rows, n):
        seen: Dict[str, int] = {}
        out = []
        for text, intent in rows:
            if seen.get(intent, 0) < n:
                seen[intent] = seen.get(intent, 0) + 1
                out.append(text)
        return out

    if choose:
        per_intent: Dict[str, int] = {}
        for _, intent in data["train"]:
            per_intent[intent] = per_intent.get(intent, 0) + 1
        if min(per_intent.values()) <= n_fit + choose:
            raise ValueError(
                f"--clinc-fit {n_fit} + --clinc-choose {choose} leave no CLINC150 train utterances "
                "of some intent to pretrain on; lower one of them."
            )
        seen: Dict[str, int] = {}
        kept, held = [], []
        for text, intent in data["train"]:
            seen[intent] = seen.get(intent, 0) + 1
            (held if seen[intent] > per_intent[intent] - choose else kept).append((text, intent))
        return {
            "train": [t for t, _ in kept],
            "fit": first(kept, n_fit),
            "val": first(held, n_val),
            "oos": [t for t, _ in data["oos_train"]],
            "held": [t for t, _ in held],
        }
    return {
        "train": [t for t, _ in data["train"]],
        "fit": first(data["train"], n_fit),
        "val": first(data["val"], n_val),
        "oos": [t for t, _ in data["oos_val"]],
        "held": [t for t, _ in data["val"]],
    }


def oos_auroc(checkpoint: Path, splits: Dict[str, List[str]], seed: int) -> float:
    """Out-of-scope AUROC of the KnnDetector fitted on in-scope utterances (pooled embeddings)."""
    import numpy

    from spacy_modernbert.anomaly.curves import roc_auc
    from spacy_modernbert.anomaly.detectors import KnnDetector

    from .one_class import encoder_features

    fit, _ = encoder_features(checkpoint, splits["fit"], seed)
    X, _ = encoder_features(checkpoint, splits["val"] + splits["oos"], seed)
    detector = KnnDetector()
    scores = detector.scores(detector.fit(fit), X)
    gold = numpy.asarray([0] * len(splits["val"]) + [1] * len(splits["oos"]))
    return round(float(roc_auc(gold, numpy.asarray(scores, dtype="float64"))), 4)


METRICS = {  # metric -> (per-seed field, better)
    "held-out MLM loss per word": ("loss_per_word", "lower"),
    "NER F1 (dev)": ("ents_f", "higher"),
    "out-of-scope AUROC (val)": ("auroc", "higher"),
}


def aggregate(runs: Sequence[dict]) -> List[dict]:
    """One row per (domain, metric, system): mean and range over seeds, and the per-seed
    difference to no extension (same seed, same budget)."""
    rows = []
    keys = list(dict.fromkeys((r["domain"], r["metric"], r["system"]) for r in runs))
    for domain, metric, system in keys:
        field, better = METRICS[metric]
        mine = {
            r["seed"]: r[field]
            for r in runs
            if (r["domain"], r["metric"], r["system"]) == (domain, metric, system)
        }
        base = {
            r["seed"]: r[field]
            for r in runs
            if (r["domain"], r["metric"], r["system"]) == (domain, metric, NO_EXTENSION)
        }
        values = [mine[s] for s in sorted(mine)]
        diffs = [mine[s] - base[s] for s in sorted(mine) if s in base]
        rows.append(
            {
                "domain": domain,
                "metric": f"{metric} ({better} is better)",
                "system": system,
                "mean": round(statistics.mean(values), 4),
                "range": f"{min(values):.4g}-{max(values):.4g}",
                "vs no extension": (
                    "-"
                    if system == NO_EXTENSION or not diffs
                    else f"{statistics.mean(diffs):+.4g} ({min(diffs):+.4g} to {max(diffs):+.4g})"
                ),
                "seeds": len(values),
            }
        )
    return rows


def summarize(rows: Sequence[dict], settings: Dict[str, Any]) -> List[dict]:
    """Summary rows of the task figures (NER F1, AUROC); the MLM losses stay in the region's table."""
    out = []
    for r in rows:
        if r["system"] == NO_EXTENSION or r["metric"].startswith("held-out MLM"):
            continue
        out.append(
            {
                "claim": f"{r['domain']}: {r['metric'].split(' (')[0]} after the same pretrain budget, {r['system']} vs no extension",
                "figure": f"{r['mean']:g} (difference {r['vs no extension']})",
                "range": f"{r['range']} over {r['seeds']} seeds",
                "baseline": NO_EXTENSION,
                "split": {
                    "demo-reports": "demo-reports dev",
                    CLINC_CHOOSE: f"choosing split: the last {settings.get('clinc_choose_per_intent')} clinc150 train utterances per intent, held out of mining and pretraining (+ oos_train)",
                }.get(r["domain"], "clinc150 val (+ oos_val)"),
                "caveat": f"small 128x4 random checkpoint pretrained {settings['general_steps']} steps on CoNLL-2003 train (general text), then {settings['domain_steps']} domain steps per system; "
                + (
                    f"each system's NER rate chosen from {settings['ner_rates']} on demo train reports"
                    if len(settings.get("ner_rates", [])) > 1
                    else "nothing tuned"
                ),
            }
        )
    return out


def run_vocab_downstream(
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/vocab_downstream.json"),
    threads: int = 1,
    seeds: int = 3,
    max_new: int = 2000,
    min_freq: int = 5,
    demo_docs: int = 3000,
    general_steps: int = 200,
    domain_steps: int = 100,
    lr: float = 1e-3,
    batch_tokens: int = 2048,
    window: int = 128,
    ner_docs: int = 600,
    ner_epochs: int = 6,
    ner_batch: int = 8,
    ner_seeds: int = 1,
    ner_rates: str = "1e-3",
    ner_choose_docs: int = 300,
    clinc_fit: int = 10,
    clinc_val: int = 5,
    clinc_choose: int = 0,
    domains_run: str = "demo-reports,clinc150",
    max_words: str = "1",
    inits: str = "mean,contextual,random",
) -> Dict[str, Any]:
    import torch

    from spacy_modernbert.data.demo import generate_demo_splits

    torch.set_num_threads(threads)
    cache = Path(cache_dir) / "vocab"
    settings = _settings(lr, batch_tokens, window)
    small = bdata.ensure_checkpoint(Path(cache_dir) / "random-small", "small", data_dir, log=log)
    gen = general_checkpoint(small, bdata.tokenizer_texts(data_dir), cache, general_steps, settings)
    wanted = domains_run.split(",")
    variants = dict(max_words=parse_variants(max_words), inits=inits.split(","))
    demo = generate_demo_splits(n_docs=demo_docs, seed=0)
    rates = [float(r) for r in ner_rates.split(",")]
    choose = choose_split(demo["train"], ner_docs, ner_choose_docs if len(rates) > 1 else 0)
    texts = domains(data_dir, demo_docs)
    clinc = (
        clinc_splits(data_dir, clinc_fit, clinc_val, clinc_choose) if "clinc150" in wanted else None
    )
    clinc_name = CLINC_CHOOSE if clinc_choose else "clinc150"
    config = {
        "seeds": seeds,
        "max_new": max_new,
        "min_freq": min_freq,
        "demo_docs": demo_docs,
        "general_steps": general_steps,
        "domain_steps": domain_steps,
        "lr": lr,
        "batch_tokens": batch_tokens,
        "window": window,
        "threads": threads,
        "ner_docs": ner_docs,
        "ner_epochs": ner_epochs,
        "ner_batch": ner_batch,
        "ner_seeds": ner_seeds,
        "ner_rates": rates,
        "ner_choose_docs": len(choose),
        "ner_updates": ner_epochs * -(-ner_docs // ner_batch),
        "max_words_per_term": variants["max_words"],
        "inits": variants["inits"],
        "command": f"python -m benchmarks vocab-downstream --domains {domains_run} --output {output} --seeds {seeds}"
        f" --max-words-per-term {max_words} --inits {inits} --max-new {max_new} --min-freq {min_freq}"
        f" --ner-seeds {ner_seeds} --ner-epochs {ner_epochs} --ner-docs {ner_docs} --ner-batch {ner_batch}"
        + (f" --ner-rates {ner_rates}" if len(rates) > 1 else "")
        + (f" --clinc-choose {clinc_choose}" if clinc_choose else ""),
        "clinc_fit_per_intent": clinc_fit,
        "clinc_val_per_intent": clinc_val,
        "clinc_choose_per_intent": clinc_choose,
        "detector": "KnnDetector (10 neighbours, cosine, pooled embeddings)",
    }
    runs: List[dict] = []
    for seed in range(seeds):
        if "demo-reports" in wanted:
            train, held = texts["demo-reports"]
            systems = domain_runs(
                gen,
                train,
                "demo-reports",
                cache,
                seed,
                domain_steps,
                max_new,
                min_freq,
                settings,
                **variants,
            )
            for system, (start, run) in systems.items():
                row = mlm_row(system, "demo-reports", seed, start, run, held, window)
                runs.append({**row, "metric": "held-out MLM loss per word"})
                for rate in rates:
                    ner = ner_over_seeds(
                        run,
                        demo,
                        ner_docs,
                        ner_epochs,
                        ner_batch,
                        seed,
                        ner_seeds,
                        log,
                        system,
                        rate,
                        choose,
                    )
                    runs.append(
                        {
                            "system": system,
                            "domain": "demo-reports",
                            "metric": "NER F1 (dev)",
                            "seed": seed,
                            **ner,
                        }
                    )
                    _write(output, runs, config)
        if clinc is not None:
            systems = domain_runs(
                gen,
                clinc["train"],
                clinc_name,
                cache,
                seed,
                domain_steps,
                max_new,
                min_freq,
                settings,
                **variants,
            )
            for system, (start, run) in systems.items():
                row = mlm_row(system, clinc_name, seed, start, run, clinc["held"], window)
                runs.append({**row, "metric": "held-out MLM loss per word"})
                auroc = oos_auroc(run, clinc, seed)
                log(f"  seed {seed} {system}: out-of-scope AUROC {auroc}")
                runs.append(
                    {
                        "system": system,
                        "domain": clinc_name,
                        "metric": "out-of-scope AUROC (val)",
                        "seed": seed,
                        "auroc": auroc,
                    }
                )
                _write(output, runs, config)
    result = _write(output, runs, config)
    print(table(result["columns"], [[r[c] for c in result["columns"]] for r in result["rows"]]))
    return result


def _write(output: Optional[Path], runs: List[dict], config: Dict[str, Any]) -> Dict[str, Any]:
    """The result so far (written after every system: a run cut off keeps what it measured)."""
    chosen = chosen_rates(runs)
    rows = aggregate(at_chosen_rates(runs, chosen))
    result = {
        **header("vocab_downstream", config["command"], machine=machine_info()),
        "protocol": {
            "chooses": (
                "nothing: extension size, pretrain budget, NER rate (configs/cpu_tiny.cfg) and detector fixed in advance"
                if len(config["ner_rates"]) == 1
                else f"each system's NER rate from {config['ner_rates']}: the best mean F1 over its seeds on the last {config['ner_choose_docs']} demo train reports (never trained on); extension size, pretrain budget and detector fixed in advance"
            ),
            "reports": (
                f"nothing: CLINC150's choosing split (the last {config['clinc_choose_per_intent']} train utterances per intent, held out of mining and pretraining, vs oos_train); val and oos_val unread"
                if config.get("clinc_choose_per_intent")
                else "demo reports dev split (generator seed 0); CLINC150 val in-scope vs oos_val; mined and pretrained on train text only"
            ),
            "checkpoint": "random-init small (128x4, BPE 8k trained on CoNLL-2003 train: general text), pretrained on CoNLL-2003 train first, the same for every system",
            "seeds": config["seeds"]
            if config.get("ner_seeds", 1) == 1
            else f"{config['seeds']} (each checkpoint's NER F1: the mean of {config['ner_seeds']} NER seeds)",
        },
        "settings": config,
        "columns": ["domain", "metric", "system", "mean", "range", "vs no extension", "seeds"],
        "rows": rows,
        "ner_rates_chosen": [
            {"domain": d, "system": s, "rate": rate} for (d, s), rate in chosen.items()
        ],
        "runs": runs,
        "summary": summarize(rows, config),
    }
    write_json(output, result)
    return result


_D = defaults(run_vocab_downstream)


@app.command("vocab-downstream")
def vocab_downstream_cli(
    # fmt: off
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = _D["output"],
    threads: Threads = _D["threads"],
    seeds: int = typer.Option(
        _D["seeds"], "--seeds", help="Seeds (extension init, pretraining, NER)"
    ),
    max_new: int = typer.Option(_D["max_new"], "--max-new", help="extend-vocab --max-new"),
    min_freq: int = typer.Option(_D["min_freq"], "--min-freq", help="extend-vocab --min-freq"),
    demo_docs: int = typer.Option(
        _D["demo_docs"], "--demo-docs", help="Demo reports generated (70/15/15)"
    ),
    general_steps: int = typer.Option(
        _D["general_steps"], "--general-steps", help="Pretrain steps on general text first"
    ),
    domain_steps: int = typer.Option(
        _D["domain_steps"],
        "--domain-steps",
        help="Pretrain steps on the domain's train text per system",
    ),
    lr: float = typer.Option(_D["lr"], "--lr", help="Pretraining rate"),
    batch_tokens: int = typer.Option(_D["batch_tokens"], "--batch-tokens"),
    window: int = typer.Option(_D["window"], "--window"),
    ner_docs: int = typer.Option(
        _D["ner_docs"], "--ner-docs", help="Demo train reports the NER trains on"
    ),
    ner_epochs: int = typer.Option(_D["ner_epochs"], "--ner-epochs"),
    ner_batch: int = typer.Option(_D["ner_batch"], "--ner-batch", help="Docs per NER update"),
    ner_seeds: int = typer.Option(
        _D["ner_seeds"], "--ner-seeds", help="NER runs per checkpoint (F1 is their mean)"
    ),
    ner_rates: str = typer.Option(
        _D["ner_rates"],
        "--ner-rates",
        help="Comma-separated NER rates; several: each system's is chosen on the choosing split",
    ),
    ner_choose_docs: int = typer.Option(
        _D["ner_choose_docs"],
        "--ner-choose-docs",
        help="Last demo train reports that choose the NER rate (with several --ner-rates)",
    ),
    clinc_fit: int = typer.Option(
        _D["clinc_fit"],
        "--clinc-fit",
        help="In-scope train utterances per intent the detector is fitted on",
    ),
    clinc_val: int = typer.Option(
        _D["clinc_val"], "--clinc-val", help="In-scope val utterances per intent scored"
    ),
    clinc_choose: int = typer.Option(
        _D["clinc_choose"],
        "--clinc-choose",
        help="CLINC150's choosing split instead of val: hold the last N train utterances per "
        "intent out of mining and pretraining and score them against oos_train (0: report on val)",
    ),
    domains_run: str = typer.Option(
        _D["domains_run"], "--domains", help="Comma-separated: demo-reports, clinc150"
    ),
    max_words: str = typer.Option(
        _D["max_words"],
        "--max-words-per-term",
        help="Comma-separated extend-vocab --max-words-per-term variants (3: multi-word tokens; 3/0.25: with --multi-word-share 0.25)",
    ),
    inits: str = typer.Option(
        _D["inits"], "--inits", help="Comma-separated extend-vocab --init values compared"
    ),
    # fmt: on
) -> None:
    """NER F1 and out-of-scope AUROC with and without extend-vocab, after the same pretrain budget."""
    run_vocab_downstream(**locals())
