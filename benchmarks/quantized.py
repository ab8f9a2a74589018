"""`python -m benchmarks quantized-accuracy`: the accuracy cost of `quantize` on trained pipelines.

Trains ours exactly as `python -m benchmarks accuracy` does (same small random checkpoint,
data, budget and seed: NER on CoNLL-2003, anomaly_scorer on SMS spam), saves each trained
pipeline once, then evaluates the *same saved pipeline* loaded in fp32 and with
`components.transformer.model.quantize` = "int8" (and "bf16" where the CPU has native bf16
matmul) -- the config override a user applies to a trained pipeline, no retraining. Reports
CoNLL valid NER F1 and SMS held-out ROC AUC / AP per precision, and the differences to fp32.

No pretrained weights exist offline: every figure starts from the same random checkpoint.
"""

import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import typer

from . import data as bdata
from ._app import CacheDir, Checkpoint, DataDir, Output, Seed, Threads, app, defaults
from .report import fmt, log, machine_info, table, write_json

KEY = "components.transformer.model.quantize"


def _precisions(modes: Sequence[str]) -> List[Optional[str]]:
    from spacy_modernbert.encoder.quantize import native_bf16

    keep = [m for m in modes if m != "bf16" or native_bf16()]
    if len(keep) < len(modes):
        log("skipping bf16: this CPU has no native bf16 matmul")
    return [None] + keep


def _evaluate(saved: Path, precisions: List[Optional[str]], score) -> Dict[str, Dict[str, Any]]:
    """Load the saved pipeline once per precision and score it with `score(nlp)`."""
    import spacy

    out = {}
    for mode in precisions:
        nlp = spacy.load(saved, config={KEY: mode})
        if nlp.get_pipe("transformer").model.transformer.quantized != mode:
            raise RuntimeError(f"the pipeline did not load with quantize = {mode!r}")
        t0 = time.perf_counter()
        out[mode or "fp32"] = {**score(nlp), "eval_seconds": time.perf_counter() - t0}
        log(
            f"  {mode or 'fp32'}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in out[mode or "fp32"].items())
        )
    return out


def run_quantized_accuracy(
    checkpoint: Optional[Path] = None,
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/quantized_accuracy.json"),
    threads: int = 2,
    ner_train: int = 4000,
    ner_valid: Optional[int] = None,
    sms_limit: Optional[int] = None,
    test_frac: float = 0.3,
    epochs: int = 3,
    batch_size: int = 32,
    seed: int = 0,
    modes: Sequence[str] = ("int8", "bf16"),
    tasks: Sequence[str] = ("ner", "anomaly"),
) -> Dict[str, Any]:
    import random

    import spacy
    import torch
    from spacy.tokens import Doc
    from spacy.training import Example, iob_to_biluo

    from spacy_modernbert.anomaly.curves import average_precision, roc_auc
    from spacy_modernbert.encoder.quantize import capability

    from .accuracy import LABEL, TUNED_LR, _train_spacy, span_prf
    from .systems import build_pipeline

    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    if checkpoint is None:
        checkpoint = bdata.ensure_checkpoint(
            Path(cache_dir) / "modernbert-small-random-conll", "small", data_dir, log=log
        )
    precisions = _precisions(modes)
    result: Dict[str, Any] = {
        "benchmark": "quantized_accuracy",
        "machine": machine_info("cpu"),
        "cpu_kernels": capability(),
        "checkpoint": str(checkpoint),
        "settings": {
            "threads": threads,
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "weights": "random init (no pretrained weights offline); one trained pipeline per task, "
            "evaluated in each precision",
        },
    }
    log(f"CPU kernels: {result['cpu_kernels']}")
    with tempfile.TemporaryDirectory() as tmp:
        if "ner" in tasks:
            train = list(bdata.read_conll(data_dir / bdata.CONLL_TRAIN))
            random.Random(seed).shuffle(train)
            train = train[:ner_train]
            valid = bdata.read_conll(data_dir / bdata.CONLL_VALID, limit=ner_valid)
            log(f"NER: training ours (fp32) on {len(train)} sentences, {epochs} epochs")
            spacy.util.fix_random_seed(seed)
            nlp = build_pipeline("ours", Path(checkpoint), components=("ner",))
            examples = [
                Example.from_dict(
                    Doc(nlp.vocab, words=w), {"words": w, "entities": iob_to_biluo(list(t))}
                )
                for w, t in train
            ]
            _train_spacy(
                nlp, examples, epochs, batch_size, seed, "ner", "ner", TUNED_LR["ner"]["ours"]
            )
            nlp.to_disk(Path(tmp) / "ner")
            gold = [bdata.iob_spans(tags) for _, tags in valid]

            def ner_score(nlp) -> Dict[str, float]:
                docs = nlp.pipe((Doc(nlp.vocab, words=w) for w, _ in valid), batch_size=256)
                return span_prf(gold, [[(e.start, e.end, e.label_) for e in d.ents] for d in docs])

            log(f"NER: evaluating the saved pipeline on {len(valid)} validation sentences")
            systems = _evaluate(Path(tmp) / "ner", precisions, ner_score)
            result["ner"] = {
                "n_train": len(train),
                "n_valid": len(valid),
                "precisions": systems,
                "f1_difference_points": {
                    k: 100 * (v["f1"] - systems["fp32"]["f1"]) for k, v in systems.items()
                },
            }
        if "anomaly" in tasks:
            rows = bdata.read_sms(data_dir / bdata.SMS, limit=sms_limit)
            train, test = bdata.stratified_split(rows, test_frac, seed)
            log(f"anomaly: training ours (fp32) on {len(train)} SMS, {epochs} epochs")
            spacy.util.fix_random_seed(seed)
            nlp = build_pipeline("ours", Path(checkpoint), components=("anomaly_scorer",))
            examples = [
                Example.from_dict(nlp.make_doc(text), {"cats": {LABEL: float(y)}})
                for y, text in train
            ]
            _train_spacy(
                nlp,
                examples,
                epochs,
                batch_size,
                seed,
                "anomaly_scorer",
                "anomaly",
                TUNED_LR["anomaly"]["ours"],
            )
            nlp.to_disk(Path(tmp) / "anomaly")
            labels = [y for y, _ in test]

            def anomaly_score(nlp) -> Dict[str, float]:
                scores = [d._.anomaly_score for d in nlp.pipe((t for _, t in test), batch_size=256)]
                return {
                    "roc_auc": roc_auc(labels, scores),
                    "average_precision": average_precision(labels, scores),
                }

            log(f"anomaly: evaluating the saved pipeline on {len(test)} held-out messages")
            systems = _evaluate(Path(tmp) / "anomaly", precisions, anomaly_score)
            result["anomaly"] = {
                "n_train": len(train),
                "n_test": len(test),
                "precisions": systems,
                "auc_difference": {
                    k: v["roc_auc"] - systems["fp32"]["roc_auc"] for k, v in systems.items()
                },
            }
    result["total_seconds"] = time.perf_counter() - t_start
    for t in quantized_tables(result):
        print("\n" + t)
    print()
    write_json(output, result)
    return result


