"""`python -m benchmarks distill-dev`: choose the distilled student's setting on a dev split.

The protocol (invariants):
* **Split.** Dev: the last `--dev` sentences of CoNLL-2003 train, outside the gold sentences
  (the first `--gold`) and every candidate's unlabelled text (the next `unlabelled`; a
  candidate that would overlap is refused). CoNLL valid, where `python -m benchmarks distill`
  reports, is never read here.
* **Rates.** Every system picks its rate from `RATES` on the dev split: the teacher (trained on
  the gold sentences, `--teacher-epochs`), the gold-only student (the base updates) and the
  distilled student (base setting); the students learn from the chosen teacher.
* **Candidates.** The base setting (benchmarks/distill.py `BASE_SETTING`: the 2 x 64 student,
  400 updates, 8,000 unlabelled sentences, token vectors by MSE at weight 1) at its chosen rate
  and each change of one thing alone: more updates, more unlabelled text, the token-vector loss (cosine, weight),
  a wider student within 1/4 of the teacher's encoder FLOPs per token (benchmarks/flops.py,
  checked here on the dev sentences; a student over it is refused). With `--combine`, the two
  best single changes that beat the base are then measured together.
* **Choice.** The highest mean dev NER F1 over `--seeds` seeds; the result file records every
  candidate's dev scores and the chosen setting, which `python -m benchmarks distill --choice
  FILE` then reports on CoNLL valid with the chosen rates. The file is rewritten after each
  candidate (a stopped run keeps what it measured). The gold-only baseline gets the same rate
  grid as the distilled student (neither is out-tuned); its other settings are the chosen
  student's (shape; updates: equal to the distilled run's, and equal time).
"""

import json
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from . import data as bdata
from ._app import CacheDir, DataDir, Output, Threads, app, defaults
from .distill import (
    BASE_SETTING,
    Gold,
    TeacherEpochs,
    Valid,
    _flops,
    distill_seed,
    gold_only,
    ner_f1,
    prepare,
    shape_name,
    student_file,
)
from .report import log, machine_info, write_json
from .results import command_line, record

MAX_FLOPS_RATIO = 0.25
# The rate grid every system chooses from on the dev split (teacher, gold-only, distilled).
RATES = (1e-3, 4e-3)

# One change each from BASE_SETTING (at the distilled student's chosen rate).
CANDIDATES: Dict[str, Dict[str, Any]] = {
    "steps-800": {"steps": 800},
    "unlabelled-11000": {"unlabelled": 11000},
    "cosine": {"hidden_loss": "cosine"},
    "hidden-weight-4": {"hidden_weight": 4.0},
    "student-3x72": {"student": "distill_student_3x72"},
}


def _score(prep, name: str, setting: Dict[str, Any], seeds: int) -> Dict[str, Any]:
    dev = prep["dev_s"]
    f1s, seconds = [], []
    for seed in range(seeds):
        student, row = distill_seed(prep, f"dev-{name}", seed, setting, ["hidden", "ner"])
        f1s.append(ner_f1(student, dev))
        seconds.append(row["train_seconds"])
        log(f"dev: {name} seed {seed}: dev F1 {f1s[-1]:.2f}")
    return {
        "setting": setting,
        "dev_f1": statistics.mean(f1s),
        "dev_f1_runs": f1s,
        "train_seconds": statistics.mean(seconds),
    }


