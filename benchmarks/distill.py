"""`python -m benchmarks distill`: a distilled student against the same student trained on gold alone.

The protocol (invariants):
* **Checkpoints.** Teacher: the random-init `small` checkpoint (4 x 128, BPE 8k trained on
  CoNLL-2003 train); student: the random-init `distill_student` checkpoint (2 x 64, the same
  tokenizer text). No pretrained weights: every system starts from random init.
* **Data.** Gold: the first `--gold` sentences of CoNLL-2003 train. Unlabelled: the next
  `--unlabelled` sentences of CoNLL train, their tags dropped (the text `distill` reads).
  Reported on the first `--valid` sentences of CoNLL-2003 valid, which nothing chooses on:
  every system runs the NER recipe of `configs/cpu_tiny.cfg` at its tuned rate (1e-3, issue 19)
  for a fixed budget and is scored once at its last step (no checkpoint selection).
* **Systems.** `teacher`: the 4 x 128 pipeline trained on the gold sentences (`--teacher-epochs`);
  `distilled`: `distill` with every signal (silver NER on the unlabelled + gold text, the gold
  sentences mixed in, token vectors through a 64 -> 128 projection, MSE) for `--steps` updates;
  `gold_only_steps`: the student trained on the gold sentences alone for the same updates;
  `gold_only_time`: the same, for as many updates as fit in the distilled run's training time
  (the teacher's one pass over the text is reported apart). `--seeds` seeds per student.
* **Speed.** `nlp.pipe` words/s of the teacher and the seed-0 distilled student on the valid
  sentences, `--repeats` interleaved rounds (median, range), `--threads` torch threads; forward
  FLOPs per token (benchmarks/flops.py) at the valid sentences' piece lengths.
"""

import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional

import typer

from . import data as bdata
from ._app import CacheDir, DataDir, Output, Threads, app, defaults
from .accuracy import TUNED_LR, _train_spacy, span_prf
from .report import log, machine_info, write_json
from .results import command_line, median_range, record, round_order

# The options both commands (distill, distill-signals) share: one flag and help each.
Gold = Annotated[
    int, typer.Option("--gold", help="Gold CoNLL train sentences (teacher and students)")
]
Unlabelled = Annotated[
    int, typer.Option("--unlabelled", help="Further CoNLL train sentences, tags dropped")
]
Valid = Annotated[int, typer.Option("--valid", help="CoNLL valid sentences reported on")]
TeacherEpochs = Annotated[
    int, typer.Option("--teacher-epochs", help="Teacher epochs over the gold sentences")
]

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cpu_tiny.cfg"


def student_config(path: Path, checkpoint: Path, lr: float) -> Path:
    """configs/cpu_tiny.cfg with ner only, on `checkpoint`, at rate `lr`."""
    from spacy import util

    config = util.load_config(CONFIG, interpolate=False)
    config["nlp"]["pipeline"] = ["transformer", "ner"]
    del config["components"]["anomaly_scorer"]
    config["paths"]["base_model"] = str(checkpoint)
    config["training"]["optimizer"]["learn_rate"]["initial_rate"] = lr
    config["training"]["score_weights"] = {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0}
    path.parent.mkdir(parents=True, exist_ok=True)
    config.to_disk(path)
    return path


def _docs(nlp, sentences, gold: bool):
    from spacy.tokens import Doc
    from spacy.training import iob_to_biluo

    out = []
    for words, tags in sentences:
        doc = Doc(nlp.vocab, words=words)
        if gold:
            from spacy.training import biluo_tags_to_spans

            doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(list(tags)))
        out.append(doc)
    return out


def ner_f1(nlp, valid) -> float:
    docs = nlp.pipe(_docs(nlp, valid, gold=False), batch_size=256)
    pred = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]
    gold = [bdata.iob_spans(tags) for _, tags in valid]
    return 100.0 * span_prf(gold, pred)["f1"]


def train_teacher(checkpoint: Path, gold, epochs: int, path: Path, lr: float) -> float:
    """Train (once; cached at `path`) the teacher pipeline; its training seconds (0 if cached)."""
    import spacy
    from spacy.training import Example

    from .systems import build_pipeline

    if (path / "meta.json").exists():
        return 0.0
    spacy.util.fix_random_seed(0)
    nlp = build_pipeline("ours", checkpoint, components=("ner",))
    examples = [
        Example(Doc, ref) for Doc, ref in zip(_docs(nlp, gold, False), _docs(nlp, gold, True))
    ]
    seconds = _train_spacy(nlp, examples, epochs, 32, 0, "ner", "teacher ner", lr)
    path.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)
    return seconds


