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

    from ..anomaly.curves import precision_recall_curve, roc_curve
    from .plots import write_curve_svg

    output_dir = Path(output_dir)
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
    write_curve_svg(output_dir / "anomaly_pr.svg", [0.0, *recall], [1.0, *precision], "Precision-recall", "recall", "precision")
    curves = {"roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}, "pr": {"precision": precision.tolist(), "recall": recall.tolist()}}
    srsly.write_json(output_dir / "anomaly_curves.json", curves)
    msg.good(f"Wrote metrics and anomaly curves to {output_dir}")
    return metrics
