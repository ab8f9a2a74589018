"""`python -m spacy_modernbert calibrate`: choose the anomaly_scorer threshold on a dev corpus."""
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..anomaly.calibration import METHODS, CalibrationResult, calibrate_pipeline
from ._util import app

DEFAULT_METHOD = "best_f1"
DEFAULT_TARGET_FPR = 0.05
DEFAULT_COMPONENT = "anomaly_scorer"

# The calibration methods as a typer choice (`--method` lists them in --help and refuses others).
Method = Enum("Method", {name: name for name in METHODS}, type=str)


@app.command("calibrate")
def calibrate_cli(
    # fmt: off
    pipeline: Path = typer.Argument(..., help="Trained pipeline directory"),
    dev_path: Path = typer.Argument(..., help="Dev corpus (.spacy) with anomaly labels"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write the calibrated pipeline (default: in place)"),
    method: Method = typer.Option(DEFAULT_METHOD, "--method", help="best_f1: the highest F1; target_fpr: the best recall with a false-positive rate <= --target-fpr"),
    target_fpr: float = typer.Option(DEFAULT_TARGET_FPR, "--target-fpr", help="False-positive rate for --method target_fpr"),
    # fmt: on
) -> None:
    """Choose the anomaly_scorer threshold on a dev corpus and store it in the pipeline."""
    calibrate(pipeline, dev_path, output, method=Method(method).value, target_fpr=target_fpr)


def calibrate(
    pipeline: Path,
    dev_path: Path,
    output: Optional[Path] = None,
    method: str = DEFAULT_METHOD,
    target_fpr: float = DEFAULT_TARGET_FPR,
    label: Optional[str] = None,
    component: str = DEFAULT_COMPONENT,
) -> CalibrationResult:
    """Calibrate the `anomaly_scorer` threshold on a labelled DocBin corpus and save the pipeline.

    pipeline (Path): a trained pipeline directory (or an installed package name).
    dev_path (Path): a `.spacy` corpus; docs with `doc.cats[label]` (1.0 anomaly, 0.0
        normal) are used, the others are skipped.
    output (Optional[Path]): where to write the calibrated pipeline; None writes it back
        to `pipeline` (in place).
    method (str): "best_f1" (highest F1) or "target_fpr" (best recall with a
        false-positive rate of at most `target_fpr`).
    target_fpr (float): the false-positive-rate budget for method "target_fpr".
    label (Optional[str]): the gold doc.cats label in `dev_path` (default: the component's label).
    component (str): the name of the anomaly_scorer component in the pipeline.
    RETURNS (CalibrationResult): the threshold and the P/R/F/FPR it gives on the corpus.
    """
    import spacy

    if method not in METHODS:
        msg.fail(f"Unknown calibration method {method!r}: use one of {', '.join(METHODS)}", exits=1)
    if method == "target_fpr" and not 0.0 <= target_fpr <= 1.0:
        msg.fail(f"--target-fpr must be between 0 and 1, got {target_fpr}", exits=1)
    if not Path(dev_path).exists():
        msg.fail("Calibration data not found", str(dev_path), exits=1)
    msg.info(f"Loading pipeline {pipeline}")
    nlp = spacy.load(pipeline)
    if component not in nlp.pipe_names:
        msg.fail(f"No component {component!r} in the pipeline (components: {', '.join(nlp.pipe_names)})", exits=1)
    pipe = nlp.get_pipe(component)
    old_threshold = float(pipe.cfg.get("threshold", 0.5))
    msg.info(f"Scoring {dev_path} ({component}, mode {pipe.cfg.get('mode')}, current threshold {old_threshold:.4f})")
    try:
        result = calibrate_pipeline(nlp, dev_path, method=method, target_fpr=target_fpr, component=component, label=label)
    except ValueError as err:
        msg.fail("Calibration failed", str(err), exits=1)
    msg.text(f"{result.n_docs} labelled documents, {result.n_anomalous} anomalous")
    what = "best F1" if method == "best_f1" else f"false-positive rate <= {target_fpr:g}"
    msg.good(f"Threshold {result.threshold:.6f} ({what})")
    auc = "-" if result.auc is None else f"{result.auc:.4f}"
    ap = "-" if result.ap is None else f"{result.ap:.4f}"
    msg.table(
        [
            ("threshold", f"{result.threshold:.6f}"),
            ("precision", f"{result.precision:.4f}"),
            ("recall", f"{result.recall:.4f}"),
            ("F1", f"{result.f1:.4f}"),
            ("false-positive rate", f"{result.fpr:.4f}"),
            ("ROC AUC", auc),
            ("average precision", ap),
        ],
        title="Anomaly threshold on the calibration data",
    )
    destination = Path(output) if output is not None else Path(pipeline)
    nlp.to_disk(destination)
    msg.good(f"Saved the calibrated pipeline to {destination}")
    return result