def run_dev(
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = None,
    threads: int = 1,
    gold: int = 2000,
    valid: int = 1000,
    teacher_epochs: int = 6,
    dev: int = 1000,
    seeds: int = 1,
    candidates: Optional[List[str]] = None,
    combine: bool = True,
) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    names = list(CANDIDATES) if candidates is None else candidates
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise typer.BadParameter(f"unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}")
    most = max([BASE_SETTING["unlabelled"]] + [CANDIDATES[n].get("unlabelled", 0) for n in names])
    # 1. the teacher's rate
    teacher_dev: Dict[float, float] = {}
    preps: Dict[float, Dict[str, Any]] = {}
    for rate in RATES:
        preps[rate] = prepare(cache_dir, data_dir, gold, most, valid, teacher_epochs, dev, rate)
        teacher_dev[rate] = ner_f1(preps[rate]["teacher"], preps[rate]["dev_s"])
        log(f"dev: teacher at rate {rate:g}: dev F1 {teacher_dev[rate]:.2f}")
    teacher_lr = max(RATES, key=lambda r: teacher_dev[r])
    prep = preps[teacher_lr]
    dev_texts = [w for w, _ in prep["dev_s"]]
    teacher_flops = _flops(prep["teacher"], dev_texts)
    # 2. the gold-only student's rate (its base updates, seed 0)
    gold_dev: Dict[float, float] = {}
    for rate in RATES:
        config = student_file(prep, BASE_SETTING["student"], rate)
        trained = gold_only(config, prep["gold_path"], BASE_SETTING["steps"], 0)
        gold_dev[rate] = ner_f1(trained["nlp"], prep["dev_s"])
        log(f"dev: gold-only student at rate {rate:g}: dev F1 {gold_dev[rate]:.2f}")
    gold_lr = max(RATES, key=lambda r: gold_dev[r])
    scored: Dict[str, Dict[str, Any]] = {}
    base_name: Optional[str] = None

    def write() -> Dict[str, Any]:
        base = scored[base_name]["dev_f1"] if base_name else None
        best = max(scored, key=lambda n: scored[n]["dev_f1"])
        rows = [
            {
                "candidate": f"teacher, rate {r:g}",
                "change": "-",
                "student": "4 x 128 (teacher)",
                "FLOPs ratio": 1.0,
                "dev NER F1": round(teacher_dev[r], 2),
                "vs base": "chosen" if r == teacher_lr else "-",
                "train s": "-",
            }
            for r in RATES
        ]
        rows += [
            {
                "candidate": f"gold-only student, rate {r:g}",
                "change": "-",
                "student": shape_name(BASE_SETTING["student"]),
                "FLOPs ratio": "-",
                "dev NER F1": round(gold_dev[r], 2),
                "vs base": "chosen" if r == gold_lr else "-",
                "train s": "-",
            }
            for r in RATES
        ]
        rows += [
            {
                "candidate": name,
                "change": json.dumps(r["change"]),
                "student": shape_name(r["setting"]["student"]),
                "FLOPs ratio": round(r["flops_ratio"], 3),
                "dev NER F1": round(r["dev_f1"], 2),
                "vs base": f"{r['dev_f1'] - base:+.2f}" if base is not None else "-",
                "train s": round(r["train_seconds"], 1),
            }
            for name, r in scored.items()
        ]
        result = record(
            "distill_dev",
            command_line("python -m benchmarks distill-dev"),
            {
                "chooses": f"each system's rate from {', '.join(f'{r:g}' for r in RATES)} (teacher, gold-only student, distilled student), then the distilled student's setting: highest dev NER F1 ({seeds} seed(s) per candidate)",
                "reports": "nothing (the choice is reported on CoNLL valid by `python -m benchmarks distill --choice`)",
                "dev": f"CoNLL-2003 train, last {dev} sentences (not gold, not unlabelled text)",
                "checkpoint": "random-init: teacher small (4 x 128), students of data.SHAPES; all systems from random init (no pretrained weights offline)",
                "seeds": seeds,
            },
            ["candidate", "change", "student", "FLOPs ratio", "dev NER F1", "vs base", "train s"],
            rows,
            [
                {
                    "claim": "distilled student's setting chosen on the dev split",
                    "figure": best,
                    "range": f"dev F1 {scored[best]['dev_f1']:.2f}"
                    + (f" (base {base:.2f})" if base is not None else ""),
                    "baseline": "the base setting",
                    "split": f"CoNLL-2003 train, last {dev} sentences",
                    "caveat": f"random-init checkpoints; {seeds} seed(s) per candidate; teacher dev F1 {teacher_dev[teacher_lr]:.2f}",
                }
            ],
            machine=machine_info("cpu"),
            teacher_dev_f1=teacher_dev[teacher_lr],
            rates={"teacher": teacher_lr, "gold_only": gold_lr},
            rate_dev_f1={
                "teacher": {f"{r:g}": teacher_dev[r] for r in RATES},
                "gold_only": {f"{r:g}": gold_dev[r] for r in RATES},
            },
            candidates=scored,
            chosen={"name": best, **scored[best]},
            settings={
                "gold": gold,
                "dev": dev,
                "teacher_epochs": teacher_epochs,
                "threads": threads,
            },
        )
        write_json(output, result)
        return result

    def measure(name: str, change: Dict[str, Any]) -> None:
        setting = dict(BASE_SETTING, **change)
        result = _score(prep, name, setting, seeds)
        result["change"] = change
        result["flops_ratio"] = _student_flops(prep, setting, dev_texts) / teacher_flops
        if result["flops_ratio"] > MAX_FLOPS_RATIO:
            raise ValueError(
                f"{name}: student {setting['student']} is over 1/4 of the teacher's FLOPs"
            )
        scored[name] = result
        write()

    # 3. the distilled student's rate (base setting), then one change at a time at that rate
    for rate in RATES:
        measure(f"base, rate {rate:g}", {"lr": rate})
    base_name = max((n for n in scored), key=lambda n: scored[n]["dev_f1"])
    lr = scored[base_name]["change"]
    for name in names:
        measure(name, {**lr, **CANDIDATES[name]})
    if combine:
        base_f1 = scored[base_name]["dev_f1"]
        better = sorted(
            (n for n in names if scored[n]["dev_f1"] > base_f1),
            key=lambda n: -scored[n]["dev_f1"],
        )
        if len(better) >= 2:
            measure(
                f"{better[0]}+{better[1]}",
                {**lr, **CANDIDATES[better[0]], **CANDIDATES[better[1]]},
            )
    result = write()
    log(json.dumps(result["summary"], indent=1))
    return result


