"""`python -m benchmarks distill-throughput`: `distill` against a plain distillation loop, texts/s.

The protocol (invariants):
* **Systems.** `distill`: the command's function as a user runs it (benchmarks/distill.py's
  teacher and 2 x 64 student config): the teacher once over the texts in batches (its outputs
  cached), then `--steps` student updates on batches of the config's batcher, each batch one
  packed encoder forward, and the run's saves. `plain`: the loop one writes without either:
  for every batch the teacher runs on each text alone (no cache: every epoch pays it again) and
  the student is updated on each example alone (one sequence per forward, gradients accumulated
  over the batch, one optimizer step per batch). Both see the same texts in the same batches,
  the same signals (silver NER + token vectors by MSE), and make the same number of optimizer
  updates.
* **Figure.** Texts/s = student examples trained on (updates x batch) / wall seconds of the
  whole run (teacher included), median and range of `--repeats` interleaved rounds
  (ABC/CBA), `--threads` torch threads, with the run's load average.
* **Checkpoints.** Random-init teacher (small, 4 x 128, trained on the gold sentences as in
  `distill`) and student (2 x 64): speed does not depend on the weights.
"""

import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Dict, Optional

import typer

from . import data as bdata
from ._app import CacheDir, DataDir, Output, Repeats, Threads, app, defaults
from .distill import BASE_SETTING, Gold, TeacherEpochs, prepare, student_file, text_file
from .report import log, machine_info, write_json
from .results import command_line, median_range, record, round_order

SIGNALS = ["hidden", "ner"]


def run_ours(prep, config: Path, texts: Path, steps: int, out: Path) -> Dict[str, Any]:
    """`distill` end to end (teacher pass + packed updates + saves); examples seen and seconds."""
    from spacy_modernbert.distill.loop import distill

    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    summary = distill(
        prep["teacher_path"], config, [texts], out, steps=steps, signals=SIGNALS, eval_every=steps
    )
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "examples": round(summary["docs_per_s"] * summary["train_seconds"]),
        "teacher_seconds": summary["teacher_seconds"],
    }


def run_plain(prep, config: Path, texts: Path, steps: int, seed: int = 0) -> Dict[str, Any]:
    """The plain loop: teacher per text in every batch, student per example, one step per batch."""
    from spacy.training import Example
    from spacy.util import fix_random_seed

    from spacy_modernbert.distill.hidden import make_distill_hidden
    from spacy_modernbert.distill.loop import _batches, _optimizer
    from spacy_modernbert.distill.student import encoder_of, load_student
    from spacy_modernbert.distill.teacher import components_by_factory, teach, teacher_width
    from spacy_modernbert.pretrain.data import read_texts

    t0 = time.perf_counter()
    fix_random_seed(seed)
    teacher = prep["teacher"]
    student, cfg = load_student(config)
    docs = [student.make_doc(t) for t in read_texts([texts])]
    # placeholders with each text's length: the config's batcher makes distill's batches
    placeholders = [Example(doc, doc) for doc in docs]
    optimizer = _optimizer(cfg, steps)
    ner = student.get_pipe(components_by_factory(student)["ner"])
    for label in teacher.get_pipe(components_by_factory(teacher)["ner"]).labels:
        ner.add_label(label)
    sample = list(teach(teacher, docs[:16], SIGNALS, batch_size=1))
    student.initialize(
        lambda: [Example(student.make_doc(d.text), d) for d in sample], sgd=optimizer
    )
    trf = student.get_pipe(components_by_factory(student)["transformer"])
    hidden = make_distill_hidden(
        student.vocab,
        trf,
        teacher_width(teacher),
        int(encoder_of(student).transformer.config.hidden_size),
        loss=BASE_SETTING["hidden_loss"],
        weight=BASE_SETTING["hidden_weight"],
    )
    drop = float(cfg["training"]["dropout"])
    batches = _batches(cfg, placeholders, seed)
    examples = 0
    teacher_seconds = 0.0
    for _ in range(steps):
        for eg in next(batches):
            t1 = time.perf_counter()
            (ref,) = teach(teacher, [eg.reference], SIGNALS, batch_size=1)
            teacher_seconds += time.perf_counter() - t1
            one = [Example(student.make_doc(ref.text), ref)]
            student.update(one, sgd=False, drop=drop)
            hidden.update(one, drop=drop)
            examples += 1
        for _, proc in student.pipeline:
            if hasattr(proc, "finish_update"):
                proc.finish_update(optimizer)
        hidden.finish_update(optimizer)
        optimizer.step_schedules()
    return {
        "seconds": time.perf_counter() - t0,
        "examples": examples,
        "teacher_seconds": teacher_seconds,
    }


