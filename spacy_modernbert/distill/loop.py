"""The distillation run: teacher outputs once, then `nlp.update` of the student on them.

Run directory (`--output`):
* `model-last/`: the student, an ordinary pipeline (the training-only `distill_hidden`
  component is never part of it), its meta recording the teacher and the run (`meta["distillation"]`);
* `model-best/`: the student at its best `--dev` score (with `--dev` only);
* `teacher.spacy`: the teacher's outputs for every text (a DocBin with user data), read back
  on `--resume` instead of running the teacher again;
* `state/`: the student at the last save, the projection of `distill_hidden`
  (`state/distill_hidden.bin`) and `state/distill_state.json` (step, settings, data
  fingerprint): what `--resume` continues from. The optimizer's moments are not saved: a resumed run continues the learning-rate
  schedule at its step with fresh Adam moments.

The student learns from the texts through its own components' losses on the teacher's silver
and soft annotations (teacher.py) and, with the `hidden` signal, from `distill_hidden`'s
distance to the teacher's token vectors (hidden.py). Each update is spaCy's `nlp.update` on the
packed encoder forward (micro-batches of length-sorted windows, no padding).
"""

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from wasabi import msg

from . import DistillSettingsError
from .hidden import make_distill_hidden
from .student import encoder_of, init_from_teacher, load_student
from .teacher import SIGNALS, available_signals, components_by_factory, teach, teacher_width

STATE_FILE = "distill_state.json"
TEACHER_CACHE = "teacher.spacy"
STUDENT_FACTORIES = ("ner", "anomaly_scorer", "textcat", "textcat_multilabel")
SIGNAL_OF = {
    "ner": "ner",
    "anomaly_scorer": "anomaly",
    "textcat": "textcat",
    "textcat_multilabel": "textcat",
}