def gold_only(config: Path, gold_path: Path, steps: int, seed: int) -> Dict[str, Any]:
    """The student trained on the gold sentences alone, as `distill` trains (same batcher, optimizer, dropout)."""
    from spacy.util import fix_random_seed

    from spacy_modernbert.distill.loop import _batches, _examples, _optimizer, read_corpus
    from spacy_modernbert.distill.student import load_student

    fix_random_seed(seed)
    nlp, cfg = load_student(config)
    examples = _examples(nlp, read_corpus(nlp, gold_path))
    optimizer = _optimizer(cfg, steps)
    nlp.initialize(lambda: examples, sgd=optimizer)
    batches = _batches(cfg, examples, seed)
    drop = float(cfg["training"]["dropout"])
    t0 = time.perf_counter()
    for _ in range(steps):
        nlp.update(next(batches), sgd=optimizer, drop=drop)
        optimizer.step_schedules()
    return {"nlp": nlp, "train_seconds": time.perf_counter() - t0}


def pipe_speed(systems: Dict[str, Any], texts: List[List[str]], repeats: int) -> Dict[str, Any]:
    from spacy.tokens import Doc

    n_words = sum(len(w) for w in texts)
    times: Dict[str, List[float]] = {name: [] for name in systems}
    for nlp in systems.values():  # warm-up
        list(nlp.pipe((Doc(nlp.vocab, words=w) for w in texts[:64]), batch_size=64))
    for r in range(repeats):
        for name in round_order(list(systems), r):
            nlp = systems[name]
            docs = [Doc(nlp.vocab, words=w) for w in texts]
            t0 = time.perf_counter()
            for _ in nlp.pipe(docs, batch_size=64):
                pass
            times[name].append(n_words / (time.perf_counter() - t0))
    return {name: median_range(v) for name, v in times.items()}


def _flops(nlp, texts) -> float:
    from spacy_modernbert.distill.student import encoder_of

    from .flops import flops_per_token

    model = encoder_of(nlp)
    tok = model.tokenizer
    lengths = [len(tok(" ".join(w))["input_ids"]) for w in texts]
    return flops_per_token(model.transformer.hf_config, lengths)


def _stats(values: List[float]) -> Dict[str, Any]:
    return {"mean": statistics.mean(values), "range": [min(values), max(values)], "runs": values}


def prepare(
    cache_dir,
    data_dir,
    gold: int,
    unlabelled: int,
    valid: int,
    teacher_epochs: int,
    dev: int = 0,
    lr: Optional[float] = None,
) -> Dict[str, Any]:
    """Checkpoints, the trained teacher (cached), gold corpus, unlabelled text, valid (and dev) sentences.

    The teacher (at rate `lr`, default the tuned NER rate) depends on the gold sentences, its
    epochs and its rate only (one cache directory for every `--unlabelled`); `dev` > 0 carves a dev split from the end of CoNLL train, outside
    the gold and unlabelled sentences (refused when they would overlap).
    """
    import spacy
    from spacy.tokens import DocBin

    cache_dir = Path(cache_dir)
    sentences = bdata.read_conll(Path(data_dir) / bdata.CONLL_TRAIN)
    if dev and gold + unlabelled > len(sentences) - dev:
        raise ValueError(
            f"--gold {gold} + --unlabelled {unlabelled} would overlap the dev split (the last {dev} of {len(sentences)} CoNLL train sentences)"
        )
    gold_s = sentences[:gold]
    valid_s = bdata.read_conll(Path(data_dir) / bdata.CONLL_VALID)[:valid]
    t_ckpt = bdata.ensure_checkpoint(cache_dir / "small", "small", data_dir, log=log)
    lr = TUNED_LR["ner"]["ours"] if lr is None else lr
    work = cache_dir / f"distill-g{gold}-e{teacher_epochs}-lr{lr:g}"
    teacher_path = work / "teacher"
    log(f"teacher: 4 x 128 on {gold} gold sentences x {teacher_epochs} epochs, rate {lr:g}")
    teacher_seconds = train_teacher(t_ckpt, gold_s, teacher_epochs, teacher_path, lr)
    teacher = spacy.load(teacher_path)
    teacher_f1 = ner_f1(teacher, valid_s)
    log(f"teacher F1 {teacher_f1:.2f}")
    gold_path = work / "gold.spacy"  # written once: runs sharing the cache read it
    if not gold_path.exists():
        DocBin(docs=_docs(teacher, gold_s, gold=True)).to_disk(gold_path)
    return {
        "cache_dir": cache_dir,
        "data_dir": data_dir,
        "sentences": sentences,
        "gold": gold,
        "work": work,
        "teacher_path": teacher_path,
        "teacher": teacher,
        "teacher_f1": teacher_f1,
        "teacher_seconds": teacher_seconds,
        "lr": lr,
        "gold_path": gold_path,
        "valid_s": valid_s,
        "dev_s": sentences[len(sentences) - dev :] if dev else [],
    }