def quantized_tables(result: Dict[str, Any]) -> List[str]:
    out = []
    if result.get("ner"):
        ner = result["ner"]
        rows = [
            [
                k,
                fmt(100 * m["f1"], 2),
                fmt(ner["f1_difference_points"][k], 2),
                fmt(m["eval_seconds"], 1),
            ]
            for k, m in ner["precisions"].items()
        ]
        out.append(
            table(
                [
                    f"NER, CoNLL-2003 valid ({result['cpu_kernels']})",
                    "F1",
                    "vs fp32 (points)",
                    "eval s",
                ],
                rows,
            )
        )
    if result.get("anomaly"):
        an = result["anomaly"]
        rows = [
            [
                k,
                fmt(m["roc_auc"], 4),
                fmt(an["auc_difference"][k], 4),
                fmt(m["average_precision"], 4),
                fmt(m["eval_seconds"], 1),
            ]
            for k, m in an["precisions"].items()
        ]
        out.append(
            table(["anomaly, SMS spam held-out", "ROC AUC", "vs fp32", "AP", "eval s"], rows)
        )
    return out


_D = defaults(run_quantized_accuracy)


@app.command("quantized-accuracy")
def quantized_accuracy_cli(
    # fmt: off
    checkpoint: Checkpoint = _D["checkpoint"],
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = _D["output"],
    threads: Threads = _D["threads"],
    ner_train: int = typer.Option(
        _D["ner_train"], "--ner-train", help="CoNLL-2003 train sentences used"
    ),
    ner_valid: Optional[int] = typer.Option(
        _D["ner_valid"], "--ner-valid", help="Validation sentences (default: all)"
    ),
    sms_limit: Optional[int] = typer.Option(
        _D["sms_limit"], "--sms-limit", help="SMS messages read (default: all)"
    ),
    epochs: int = typer.Option(_D["epochs"], "--epochs", help="Training epochs"),
    seed: Seed = _D["seed"],
    # fmt: on
) -> None:
    """NER F1 and SMS ROC AUC of one trained pipeline each, evaluated in fp32, int8 and (native only) bf16."""
    run_quantized_accuracy(
        checkpoint=checkpoint,
        cache_dir=cache_dir,
        data_dir=data_dir,
        output=output,
        threads=threads,
        ner_train=ner_train,
        ner_valid=ner_valid,
        sms_limit=sms_limit,
        epochs=epochs,
        seed=seed,
    )
