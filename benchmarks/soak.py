"""`python -m benchmarks soak`: resident memory of `spacy train` after update 100, 500 and 1,000.

Issue 23: training memory grew with every update (~4 MiB per update on a 4 x 128 checkpoint),
because thinc's `PyTorchShim.finish_update` chained one tensor per parameter per update and
those long-lived links pinned glibc's heap (docs/memory.md). Our shim updates the parameters
in place. This benchmark runs spaCy's own training loop (`spacy.cli.train.train`, the code of
`spacy train`) on the project's CPU config cut to transformer + ner, CoNLL-2003 train sentences
as one-sentence docs, and reads the RSS in a `before_update` callback: the value at step k is
the RSS after k updates. Each variant runs in a fresh process:

* `ours`: the plugin as shipped;
* `thinc_finish_update`: the same run with thinc's `finish_update` put back (the code before
  the fix), for contrast.

The goal of the issue: RSS after 1,000 updates <= 1.1 x RSS after 100. No evaluation runs
after step 0 (eval_frequency is past the last update), so the figures are training alone.
"""

import multiprocessing
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer

from . import data as bdata
from ._app import CacheDir, Checkpoint, DataDir, Output, Threads, app, defaults
from .report import _rss_bytes, log, table, write_json
from .results import header

VARIANTS = ("ours", "thinc_finish_update")
ROOT = Path(__file__).resolve().parents[1]
PROBE_EVERY = 25
_PROBES: Dict[int, float] = {}
_LAST_STEP = [0]


def _probe(nlp: Any, args: Dict[str, Any]) -> None:
    step = args["step"]
    if step % PROBE_EVERY == 0 or step == _LAST_STEP[0]:
        _PROBES[step] = round((_rss_bytes() or 0) / 2**20, 1)
        if step % (PROBE_EVERY * 10) == 0:
            log(f"  update {step}: RSS {_PROBES[step]:.0f} MiB")


def _register_probe() -> None:
    from spacy.util import registry

    registry.callbacks.register("benchmarks.soak_probe.v1", func=lambda: _probe)


def _summary(
    system: str, probes: Dict[int, float], threads: int, baseline: str, split: str
) -> Dict[str, Any]:
    """RSS after the last update over RSS after update 100 (the issue's goal: <= 1.1)."""
    last = max(probes)
    at = [k for k in (100, 200, 300, 500, 1000) if k in probes and k < last] + [last]
    ratio = probes[last] / probes[100] if 100 in probes and last > 100 else None
    log(
        f"{system}: RSS after update {' / '.join(map(str, at))}: {' / '.join(str(probes[k]) for k in at)} MiB"
        + (f"; ratio {last}/100 = {ratio:.3f}" if ratio else "")
    )
    return {
        "claim": f"{system}: RSS after update {last} / RSS after update 100 (goal <= 1.1)",
        "figure": round(ratio, 3) if ratio else None,
        "range": f"RSS after update {' / '.join(map(str, at))}: {' / '.join(str(probes[k]) for k in at)} MiB",
        "baseline": baseline,
        "split": split,
        "caveat": f"one run; {threads} thread(s) on a shared machine; the slope, not the level, is the figure",
    }


