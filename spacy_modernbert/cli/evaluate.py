"""`python -m spacy_modernbert evaluate`: spaCy's metrics plus ROC / PR curves of anomaly scores.

Unlike `spacy evaluate --output FILE.json`, `--output` here is a directory: it receives
metrics.json (spaCy's metrics), anomaly_roc.svg, anomaly_pr.svg and anomaly_curves.json.
The pipeline runs over the corpus once: `nlp.evaluate` scores it (the same scorers as
`spacy evaluate`, so the figures agree) and the curves are drawn from the same predictions.
metrics.json also records what was evaluated (`anomaly_threshold`, `pipeline_fingerprint`),
so `model-card` can refuse figures that are not those of the pipeline it describes.
A corpus that records the text around each doc (`convert-conll --context`) is read with that
context (`ContextCorpus`, as `spacy-modernbert.ContextCorpus.v1` reads it in training), so an
encoder with `sentence_context` scores as it reads paragraphs; spaCy's own `spacy evaluate`
reads such a corpus without it. A pipeline that ignores the context is warned about, not refused.
"""

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly
import typer
from wasabi import msg

from ..anomaly import DEFAULT_LABEL
from ._util import app, check_output, load_pipeline, pipeline_location, prepare_output

DEFAULT_OUTPUT_DIR = Path("metrics")
DEFAULT_COMPONENT = "anomaly_scorer"
OUTPUT_FILES = ("metrics.json", "anomaly_roc.svg", "anomaly_pr.svg", "anomaly_curves.json")
# Files of a pipeline directory that do not change what it predicts (the card and its metadata).
NOT_FINGERPRINTED = ("README.md", "meta.json")


@app.command("evaluate")
def evaluate_cli(
    # fmt: off
    pipeline: str = typer.Argument(
        ..., help="Trained pipeline directory or installed package name"
    ),
    data_path: Path = typer.Argument(..., help="Evaluation corpus (.spacy)"),
    output: Path = typer.Option(
        DEFAULT_OUTPUT_DIR,
        "--output",
        "-o",
        help="Directory (not a file, unlike `spacy evaluate`) for metrics.json, anomaly_roc.svg, anomaly_pr.svg and anomaly_curves.json",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the files of a previous evaluate in --output"
    ),
    # fmt: on
) -> None:
    """Evaluate a pipeline: spaCy's metrics plus ROC and precision-recall curves of anomaly scores."""
    evaluate(pipeline, data_path, output, gpu_id=gpu_id, overwrite=overwrite)