def text_file(prep: Dict[str, Any], unlabelled: int) -> Path:
    """The `unlabelled` CoNLL train sentences after the gold ones, tags dropped, one per line."""
    gold = prep["gold"]
    path = prep["work"] / f"unlabelled-{unlabelled}.txt"
    if not path.exists():
        lines = [" ".join(w) for w, _ in prep["sentences"][gold : gold + unlabelled]]
        path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def student_file(prep: Dict[str, Any], shape: str, lr: Optional[float] = None) -> Path:
    """The student config (NER recipe of configs/cpu_tiny.cfg) on a random checkpoint of `shape`,
    at rate `lr` (default: the teacher's)."""
    lr = prep["lr"] if lr is None else lr
    ckpt = bdata.ensure_checkpoint(prep["cache_dir"] / shape, shape, prep["data_dir"], log=log)
    return student_config(prep["work"] / f"student-{shape}-lr{lr:g}.cfg", ckpt, lr)


# The distilled student's setting: what `python -m benchmarks distill-dev` chooses among
# (lr None: the teacher's rate).
BASE_SETTING: Dict[str, Any] = {
    "student": "distill_student",
    "lr": None,
    "steps": 400,
    "unlabelled": 8000,
    "hidden_loss": "mse",
    "hidden_weight": 1.0,
}


def distill_seed(
    prep: Dict[str, Any], name: str, seed: int, setting: Dict[str, Any], signals: List[str]
):
    """One `distill` run of `setting` (the teacher's outputs on the same text reused); (student, row)."""
    import spacy

    from spacy_modernbert.distill.loop import TEACHER_CACHE, distill

    work = prep["work"]
    out = work / f"{name}-seed{seed}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # the teacher's outputs depend on the text and signals only (distill checks their key)
    kept = work / f"teacher-u{setting['unlabelled']}-{'+'.join(signals)}"
    cache = out / TEACHER_CACHE
    for suffix in (".spacy", ".json"):
        if kept.with_suffix(suffix).exists():
            shutil.copy(kept.with_suffix(suffix), cache.with_suffix(suffix))
    summary = distill(
        prep["teacher_path"],
        student_file(prep, setting["student"], setting.get("lr")),
        [text_file(prep, setting["unlabelled"])],
        out,
        gold=prep["gold_path"],
        steps=setting["steps"],
        seed=seed,
        signals=signals,
        hidden_loss=setting["hidden_loss"],
        hidden_weight=setting["hidden_weight"],
        eval_every=setting["steps"],
        log_every=50,
    )
    for suffix in (".spacy", ".json"):
        shutil.copy(cache.with_suffix(suffix), kept.with_suffix(suffix))
    student = spacy.load(out / "model-last")
    row = {
        "f1": ner_f1(student, prep["valid_s"]),
        "steps": setting["steps"],
        "train_seconds": summary["train_seconds"],
        "teacher_seconds": summary["teacher_seconds"],
    }
    log(f"seed {seed}: {name} {'+'.join(signals)} F1 {row['f1']:.2f} ({row['train_seconds']:.0f}s)")
    return student, row