def _student_flops(prep, setting: Dict[str, Any], texts) -> float:
    """Encoder FLOPs per token of the setting's student shape on `texts` (teacher's tokenizer)."""
    from types import SimpleNamespace

    from spacy_modernbert.distill.student import encoder_of

    from .flops import flops_per_token

    tok = encoder_of(prep["teacher"]).tokenizer
    lengths = [len(tok(" ".join(w))["input_ids"]) for w in texts]
    return flops_per_token(SimpleNamespace(**bdata.SHAPES[setting["student"]]), lengths)


_V = defaults(run_dev)


@app.command("distill-dev")
def distill_dev_cli(
    cache_dir: CacheDir = _V["cache_dir"],
    data_dir: DataDir = _V["data_dir"],
    output: Output = None,
    threads: Threads = _V["threads"],
    gold: Gold = _V["gold"],
    valid: Valid = _V["valid"],
    teacher_epochs: TeacherEpochs = _V["teacher_epochs"],
    dev: int = typer.Option(_V["dev"], "--dev", help="Dev sentences: the last of CoNLL train"),
    seeds: int = typer.Option(_V["seeds"], "--seeds", help="Seeds per candidate"),
    candidates: Optional[List[str]] = typer.Option(
        None, "--candidate", help="Run only these candidates (repeatable; default: all)"
    ),
    combine: bool = typer.Option(
        True, "--combine/--no-combine", help="Also measure the two best single changes together"
    ),
) -> None:
    """Choose the distilled student's setting on a dev split carved from CoNLL train (one change at a time)."""
    run_dev(
        cache_dir,
        data_dir,
        output,
        threads,
        gold,
        valid,
        teacher_epochs,
        dev,
        seeds,
        candidates,
        combine,
    )
