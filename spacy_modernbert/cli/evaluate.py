"""`python -m spacy_modernbert evaluate`: spaCy's metrics plus ROC / PR curves of anomaly scores.

Unlike `spacy evaluate --output FILE.json`, `--output` here is a directory: it receives
metrics.json (spaCy's metrics), anomaly_roc.svg, anomaly_pr.svg and anomaly_curves.json.
"""
from pathlib import Path
from typing import Dict, List, Tuple

import srsly
import typer
from wasabi import msg

from ._util import app

DEFAULT_OUTPUT_DIR = Path("metrics")
DEFAULT_COMPONENT = "anomaly_scorer"


@app.command("evaluate")
def evaluate_cli(
    # fmt: off
    pipeline: Path = typer.Argument(..., help="Trained pipeline directory or package name"),
    data_path: Path = typer.Argument(..., help="Evaluation corpus (.spacy)"),
    output: Path = typer.Option(DEFAULT_OUTPUT_DIR, "--output", "-o", help="Directory (not a file, unlike `spacy evaluate`) for metrics.json, anomaly_roc.svg, anomaly_pr.svg and anomaly_curves.json"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for CPU"),
    # fmt: on
) -> None:
    """Evaluate a pipeline: spaCy's metrics plus ROC and precision-recall curves of anomaly scores."""
    evaluate(pipeline, data_path, output, gpu_id=gpu_id)


def collect_anomaly_scores(nlp, docs_path: Path, component: str = DEFAULT_COMPONENT) -> Tuple[List[float], List[float]]:
    """Run the pipeline over a DocBin corpus; (gold labels, predicted scores) of labelled docs."""
    from spacy.tokens import DocBin

    label = nlp.get_pipe(component).cfg.get("label", "ANOMALY")
    refs = list(DocBin().from_disk(docs_path).get_docs(nlp.vocab))
    gold, scores = [], []
    for ref, doc in zip(refs, nlp.pipe(ref.text for ref in refs)):
        if label in ref.cats:
            gold.append(float(ref.cats[label]))
            scores.append(float(doc._.anomaly_score))
    return gold, scores


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
            msg.fail(f"{path} is not a readable .spacy corpus (DocBin): {type(err).__name__}: {err}", exits=1)


def evaluate(pipeline: Path, data_path: Path, output_dir: Path = DEFAULT_OUTPUT_DIR, gpu_id: int = -1, component: str = DEFAULT_COMPONENT) -> Dict:
    """Evaluate `pipeline` on `data_path`; write metrics.json, anomaly_roc.svg, anomaly_pr.svg.

    pipeline (Path): a pipeline directory or an installed package name.
    data_path (Path): a `.spacy` corpus.
    output_dir (Path): the directory for metrics.json, the curve images and anomaly_curves.json.
    gpu_id (int): GPU id, or -1 for CPU.
    component (str): the name of the anomaly_scorer component.
    RETURNS (Dict): spaCy's metrics.
    """
    import spacy
    from spacy.cli.evaluate import evaluate as spacy_evaluate

    from ..anomaly.curves import average_precision, precision_recall_curve, roc_curve
    from .plots import pr_step_points, write_curve_svg

    output_dir = Path(output_dir)
    check_corpus(data_path)  # before anything is written
    if not (Path(pipeline).exists() or spacy.util.is_package(str(pipeline))):
        msg.fail(f"Pipeline not found: {pipeline} is neither a directory nor an installed package", exits=1)
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics = spacy_evaluate(str(pipeline), data_path, output=output_dir / "metrics.json", use_gpu=gpu_id, silent=False)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(pipeline)
    if component not in nlp.pipe_names:
        msg.warn(f"No '{component}' in the pipeline: no anomaly curves written")
        return metrics
    gold, scores = collect_anomaly_scores(nlp, data_path, component)
    if not gold or len(set(gold)) < 2:
        msg.warn("The evaluation data needs both anomalous and normal labelled docs for curves")
        return metrics
    fpr, tpr, _ = roc_curve(gold, scores)
    precision, recall, _ = precision_recall_curve(gold, scores)
    auc = metrics.get("anomaly_auc")
    write_curve_svg(output_dir / "anomaly_roc.svg", fpr, tpr, f"ROC (AUC {auc:.3f})" if auc is not None else "ROC", "false positive rate", "true positive rate", diagonal=True)
    ap = metrics.get("anomaly_ap")
    ap = average_precision(gold, scores) if ap is None else ap
    prevalence = sum(gold) / len(gold)
    recall_xs, precision_ys = pr_step_points(precision, recall)
    write_curve_svg(output_dir / "anomaly_pr.svg", recall_xs, precision_ys, f"Precision-recall (AP {ap:.3f})", "recall", "precision",
                    baseline=(prevalence, f"prevalence {prevalence:.3f}"))
    curves = {"roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}, "pr": {"precision": precision.tolist(), "recall": recall.tolist()}}
    srsly.write_json(output_dir / "anomaly_curves.json", curves)
    msg.good(f"Wrote metrics and anomaly curves to {output_dir}")
    return metrics