def pipeline_fingerprint(pipeline: Any) -> str:
    """sha256 over the files of a pipeline that decide its predictions (not README.md, meta.json)."""
    root = pipeline_location(pipeline)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative in NOT_FINGERPRINTED:
            continue
        digest.update(relative.encode("utf8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# A DocBin is zlib-compressed msgpack; real corpora expand 3-20x. A "zip bomb" expands ~1000x.
MAX_CORPUS_EXPANSION = 200
MIN_CORPUS_LIMIT = 256 * 1024 * 1024


def _check_expansion(path: Path) -> None:
    """Refuse a .spacy file that would decompress to far more than a corpus of its size."""
    import zlib

    data = Path(path).read_bytes()
    limit = max(MIN_CORPUS_LIMIT, MAX_CORPUS_EXPANSION * len(data))
    inflate = zlib.decompressobj()
    total = 0
    try:
        chunk = inflate.decompress(data, 1 << 24)
        while chunk:
            total += len(chunk)
            if total > limit:
                msg.fail(
                    f"{path} expands to more than {limit:,} bytes ({MAX_CORPUS_EXPANSION}x its size): "
                    "not a corpus (a compression bomb?)",
                    exits=1,
                )
            chunk = inflate.decompress(inflate.unconsumed_tail, 1 << 24)
    except zlib.error as err:
        msg.fail(f"{path} is not a readable .spacy corpus (DocBin): {err}", exits=1)


def check_corpus(data_path: Path) -> None:
    """Refuse, before anything is written, a corpus that is not readable `.spacy` DocBin data."""
    from spacy.tokens import DocBin
    from spacy.training.corpus import walk_corpus

    data_path = Path(data_path)
    if not data_path.exists():
        msg.fail(f"Evaluation data not found: {data_path}", exits=1)
    if data_path.is_file() and data_path.suffix != ".spacy":
        msg.fail(
            f"Evaluation data {data_path} is not a .spacy corpus. Convert it first, e.g. "
            "`python -m spacy_modernbert convert-jsonl` or `python -m spacy convert`.",
            exits=1,
        )
    files = walk_corpus(data_path, ".spacy")
    if not files:
        msg.fail(f"No .spacy files in {data_path}", exits=1)
    for path in files:
        _check_expansion(path)
        try:
            DocBin().from_disk(path)
        except Exception as err:  # msgpack/zlib/DocBin raise assorted errors on garbage
            msg.fail(
                f"{path} is not a readable .spacy corpus (DocBin): {type(err).__name__}: {err}",
                exits=1,
            )


def evaluate(
    pipeline: Any,
    data_path: Path,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
    gpu_id: int = -1,
    component: str = DEFAULT_COMPONENT,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Evaluate `pipeline` on `data_path`; write metrics.json, anomaly_roc.svg, anomaly_pr.svg.

    pipeline: a pipeline directory or an installed package name.
    data_path (Path): a `.spacy` corpus.
    output_dir (Path): the directory for metrics.json, the curve images and anomaly_curves.json.
    gpu_id (int): GPU id, or -1 for CPU.
    component (str): the name of the anomaly_scorer component.
    overwrite (bool): replace a previous evaluate's files in `output_dir`.
    RETURNS (Dict): spaCy's metrics, plus anomaly_threshold and pipeline_fingerprint.
    """
    from spacy.cli.evaluate import handle_scores_per_type
    from spacy.scorer import Scorer
    from spacy.util import fix_random_seed

    from ..data.context_corpus import ContextCorpus

    check_corpus(data_path)  # before anything is loaded or written
    pipeline_location(pipeline)  # a missing pipeline is named before any output rule
    check_output(output_dir, overwrite, own_files=OUTPUT_FILES)
    fix_random_seed()
    nlp = load_pipeline(pipeline, gpu_id=gpu_id)
    output_dir = prepare_output(output_dir, overwrite, own_files=OUTPUT_FILES)
    # spacy.Corpus.v1 would drop the context a corpus records (convert-conll --context)
    examples = list(ContextCorpus(data_path, refuse_unread=False)(nlp))
    _say_context(nlp, examples)
    kept: Dict[str, List] = {}

    class KeepPredictions(Scorer):
        """spaCy's scorer, keeping the predicted examples for the curves (the pipeline runs once)."""

        def score(self, examples, **kwargs):  # noqa: D102
            kept["examples"] = list(examples)
            return super().score(kept["examples"], **kwargs)

    msg.info(f"Evaluating {pipeline} on {len(examples)} docs")
    scores = nlp.evaluate(examples, scorer=KeepPredictions(nlp=nlp))
    pipe = nlp.get_pipe(component) if component in nlp.pipe_names else None
    if pipe is not None:
        scores["anomaly_threshold"] = float(pipe.cfg.get("threshold", 0.5))
    if any(type(proc).__name__ == "TextCategorizer" for _, proc in nlp.pipeline):
        from ..intent_metrics import intent_scores  # in-scope accuracy beside out-of-scope

        label = pipe.cfg.get("label", DEFAULT_LABEL) if pipe is not None else DEFAULT_LABEL
        scores.update(intent_scores(kept["examples"], label))
    scores["pipeline_fingerprint"] = pipeline_fingerprint(pipeline)
    _print_table(scores)
    handle_scores_per_type(scores, silent=False)
    srsly.write_json(output_dir / "metrics.json", scores)
    if pipe is None:
        msg.warn(f"No '{component}' in the pipeline: no anomaly curves written")
        return scores
    _write_curves(output_dir, kept["examples"], pipe.cfg.get("label", DEFAULT_LABEL), scores)
    msg.good(f"Wrote metrics and anomaly curves to {output_dir}")
    return scores


def _say_context(nlp: Any, examples: List[Any]) -> None:
    """Whether the corpus's recorded context (convert-conll --context) is read or ignored."""
    from ..data.context_corpus import reads_context, unread_context_setting
    from ..encoder.context import has_context

    n = sum(has_context(eg.predicted) for eg in examples)
    if not n:
        return
    if reads_context(nlp):
        msg.info(f"{n} docs carry recorded context: each is read with the text around it")
    else:
        msg.warn(
            f"{n} docs carry recorded context (convert-conll --context), but no encoder reads it "
            f"({unread_context_setting(nlp)}): they are scored as read alone. A pipeline with "
            "sentence_windows = true and sentence_context > 0 reads it."
        )


def _print_table(scores: Dict[str, Any]) -> None:
    rows = [
        ("NER P", "ents_p"),
        ("NER R", "ents_r"),
        ("NER F", "ents_f"),
        ("INTENT ACC", "intent_acc"),
        ("ANOMALY AUC", "anomaly_auc"),
        ("ANOMALY AP", "anomaly_ap"),
        ("ANOMALY P", "anomaly_p"),
        ("ANOMALY R", "anomaly_r"),
        ("ANOMALY F", "anomaly_f"),
        ("ANOMALY FPR", "anomaly_fpr"),
    ]
    table = {
        name: (f"{100 * scores[key]:.2f}" if isinstance(scores[key], (int, float)) else "-")
        for name, key in rows
        if key in scores
    }
    if "anomaly_threshold" in scores:
        table["THRESHOLD"] = f"{scores['anomaly_threshold']:.6f}"
    if isinstance(scores.get("speed"), (int, float)):
        table["SPEED"] = f"{scores['speed']:.0f}"
    msg.table(table, title="Results")


def _write_curves(output_dir: Path, examples: List, label: str, scores: Dict[str, Any]) -> None:
    from ..anomaly.curves import average_precision, precision_recall_curve, roc_curve
    from ..anomaly.plots import pr_step_points, write_curve_svg
    from ..anomaly.scoring import collect_gold_and_scores

    gold, predicted, _ = collect_gold_and_scores(examples, label)
    if gold.size == 0 or len(set(gold.tolist())) < 2:
        msg.warn(
            "The evaluation data needs both anomalous and normal labelled docs for curves"
            + (
                f" (false-positive rate at the threshold: {100 * scores['anomaly_fpr']:.2f}%)"
                if scores.get("anomaly_fpr") is not None
                else ""
            )
        )
        return
    fpr, tpr, _ = roc_curve(gold, predicted)
    precision, recall, _ = precision_recall_curve(gold, predicted)
    auc: Optional[float] = scores.get("anomaly_auc")
    write_curve_svg(
        output_dir / "anomaly_roc.svg",
        fpr,
        tpr,
        f"ROC (AUC {auc:.3f})" if auc is not None else "ROC",
        "false positive rate",
        "true positive rate",
        diagonal=True,
    )
    ap = scores.get("anomaly_ap")
    ap = average_precision(gold, predicted) if ap is None else ap
    prevalence = float(gold.mean())
    recall_xs, precision_ys = pr_step_points(precision, recall)
    write_curve_svg(
        output_dir / "anomaly_pr.svg",
        recall_xs,
        precision_ys,
        f"Precision-recall (AP {ap:.3f})",
        "recall",
        "precision",
        baseline=(prevalence, f"prevalence {prevalence:.3f}"),
    )
    curves = {
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        "pr": {"precision": precision.tolist(), "recall": recall.tolist()},
    }
    srsly.write_json(output_dir / "anomaly_curves.json", curves)