def soak_config(
    config_path: Path, checkpoint: Path, train: Path, dev: Path, updates: int, batch_words: int
):
    """The CPU config cut to transformer + ner, `updates` steps, RSS probe, no evaluation after step 0."""
    from spacy import util

    config = util.load_config(config_path, interpolate=False)
    config["nlp"]["pipeline"] = ["transformer", "ner"]
    config["components"].pop("anomaly_scorer", None)
    config["training"]["score_weights"] = {
        k: v for k, v in config["training"]["score_weights"].items() if not k.startswith("anomaly")
    }
    config["paths"].update({"train": str(train), "dev": str(dev), "base_model": str(checkpoint)})
    training = config["training"]
    training.update(
        {
            "max_steps": updates,
            "max_epochs": 0,
            "eval_frequency": updates + 1,
            "before_update": {"@callbacks": "benchmarks.soak_probe.v1"},
        }
    )
    training["batcher"]["size"] = batch_words
    training["optimizer"]["learn_rate"]["total_steps"] = updates
    training["optimizer"]["learn_rate"]["warmup_steps"] = max(1, updates // 10)
    return config


def _train_variant(variant: str, config_text: str, threads: int, updates: int) -> Dict[int, float]:
    """One `spacy train` run in this (fresh) process; returns {update: RSS MiB}."""
    import torch

    _LAST_STEP[0] = updates
    torch.set_num_threads(threads)
    import spacy_modernbert  # noqa: F401  (registers the architecture)

    if variant == "thinc_finish_update":
        from thinc.api import PyTorchShim

        import spacy_modernbert.encoder.shim as shim_module

        shim_module.step_in_place = PyTorchShim.finish_update
    elif variant != "ours":
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    _register_probe()
    from spacy.cli.train import train

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.cfg"
        path.write_text(config_text, encoding="utf8")
        train(path, None, use_gpu=-1)
    return dict(_PROBES)


def _in_fresh_process(
    variant: str, config_text: str, threads: int, updates: int
) -> Dict[int, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_train_variant, (variant, config_text, threads, updates))


def run_soak(
    checkpoint: Optional[Path] = None,
    shape: str = "small",
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    config: Path = ROOT / "configs" / "cpu_tiny.cfg",
    output: Optional[Path] = Path("benchmarks/results/soak.json"),
    updates: int = 1000,
    contrast_updates: int = 300,
    train_docs: int = 4000,
    batch_words: int = 800,
    threads: int = 1,
    variants: Sequence[str] = VARIANTS,
) -> Dict[str, Any]:

    from spacy_modernbert.data.converters import conll_to_docs, write_docbin

    checkpoint = checkpoint or bdata.ensure_checkpoint(
        cache_dir / f"modernbert-{shape}-random", shape, data_dir, log=log
    )
    conll = Path(data_dir) / bdata.CONLL_TRAIN
    if not conll.exists():
        raise FileNotFoundError(
            f"no CoNLL-2003 train file at {conll}: pass --data-dir DIR holding conll2003/train.iob"
        )
    rows: List[Dict[str, Any]] = []
    result_probes: Dict[str, Dict[int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        docs = conll_to_docs(conll, n_sents=1, limit=train_docs)
        train_path, dev_path = (
            write_docbin(docs, Path(tmp) / "train.spacy"),
            write_docbin(docs[:50], Path(tmp) / "dev.spacy"),
        )
        for variant in variants:
            n = updates if variant == "ours" else min(updates, contrast_updates)
            log(
                f"soak: {variant}, {n} updates of ~{batch_words} words, {len(docs)} one-sentence CoNLL docs, "
                f"checkpoint {checkpoint}"
            )
            text = soak_config(
                Path(config), Path(checkpoint), train_path, dev_path, n, batch_words
            ).to_str()
            probes = _in_fresh_process(variant, text, threads, n)
            result_probes[variant] = probes
            rows.extend(
                {"system": variant, "update": k, "rss_mib": v} for k, v in sorted(probes.items())
            )
    summary = [
        _summary(
            variant,
            probes,
            threads,
            "thinc's own finish_update (the code before the fix)" if variant == "ours" else "-",
            "CoNLL-2003 train (training only; no evaluation after step 0)",
        )
        for variant, probes in result_probes.items()
    ]
    print(
        table(
            ["system", "update", "RSS MiB"],
            [
                [r["system"], r["update"], r["rss_mib"]]
                for r in rows
                if r["update"] in (0, 100, 200, 300, 500, 1000)
            ],
        )
    )
    result = {
        **header("soak", "python -m benchmarks soak"),
        "protocol": {
            "chooses": "nothing is chosen (memory measurement)",
            "reports": "CoNLL-2003 train, one-sentence docs",
            "checkpoint": f"{shape} shape, random init; its tokenizer saw CoNLL-2003 train + SMS (benchmarks/data.py)",
            "seeds": 1,
            "config": f"{Path(config).name} cut to transformer + ner; batch_by_words size {batch_words}; "
            f"{updates} updates (ours), {min(updates, contrast_updates)} (thinc_finish_update); "
            f"spacy.cli.train.train; RSS read in training.before_update every {PROBE_EVERY} updates",
        },
        "columns": ["system", "update", "rss_mib"],
        "rows": rows,
        "summary": summary,
    }
    write_json(output, result)
    return result


_D = defaults(run_soak)


@app.command("soak")
def soak_cli(
    # fmt: off
    checkpoint: Checkpoint = _D["checkpoint"],
    shape: str = typer.Option(
        _D["shape"], "--shape", help="Shape of the generated checkpoint (benchmarks/data.py SHAPES)"
    ),
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    config: Path = typer.Option(
        _D["config"], "--config", help="Training config, cut to transformer + ner"
    ),
    output: Output = _D["output"],
    updates: int = typer.Option(_D["updates"], "--updates", help="Updates of the shipped code"),
    contrast_updates: int = typer.Option(
        _D["contrast_updates"],
        "--contrast-updates",
        help="Updates of the thinc_finish_update contrast run",
    ),
    train_docs: int = typer.Option(
        _D["train_docs"], "--train-docs", help="CoNLL-2003 train sentences (one doc each)"
    ),
    batch_words: int = typer.Option(_D["batch_words"], "--batch-words", help="batch_by_words size"),
    threads: Threads = _D["threads"],
    variants: List[str] = typer.Option(
        list(VARIANTS), "--variant", help="Variants to run (repeat the option)"
    ),
    # fmt: on
) -> None:
    """RSS of `spacy train` (CPU config, transformer + ner) after update 100, 500 and 1,000."""
    run_soak(
        checkpoint=checkpoint,
        shape=shape,
        cache_dir=cache_dir,
        data_dir=data_dir,
        config=config,
        output=output,
        updates=updates,
        contrast_updates=contrast_updates,
        train_docs=train_docs,
        batch_words=batch_words,
        threads=threads,
        variants=variants,
    )


def _pretrain_variant(
    checkpoint: str, text_file: str, steps: int, threads: int
) -> Dict[int, float]:
    """One `pretrain` run in this (fresh) process; returns {step: RSS MiB}. The RSS is read
    when the loop zeroes the gradients, once per step (the loop has no callback)."""
    import torch

    torch.set_num_threads(threads)
    from spacy_modernbert.pretrain.loop import pretrain

    zero_grad, count = torch.optim.Optimizer.zero_grad, [0]

    def probing_zero_grad(self, *args, **kwargs):
        count[0] += 1
        _LAST_STEP[0] = steps
        _probe(None, {"step": count[0]})
        return zero_grad(self, *args, **kwargs)

    torch.optim.Optimizer.zero_grad = probing_zero_grad
    _PROBES[0] = round((_rss_bytes() or 0) / 2**20, 1)
    with tempfile.TemporaryDirectory() as tmp:
        pretrain(
            checkpoint,
            [text_file],
            Path(tmp) / "out",
            steps=steps,
            window=128,
            batch_tokens=2048,
            bf16=False,
            save_every=steps + 1,
            log_every=max(1, steps // 10),
        )
    return dict(_PROBES)


def run_soak_pretrain(
    checkpoint: Optional[Path] = None,
    shape: str = "tiny",
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/soak_pretrain.json"),
    steps: int = 1000,
    threads: int = 1,
) -> Dict[str, Any]:
    checkpoint = checkpoint or bdata.ensure_checkpoint(
        cache_dir / f"modernbert-{shape}-random", shape, data_dir, log=log
    )
    from .pretrain import texts

    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "train.txt"
        text_file.write_text("\n".join(texts(Path(data_dir))[0]), encoding="utf8")
        log(
            f"soak-pretrain: {steps} steps of 2,048 pieces (windows of 128), checkpoint {checkpoint}"
        )
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            probes = pool.apply(
                _pretrain_variant, (str(checkpoint), str(text_file), steps, threads)
            )
    rows = [{"system": "pretrain", "update": k, "rss_mib": v} for k, v in sorted(probes.items())]
    result = {
        **header("soak_pretrain", "python -m benchmarks soak-pretrain"),
        "protocol": {
            "chooses": "nothing is chosen (memory measurement)",
            "reports": "pretraining text of benchmarks/pretrain.py (CoNLL-2003 train + SMS train split)",
            "checkpoint": f"{shape} shape, random init; its tokenizer saw CoNLL-2003 train + SMS (benchmarks/data.py)",
            "seeds": 1,
            "config": f"spacy_modernbert.pretrain.loop.pretrain, {steps} steps, window 128, 2,048 pieces per step, "
            f"fp32, {threads} thread(s); RSS read once per step (at zero_grad) every {PROBE_EVERY} steps",
        },
        "columns": ["system", "update", "rss_mib"],
        "rows": rows,
        "summary": [_summary("pretrain", probes, threads, "-", "pretraining text (training only)")],
    }
    write_json(output, result)
    return result


_DP = defaults(run_soak_pretrain)


@app.command("soak-pretrain")
def soak_pretrain_cli(
    # fmt: off
    checkpoint: Checkpoint = _DP["checkpoint"],
    shape: str = typer.Option(
        _DP["shape"],
        "--shape",
        help="Shape of the generated checkpoint (benchmarks/data.py SHAPES)",
    ),
    cache_dir: CacheDir = _DP["cache_dir"],
    data_dir: DataDir = _DP["data_dir"],
    output: Output = _DP["output"],
    steps: int = typer.Option(_DP["steps"], "--steps", help="Pretraining steps"),
    threads: Threads = _DP["threads"],
    # fmt: on
) -> None:
    """RSS of `pretrain` (masked LM) after step 100, 500 and 1,000."""
    run_soak_pretrain(
        checkpoint=checkpoint,
        shape=shape,
        cache_dir=cache_dir,
        data_dir=data_dir,
        output=output,
        steps=steps,
        threads=threads,
    )