def _fingerprint(texts: Sequence[str], extra: Any) -> str:
    digest = hashlib.sha1(json.dumps(extra, sort_keys=True, default=str).encode())
    for text in texts:
        digest.update(text.encode("utf8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def choose_signals(teacher, student, signals: Optional[Sequence[str]], has_gold: bool) -> List[str]:
    """The signals to use: those asked for (default: every one the teacher gives and the student
    can learn); an error naming the signal when it cannot be used."""
    offered = available_signals(teacher)
    student_factories = components_by_factory(student)
    learnable = {"hidden"} | {SIGNAL_OF[f] for f in student_factories if f in SIGNAL_OF}
    if signals is None:
        chosen = [s for s in SIGNALS if s in offered and s in learnable]
    else:
        chosen = list(dict.fromkeys(signals))
        for signal in chosen:
            if signal not in SIGNALS:
                raise DistillSettingsError(
                    f"Unknown signal {signal!r}: choose from {', '.join(SIGNALS)}."
                )
            if signal not in offered:
                raise DistillSettingsError(
                    f"The teacher gives no {signal!r} signal (it offers {', '.join(offered) or 'none'})."
                )
            if signal not in learnable:
                raise DistillSettingsError(
                    f"The student has no component that learns the {signal!r} signal."
                )
    taught = set(chosen) | ({"ner", "anomaly", "textcat"} if has_gold else set())
    for factory, name in student_factories.items():
        if factory in SIGNAL_OF and SIGNAL_OF[factory] not in taught:
            raise DistillSettingsError(
                f"The student's component '{name}' ({factory}) would learn nothing: the teacher "
                f"gives no {SIGNAL_OF[factory]!r} signal here and no --gold data was given. "
                "Remove it from the student config, or pass --gold."
            )
    if not chosen:
        raise DistillSettingsError("No distillation signal is left to learn from.")
    return chosen


def _same_tokens(vocab, ref):
    """A predicted doc with `ref`'s tokens and the context `ref` records (convert-conll
    --context), which a student with `sentence_context` reads as the teacher does."""
    from spacy.tokens import Doc

    from ..encoder.context import copy_context

    doc = Doc(vocab, words=[t.text for t in ref], spaces=[bool(t.whitespace_) for t in ref])
    return copy_context(ref, doc)


def _examples(nlp, refs) -> List[Any]:
    from spacy.training import Example

    return [Example(_same_tokens(nlp.vocab, ref), ref) for ref in refs]


def read_corpus(nlp, path: Path) -> List[Any]:
    """The docs of a .spacy corpus (--gold, --dev) in `nlp`'s vocab."""
    from spacy.tokens import DocBin

    path = Path(path)
    if not path.is_file():
        raise DistillSettingsError(
            f"Corpus not found: {path} (a .spacy DocBin, as `convert` writes)"
        )
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def _optimizer(config, steps: int):
    """The student config's optimizer, its learning-rate schedule stretched to `steps`."""
    from spacy.util import registry

    optimizer_cfg = dict(config["training"]["optimizer"])
    rate = optimizer_cfg.get("learn_rate")
    if isinstance(rate, dict) and "total_steps" in rate:
        rate = dict(rate, total_steps=steps)
        if "warmup_steps" in rate:
            rate["warmup_steps"] = max(1, round(0.1 * steps))
        optimizer_cfg["learn_rate"] = rate
    return registry.resolve({"o": optimizer_cfg})["o"]


def _batches(config, examples: List[Any], seed: int):
    """Endless batches: the config's batcher over the examples, reshuffled each epoch."""
    from spacy.util import registry

    batcher = registry.resolve({"b": config["training"]["batcher"]})["b"]
    rng = random.Random(seed)
    while True:
        order = list(examples)
        rng.shuffle(order)
        yield from batcher(order)


def _weighted_score(scores: Dict[str, Any], weights: Dict[str, Any]) -> float:
    return sum(float(w) * float(scores.get(k) or 0.0) for k, w in weights.items() if w)


def _teacher_docs(
    teacher, student, texts, gold_docs, signals, cache: Path, key: str, batch_size: int
):
    """The reference docs (silver, then gold), from the cache when it was made for `key`."""
    from spacy.tokens import DocBin

    marker = cache.with_suffix(".json")
    if cache.is_file() and marker.is_file() and json.loads(marker.read_text()).get("key") == key:
        msg.info(f"Teacher outputs read from {cache}")
        return list(DocBin().from_disk(cache).get_docs(student.vocab)), None
    t0 = time.perf_counter()
    silver = teach(teacher, (student.make_doc(t) for t in texts), signals, batch_size=batch_size)
    refs = list(silver)
    refs += list(
        teach(
            teacher,
            gold_docs,
            [s for s in signals if s == "hidden"],
            gold=True,
            batch_size=batch_size,
        )
    )
    seconds = time.perf_counter() - t0
    msg.good(
        f"Teacher ran on {len(refs)} docs in {seconds:.1f}s ({len(refs) / max(seconds, 1e-9):.1f} docs/s)"
    )
    DocBin(store_user_data=True, docs=refs).to_disk(cache)
    marker.write_text(json.dumps({"key": key, "docs": len(refs), "silver": len(texts)}))
    return refs, seconds


def distill(
    teacher_path: Union[str, Path],
    student_config: Path,
    texts: Sequence[Union[str, Path]],
    output: Path,
    *,
    gold: Optional[Path] = None,
    dev: Optional[Path] = None,
    steps: int = 1000,
    signals: Optional[Sequence[str]] = None,
    hidden_loss: str = "mse",
    hidden_weight: float = 1.0,
    init: str = "auto",
    dropout: Optional[float] = None,
    seed: int = 0,
    eval_every: int = 200,
    log_every: int = 20,
    teacher_batch_size: int = 64,
    resume: bool = False,
    overrides: Optional[Dict[str, Any]] = None,
    load_teacher: Optional[Callable[[Any], Any]] = None,
) -> Dict[str, Any]:
    """Distill the teacher pipeline into the student config's pipeline; see the module docstring.

    `load_teacher` loads `teacher_path` (default `spacy.load`; the CLI passes its one pipeline
    loader, which takes a directory or an installed package and fails with one line).

    RETURNS: the run's summary (steps, signals, losses, dev scores, throughput, paths).
    """
    import spacy
    from spacy.util import fix_random_seed

    from ..pretrain.data import read_texts

    for name, value, low in (
        ("--steps", steps, 1),
        ("--eval-every", eval_every, 1),
        ("--log-every", log_every, 1),
    ):
        if value < low:
            raise DistillSettingsError(f"{name} must be at least {low}; got {value}.")
    output = Path(output)
    state_dir = output / "state"
    state_file = state_dir / STATE_FILE
    state = json.loads(state_file.read_text()) if resume and state_file.is_file() else None
    if resume and state is None:
        raise DistillSettingsError(
            f"--resume: {output} holds no distillation run ({state_dir / STATE_FILE})."
        )
    unlabelled = read_texts(texts) if texts else []
    fix_random_seed(seed)
    teacher = (load_teacher or spacy.load)(teacher_path)
    student, config = load_student(student_config, overrides)
    gold_docs = read_corpus(student, gold) if gold else []
    dev_docs = read_corpus(student, dev) if dev else []
    if not unlabelled and not gold_docs:
        raise DistillSettingsError("No text to learn from: give TEXT files (or --gold).")
    chosen = choose_signals(teacher, student, signals, bool(gold_docs))
    settings = {
        "teacher": str(teacher_path),
        "signals": chosen,
        "hidden_loss": hidden_loss,
        "hidden_weight": hidden_weight,
        "steps": steps,
        "seed": seed,
        "init": init,
    }
    key = _fingerprint(
        unlabelled + [d.text for d in gold_docs], {k: settings[k] for k in ("teacher", "signals")}
    )
    if state is not None:
        changed = [k for k in settings if state["settings"].get(k) != settings[k]]
        if changed or state["key"] != key:
            what = ", ".join(changed) if changed else "the text"
            raise DistillSettingsError(
                f"--resume: {output} was run with other settings or data ({what}); resume with the same ones, or start a new run."
            )
    output.mkdir(parents=True, exist_ok=True)
    refs, teacher_seconds = _teacher_docs(
        teacher,
        student,
        unlabelled,
        gold_docs,
        chosen,
        output / TEACHER_CACHE,
        key,
        teacher_batch_size,
    )
    examples = _examples(student, refs)
    dev_examples = _examples(student, dev_docs)
    optimizer = _optimizer(config, steps)
    if "ner" in chosen:  # every label of the teacher, even one its silver docs never show
        t_ner, s_ner = (components_by_factory(n)["ner"] for n in (teacher, student))
        for label in teacher.get_pipe(t_ner).labels:
            student.get_pipe(s_ner).add_label(label)
    student.initialize(lambda: examples, sgd=optimizer)
    layers = None
    start = 0
    if state is not None:
        student = spacy.load(state_dir)  # weights and labels of the last save
        start = int(state["step"])
        layers = state.get("init_from")
        msg.info(f"Resuming from step {start} of {output}")
    else:
        layers = init_from_teacher(student, teacher, init)
        msg.info(
            f"Student encoder initialized from teacher layers {layers['teacher_layers']}"
            if layers
            else "Student encoder keeps the weights of its config"
        )
    trf = student.get_pipe(components_by_factory(student)["transformer"])
    hidden = None
    if "hidden" in chosen:
        hidden = make_distill_hidden(
            student.vocab,
            trf,
            teacher_width(teacher),
            int(encoder_of(student).transformer.config.hidden_size),
            loss=hidden_loss,
            weight=hidden_weight,
        )
        if state is not None and (state_dir / "distill_hidden.bin").is_file():
            hidden.model.from_bytes((state_dir / "distill_hidden.bin").read_bytes())
    for _ in range(start):  # the schedule continues where the run stopped
        optimizer.step_schedules()
    drop = float(config["training"].get("dropout", 0.0) if dropout is None else dropout)
    weights = dict(config["training"].get("score_weights") or {})
    best = state.get("best") if state else None
    history: List[Dict[str, Any]] = list(state.get("history", [])) if state else []
    msg.info(
        f"Distilling {teacher_path} -> {student_config}: {len(refs) - len(gold_docs)} silver + "
        f"{len(gold_docs)} gold docs, signals {', '.join(chosen)}, {steps} steps"
    )

    def meta() -> Dict[str, Any]:
        t_meta = teacher.meta
        return {
            "distillation": {
                "teacher": f"{t_meta.get('lang', 'en')}_{t_meta.get('name', 'pipeline')} {t_meta.get('version', '')}".strip(),
                "teacher_path": str(teacher_path),
                "teacher_encoder": _shape(encoder_of(teacher)),
                "student_encoder": _shape(encoder_of(student)),
                "signals": chosen,
                "hidden_loss": hidden_loss if hidden else None,
                "silver_docs": len(refs) - len(gold_docs),
                "gold_docs": len(gold_docs),
                "steps": steps,
                "init_from_teacher_layers": (layers or {}).get("teacher_layers"),
            }
        }

    def save(step: int, scores: Optional[Dict[str, Any]]) -> None:
        nonlocal best
        student.to_disk(state_dir)
        if hidden is not None:
            (state_dir / "distill_hidden.bin").write_bytes(hidden.model.to_bytes())
        if scores is not None:
            score = _weighted_score(scores, weights)
            history.append({"step": step, "score": round(score, 4)})
            if best is None or score > best:
                best = score
                student.meta.update(meta())
                student.meta["performance"] = scores
                student.to_disk(output / "model-best")
        (state_dir / STATE_FILE).write_text(
            json.dumps(
                {
                    "step": step,
                    "settings": settings,
                    "key": key,
                    "best": best,
                    "history": history,
                    "init_from": layers,
                },
                indent=1,
            )
        )

    batches = _batches(config, examples, seed)
    for _ in range(start):
        next(batches)
    t0 = time.perf_counter()
    docs_seen, losses = 0, {}
    for step in range(start, steps):
        batch = next(batches)
        student.update(batch, sgd=optimizer, drop=drop, losses=losses)
        if hidden is not None:
            hidden.update(batch, drop=drop, losses=losses)
            hidden.finish_update(optimizer)
        optimizer.step_schedules()
        docs_seen += len(batch)
        done = step + 1
        if done % log_every == 0 or done == steps:
            rate = docs_seen / max(time.perf_counter() - t0, 1e-9)
            shown = "  ".join(f"{k} {v / log_every:.3f}" for k, v in sorted(losses.items()))
            msg.text(f"step {done}/{steps}  {shown}  {rate:.1f} docs/s", show=True)
            losses = {}
        if done % eval_every == 0 or done == steps:
            scores = student.evaluate(dev_examples) if dev_examples else None
            if scores is not None:
                msg.text(
                    f"step {done}: dev score {_weighted_score(scores, weights):.4f}", show=True
                )
            save(done, scores)
    seconds = time.perf_counter() - t0
    student.meta.update(meta())
    if history:
        student.meta["performance"] = student.evaluate(dev_examples)
    student.to_disk(output / "model-last")
    msg.good(
        f"Saved the student to {output / 'model-last'}"
        + (f" (best dev score {best:.4f} in model-best)" if best is not None else "")
    )
    return {
        "output": str(output),
        "steps": steps,
        "signals": chosen,
        "docs_per_s": docs_seen / max(seconds, 1e-9),
        "train_seconds": seconds,
        "teacher_seconds": teacher_seconds,
        "best_dev_score": best,
        "history": history,
        "init_from_teacher_layers": (layers or {}).get("teacher_layers"),
    }


def _shape(model) -> Dict[str, int]:
    cfg = model.transformer.config
    return {"layers": int(cfg.num_hidden_layers), "hidden_size": int(cfg.hidden_size)}