def run_distill(
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = None,
    threads: int = 1,
    gold: int = 2000,
    unlabelled: int = 8000,
    valid: int = 1000,
    teacher_epochs: int = 3,
    steps: int = 300,
    seeds: int = 3,
    repeats: int = 3,
    choice: Optional[Path] = None,
) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    setting = dict(BASE_SETTING, steps=steps, unlabelled=unlabelled)
    dev_choice, rates = None, {"teacher": None, "gold_only": None}
    if choice is not None:  # the rates and setting `distill-dev` chose on its dev split
        chosen = json.loads(Path(choice).read_text())
        setting.update(chosen["chosen"]["setting"])
        rates = chosen["rates"]
        dev_choice = {"file": str(choice), "rates": rates, **chosen["chosen"]}
        log(f"chosen on the dev split ({choice}): rates {rates}, setting {setting}")
    steps, unlabelled = setting["steps"], setting["unlabelled"]
    prep = prepare(
        cache_dir, data_dir, gold, unlabelled, valid, teacher_epochs, lr=rates["teacher"]
    )
    teacher, teacher_f1, teacher_seconds = (
        prep[k] for k in ("teacher", "teacher_f1", "teacher_seconds")
    )
    gold_path, valid_s = prep["gold_path"], prep["valid_s"]
    config = student_file(prep, setting["student"], rates["gold_only"])
    shape = shape_name(setting["student"])

    runs: Dict[str, List[Dict[str, Any]]] = {
        "distilled": [],
        "gold_only_steps": [],
        "gold_only_time": [],
    }
    student0 = None
    for seed in range(seeds):
        log(f"seed {seed}: distilled, {steps} steps")
        student, row = distill_seed(prep, "run", seed, setting, ["hidden", "ner"])
        runs["distilled"].append(row)
        if seed == 0:
            student0 = student
        trained = gold_only(config, gold_path, steps, seed)
        runs["gold_only_steps"].append(
            {
                "f1": ner_f1(trained["nlp"], valid_s),
                "steps": steps,
                "train_seconds": trained["train_seconds"],
            }
        )
        log(
            f"seed {seed}: gold-only (equal steps) F1 {runs['gold_only_steps'][-1]['f1']:.2f} ({trained['train_seconds']:.0f}s)"
        )
        equal = max(
            steps, round(steps * row["train_seconds"] / max(trained["train_seconds"], 1e-9))
        )
        timed = gold_only(config, gold_path, equal, seed)
        runs["gold_only_time"].append(
            {
                "f1": ner_f1(timed["nlp"], valid_s),
                "steps": equal,
                "train_seconds": timed["train_seconds"],
            }
        )
        log(
            f"seed {seed}: gold-only (equal time, {equal} steps) F1 {runs['gold_only_time'][-1]['f1']:.2f}"
        )

    texts = [w for w, _ in valid_s]
    speed = pipe_speed({"teacher": teacher, "distilled": student0}, texts, repeats)
    flops = {"teacher": _flops(teacher, texts), "distilled": _flops(student0, texts)}
    stats = {name: _stats([r["f1"] for r in rs]) for name, rs in runs.items()}
    rows = [
        {
            "system": "teacher (4 x 128)",
            "NER F1 (valid)": round(teacher_f1, 2),
            "range": "-",
            "updates": teacher_epochs * -(-gold // 32),
            "train s": round(teacher_seconds, 1) if teacher_seconds else "cached",
            "words/s": round(speed["teacher"]["median"]),
            "MFLOPs/token": round(flops["teacher"] / 1e6, 3),
        }
    ]
    names = {
        "distilled": f"student ({shape}), distilled",
        "gold_only_steps": f"student ({shape}), gold only, equal updates",
        "gold_only_time": f"student ({shape}), gold only, equal training time",
    }
    for name, label in names.items():
        rs = runs[name]
        rows.append(
            {
                "system": label,
                "NER F1 (valid)": round(stats[name]["mean"], 2),
                "range": f"{stats[name]['range'][0]:.2f}-{stats[name]['range'][1]:.2f}",
                "updates": "/".join(str(r["steps"]) for r in rs),
                "train s": round(statistics.mean(r["train_seconds"] for r in rs), 1),
                "words/s": round(speed["distilled"]["median"]) if name == "distilled" else "-",
                "MFLOPs/token": round(flops["distilled"] / 1e6, 3),
            }
        )
    gain = stats["distilled"]["mean"] - stats["gold_only_time"]["mean"]
    ratio = speed["distilled"]["median"] / speed["teacher"]["median"]
    lows = [a / b for a, b in zip(speed["distilled"]["samples"], speed["teacher"]["samples"])]
    summary_rows = [
        {
            "claim": "distilled student vs gold-only student at equal training time (NER F1, CoNLL valid)",
            "figure": f"{gain:+.2f} F1",
            "range": f"distilled {stats['distilled']['range'][0]:.2f}-{stats['distilled']['range'][1]:.2f}, gold-only {stats['gold_only_time']['range'][0]:.2f}-{stats['gold_only_time']['range'][1]:.2f}",
            "baseline": f"the same {shape} student, gold sentences only",
            "split": f"CoNLL-2003 valid, first {valid} sentences",
            "caveat": f"random-init checkpoints; {gold} gold + {unlabelled} unlabelled sentences; {seeds} seeds; {_teacher_pass(runs['distilled'][0]['teacher_seconds'])}",
        },
        {
            "claim": "distilled student vs its teacher (NER F1, CoNLL valid)",
            "figure": f"{stats['distilled']['mean'] - teacher_f1:+.2f} F1",
            "range": f"distilled {stats['distilled']['range'][0]:.2f}-{stats['distilled']['range'][1]:.2f}, teacher {teacher_f1:.2f}",
            "baseline": "the 4 x 128 teacher",
            "split": f"CoNLL-2003 valid, first {valid} sentences",
            "caveat": f"random-init checkpoints; student {shape} at {flops['distilled'] / flops['teacher']:.3f} of the teacher's encoder FLOPs per token; {seeds} seeds; setting chosen on a dev split of CoNLL train",
        },
        {
            "claim": "student vs teacher nlp.pipe speed (words/s)",
            "figure": f"{ratio:.2f}x",
            "range": f"{min(lows):.2f}-{max(lows):.2f}x per round",
            "baseline": "the 4 x 128 teacher",
            "split": f"CoNLL-2003 valid, first {valid} sentences",
            "caveat": f"CPU, {threads} torch thread(s), shared machine (load average with the run); FLOPs ratio {flops['distilled'] / flops['teacher']:.3f}",
        },
    ]
    result = record(
        "distill",
        command_line("python -m benchmarks distill"),
        {
            "chooses": (
                f"the student's setting: distill-dev on its dev split ({choice})"
                if choice
                else "nothing"
            )
            + f"; recipe of configs/cpu_tiny.cfg; rates: teacher {prep['lr']:g}, distilled {setting['lr'] or prep['lr']:g}, gold-only {rates['gold_only'] or prep['lr']:g}; last step reported",
            "reports": f"CoNLL-2003 valid, first {valid} sentences",
            "checkpoint": f"random-init: teacher small (4 x 128), student {setting['student']} ({shape}), BPE 8k on CoNLL train; all systems from random init (no pretrained weights offline)",
            "seeds": seeds,
        },
        ["system", "NER F1 (valid)", "range", "updates", "train s", "words/s", "MFLOPs/token"],
        rows,
        summary_rows,
        machine=machine_info("cpu"),
        runs=runs,
        speed=speed,
        flops=flops,
        teacher_f1=teacher_f1,
        settings=dict(
            _settings(gold, unlabelled, valid, teacher_epochs, steps, threads), student=setting
        ),
        dev_choice=dev_choice,
    )
    write_json(output, result)
    log(json.dumps(result["summary"], indent=1))
    return result


def _teacher_pass(seconds: Optional[float]) -> str:
    if seconds is None:  # distill read the outputs an earlier run of the same text cached
        return "the teacher's one pass over the text (cached by an earlier run) is not in the time"
    return f"the teacher's one pass over the text ({seconds:.0f}s) is not in the time"


def shape_name(shape: str) -> str:
    """ "2 x 64" for a benchmark checkpoint shape (data.SHAPES)."""
    spec = bdata.SHAPES[shape]
    return f"{spec['num_hidden_layers']} x {spec['hidden_size']}"


def _settings(gold, unlabelled, valid, teacher_epochs, steps, threads) -> Dict[str, int]:
    return {
        "gold": gold,
        "unlabelled": unlabelled,
        "valid": valid,
        "teacher_epochs": teacher_epochs,
        "steps": steps,
        "threads": threads,
    }


_D = defaults(run_distill)


@app.command("distill")
def distill_cli(
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = None,
    threads: Threads = _D["threads"],
    gold: Gold = _D["gold"],
    unlabelled: Unlabelled = _D["unlabelled"],
    valid: Valid = _D["valid"],
    teacher_epochs: TeacherEpochs = _D["teacher_epochs"],
    steps: int = typer.Option(
        _D["steps"],
        "--steps",
        help="Updates of the distilled student (and of the equal-updates baseline)",
    ),
    seeds: int = typer.Option(_D["seeds"], "--seeds", help="Seeds per student system"),
    repeats: int = typer.Option(_D["repeats"], "--repeats", help="Interleaved speed rounds"),
    choice: Optional[Path] = typer.Option(
        None,
        "--choice",
        help="A distill-dev result (benchmarks/results/distill_dev.json): its chosen student setting (shape, steps, unlabelled, hidden loss and weight) replaces --steps/--unlabelled and the defaults",
    ),
) -> None:
    """Distilled student vs the same student on gold alone (NER F1 at equal time) and vs the teacher (speed)."""
    run_distill(
        cache_dir,
        data_dir,
        output,
        threads,
        gold,
        unlabelled,
        valid,
        teacher_epochs,
        steps,
        seeds,
        repeats,
        choice,
    )


def run_signals(
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = None,
    threads: int = 1,
    gold: int = 2000,
    unlabelled: int = 8000,
    valid: int = 1000,
    teacher_epochs: int = 3,
    steps: int = 300,
    seeds: int = 3,
    rate: Optional[float] = None,
) -> Dict[str, Any]:
    """The token-vector signal measured: `distill` with silver NER alone vs with the token vectors
    too (BASE_SETTING: weight 1), teacher and students at `rate` (default the tuned NER rate)."""
    import torch

    torch.set_num_threads(threads)
    prep = prepare(cache_dir, data_dir, gold, unlabelled, valid, teacher_epochs, lr=rate)
    variants = {"ner": ["ner"], "hidden+ner": ["hidden", "ner"]}
    runs: Dict[str, List[Dict[str, Any]]] = {name: [] for name in variants}
    for seed in range(seeds):
        for name, signals in variants.items():
            setting = dict(BASE_SETTING, steps=steps, unlabelled=unlabelled)
            runs[name].append(distill_seed(prep, f"signals-{name}", seed, setting, signals)[1])
    stats = {name: _stats([r["f1"] for r in rs]) for name, rs in runs.items()}
    rows = [
        {
            "signals": name,
            "NER F1 (valid)": round(stats[name]["mean"], 2),
            "range": f"{stats[name]['range'][0]:.2f}-{stats[name]['range'][1]:.2f}",
            "updates": steps,
            "train s": round(statistics.mean(r["train_seconds"] for r in runs[name]), 1),
        }
        for name in variants
    ]
    gain = stats["hidden+ner"]["mean"] - stats["ner"]["mean"]
    result = record(
        "distill_signals",
        command_line("python -m benchmarks distill-signals"),
        {
            "chooses": "nothing (the recipe of `python -m benchmarks distill`; last step reported)",
            "reports": f"CoNLL-2003 valid, first {valid} sentences",
            "checkpoint": "random-init: teacher small (4 x 128), student distill_student (2 x 64)",
            "seeds": seeds,
        },
        ["signals", "NER F1 (valid)", "range", "updates", "train s"],
        rows,
        [
            {
                "claim": "the token-vector signal: distilled with token vectors + silver NER vs silver NER alone",
                "figure": f"{gain:+.2f} F1",
                "range": f"with {stats['hidden+ner']['range'][0]:.2f}-{stats['hidden+ner']['range'][1]:.2f}, without {stats['ner']['range'][0]:.2f}-{stats['ner']['range'][1]:.2f}",
                "baseline": "the same distillation without the token-vector loss",
                "split": f"CoNLL-2003 valid, first {valid} sentences",
                "caveat": f"random-init checkpoints; {gold} gold + {unlabelled} unlabelled sentences; {seeds} seeds; equal updates",
            }
        ],
        machine=machine_info("cpu"),
        runs=runs,
        teacher_f1=prep["teacher_f1"],
        settings=_settings(gold, unlabelled, valid, teacher_epochs, steps, threads),
    )
    write_json(output, result)
    log(json.dumps(result["summary"], indent=1))
    return result


_S = defaults(run_signals)


@app.command("distill-signals")
def distill_signals_cli(
    cache_dir: CacheDir = _S["cache_dir"],
    data_dir: DataDir = _S["data_dir"],
    output: Output = None,
    threads: Threads = _S["threads"],
    gold: Gold = _S["gold"],
    unlabelled: Unlabelled = _S["unlabelled"],
    valid: Valid = _S["valid"],
    teacher_epochs: TeacherEpochs = _S["teacher_epochs"],
    steps: int = typer.Option(_S["steps"], "--steps", help="Updates of each distilled student"),
    seeds: int = typer.Option(_S["seeds"], "--seeds", help="Seeds per variant"),
    rate: Optional[float] = typer.Option(
        None, "--rate", help="Rate of teacher and students (default: the tuned NER rate)"
    ),
) -> None:
    """The token-vector signal measured: distill with silver NER alone vs with the token vectors too."""
    run_signals(
        cache_dir,
        data_dir,
        output,
        threads,
        gold,
        unlabelled,
        valid,
        teacher_epochs,
        steps,
        seeds,
        rate,
    )