def run_throughput(
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = None,
    threads: int = 1,
    gold: int = 2000,
    teacher_epochs: int = 6,
    texts: int = 400,
    steps: int = 16,
    repeats: int = 3,
    choice: Optional[Path] = None,
) -> Dict[str, Any]:
    import json

    import torch

    torch.set_num_threads(threads)
    rate = json.loads(Path(choice).read_text())["rates"]["teacher"] if choice else None
    prep = prepare(cache_dir, data_dir, gold, texts, 10, teacher_epochs, lr=rate)
    config = student_file(prep, BASE_SETTING["student"])
    text_path = text_file(prep, texts)
    systems = {
        "distill": lambda: run_ours(
            prep, config, text_path, steps, prep["work"] / "throughput-run"
        ),
        "plain": lambda: run_plain(prep, config, text_path, steps),
    }
    runs: Dict[str, list] = {name: [] for name in systems}
    for r in range(repeats):
        for name in round_order(list(systems), r):
            row = systems[name]()
            row["texts_per_s"] = row["examples"] / row["seconds"]
            runs[name].append(row)
            log(
                f"round {r}: {name} {row['examples']} examples in {row['seconds']:.1f}s "
                f"({row['texts_per_s']:.1f} texts/s; teacher {row['teacher_seconds'] or 0:.1f}s)"
            )
    speed = {n: median_range([row["texts_per_s"] for row in rs]) for n, rs in runs.items()}
    ratios = [a["texts_per_s"] / b["texts_per_s"] for a, b in zip(runs["distill"], runs["plain"])]
    rows = [
        {
            "system": name,
            "texts/s": round(speed[name]["median"], 1),
            "range": f"{speed[name]['range'][0]:.1f}-{speed[name]['range'][1]:.1f}",
            "examples": runs[name][0]["examples"],
            "s (median)": round(statistics.median(row["seconds"] for row in runs[name]), 1),
            "teacher s (median)": round(
                statistics.median(row["teacher_seconds"] or 0.0 for row in runs[name]), 1
            ),
        }
        for name in systems
    ]
    ratio = speed["distill"]["median"] / speed["plain"]["median"]
    result = record(
        "distill_throughput",
        command_line("python -m benchmarks distill-throughput"),
        {
            "chooses": "nothing (speed of fixed settings)",
            "reports": f"{texts} CoNLL-2003 train sentences after the gold ones, {steps} updates",
            "checkpoint": "random-init: teacher small (4 x 128, trained on the gold sentences), student distill_student (2 x 64); no pretrained weights offline",
            "seeds": f"speed: {repeats} interleaved repeats (seed 0)",
        },
        list(rows[0]),
        rows,
        [
            {
                "claim": "distill (teacher once, packed student updates) vs a plain loop (teacher per text per epoch, student per example), texts/s",
                "figure": f"{ratio:.2f}x",
                "range": f"{min(ratios):.2f}-{max(ratios):.2f}x per round",
                "baseline": "plain loop: same texts, batches, signals and optimizer updates",
                "split": f"{texts} CoNLL-2003 train sentences (speed only)",
                "caveat": f"CPU, {threads} torch thread(s), shared machine (load average with the run); teacher pass included in distill's time",
            }
        ],
        machine=machine_info("cpu"),
        runs=runs,
        speed=speed,
        teacher_rate=prep["lr"],
        settings={
            "gold": gold,
            "teacher_epochs": teacher_epochs,
            "texts": texts,
            "steps": steps,
            "threads": threads,
        },
    )
    write_json(output, result)
    return result


_T = defaults(run_throughput)


@app.command("distill-throughput")
def distill_throughput_cli(
    cache_dir: CacheDir = _T["cache_dir"],
    data_dir: DataDir = _T["data_dir"],
    output: Output = None,
    threads: Threads = _T["threads"],
    gold: Gold = _T["gold"],
    teacher_epochs: TeacherEpochs = _T["teacher_epochs"],
    texts: int = typer.Option(_T["texts"], "--texts", help="Unlabelled sentences distilled on"),
    steps: int = typer.Option(_T["steps"], "--steps", help="Optimizer updates of each system"),
    repeats: Repeats = _T["repeats"],
    choice: Optional[Path] = typer.Option(
        None, "--choice", help="A distill-dev result: the teacher at its chosen rate"
    ),
) -> None:
    """Distillation throughput: distill (teacher cached, packed updates) vs a plain unpacked loop, texts/s."""
    run_throughput(
        cache_dir, data_dir, output, threads, gold, teacher_epochs, texts, steps, repeats
    )
