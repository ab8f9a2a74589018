"""`python -m spacy_modernbert calibrate`: choose the anomaly_scorer threshold on a dev corpus.

The calibrated pipeline is written to a new directory (`--output`), or in place with
`--overwrite`; a model card (README.md) describes figures at the old threshold, so writing in
place removes it (run `model-card` again on `evaluate` figures of the calibrated pipeline).
"""

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..anomaly import DEFAULT_LABEL
from ..anomaly.calibration import METHODS, CalibrationResult, calibrate_pipeline
from ._util import (
    app,
    check_output,
    is_installed_package,
    load_pipeline,
    pipeline_location,
    prepare_output,
)

DEFAULT_METHOD = "best_f1"
DEFAULT_TARGET_FPR = 0.05
DEFAULT_COMPONENT = "anomaly_scorer"

# The calibration methods as a typer choice (`--method` lists them in --help and refuses others).
Method = Enum("Method", {name: name for name in METHODS}, type=str)


@app.command("calibrate")
def calibrate_cli(
    # fmt: off
    pipeline: str = typer.Argument(
        ..., help="Trained pipeline directory or installed package name"
    ),
    dev_path: Path = typer.Argument(..., help="Dev corpus (.spacy) with anomaly labels"),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="Directory for the calibrated pipeline (default: in place, which needs --overwrite)",
    ),
    method: Method = typer.Option(
        DEFAULT_METHOD,
        "--method",
        help="best_f1: the highest F1; target_fpr: the best recall with a false-positive rate <= --target-fpr",
    ),
    target_fpr: float = typer.Option(
        DEFAULT_TARGET_FPR, "--target-fpr", help="False-positive rate for --method target_fpr"
    ),
    unlabelled_normal: bool = typer.Option(
        False,
        "--unlabelled-normal",
        help="Count dev docs without the anomaly label as normal (with --method target_fpr: calibrate from unlabelled normal text alone)",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a pipeline in --output, or calibrate PIPELINE in place"
    ),
    # fmt: on
) -> None:
    """Choose the anomaly_scorer threshold on a dev corpus and store it in the pipeline."""
    calibrate(
        pipeline,
        dev_path,
        output,
        method=Method(method).value,
        target_fpr=target_fpr,
        unlabelled_as_normal=unlabelled_normal,
        overwrite=overwrite,
    )


def calibrate(
    pipeline: Path,
    dev_path: Path,
    output: Optional[Path] = None,
    method: str = DEFAULT_METHOD,
    target_fpr: float = DEFAULT_TARGET_FPR,
    label: Optional[str] = None,
    component: str = DEFAULT_COMPONENT,
    unlabelled_as_normal: bool = False,
    overwrite: bool = False,
) -> CalibrationResult:
    """Calibrate the `anomaly_scorer` threshold on a labelled DocBin corpus and save the pipeline.

    pipeline (Path): a trained pipeline directory (or an installed package name).
    dev_path (Path): a `.spacy` corpus; docs with `doc.cats[label]` (1.0 anomaly, 0.0
        normal) are used, the others are skipped.
    output (Optional[Path]): where to write the calibrated pipeline; None writes it back
        to `pipeline` (in place, only with `overwrite`; not for an installed package).
    method (str): "best_f1" (highest F1) or "target_fpr" (best recall with a
        false-positive rate of at most `target_fpr`).
    target_fpr (float): the false-positive-rate budget for method "target_fpr".
    label (Optional[str]): the gold doc.cats label in `dev_path` (default: the component's label).
    component (str): the name of the anomaly_scorer component in the pipeline.
    unlabelled_as_normal (bool): count docs without the label as normal (no anomaly labels
        needed for "target_fpr").
    overwrite (bool): replace a pipeline at `output`, or write in place.
    RETURNS (CalibrationResult): the threshold and the P/R/F/FPR it gives on the corpus.
    """
    if method not in METHODS:
        msg.fail(f"Unknown calibration method {method!r}: use one of {', '.join(METHODS)}", exits=1)
    if method == "target_fpr" and not 0.0 <= target_fpr <= 1.0:
        msg.fail(f"--target-fpr must be between 0 and 1, got {target_fpr}", exits=1)
    if not Path(dev_path).exists():
        msg.fail("Calibration data not found", str(dev_path), exits=1)
    from .evaluate import check_corpus

    check_corpus(dev_path)  # garbage is refused before the pipeline is loaded or written
    if output is None and is_installed_package(pipeline):
        pipeline_location(pipeline)  # one line when it is not a package either
        msg.fail(
            f"{pipeline} is an installed package: pass --output DIR for the calibrated copy",
            exits=1,
        )
    in_place = output is None or Path(output).resolve() == Path(str(pipeline)).resolve()
    if in_place and not overwrite:
        msg.fail(
            f"calibrate would rewrite {pipeline} in place: pass --output DIR for a calibrated copy, or --overwrite",
            exits=1,
        )
    if not in_place:
        check_output(Path(output), overwrite, kind="pipeline")  # before minutes of scoring
    msg.info(f"Loading pipeline {pipeline}")
    nlp = load_pipeline(pipeline)
    if component not in nlp.pipe_names:
        msg.fail(
            f"No component {component!r} in the pipeline (components: {', '.join(nlp.pipe_names)})",
            exits=1,
        )
    pipe = nlp.get_pipe(component)
    old_threshold = float(pipe.cfg.get("threshold", 0.5))
    n_labelled, n_unlabelled = _count_labels(
        nlp, dev_path, label or pipe.cfg.get("label", DEFAULT_LABEL)
    )
    if n_labelled == 0 and not unlabelled_as_normal:
        msg.fail(
            f"No document in {dev_path} has the anomaly label: label some, or pass --unlabelled-normal "
            "(with --method target_fpr) to count unlabelled documents as normal",
            exits=1,
        )
    msg.info(
        f"Scoring {dev_path} ({component}, mode {pipe.cfg.get('mode')}, current threshold {old_threshold:.4f})"
    )
    try:
        result = calibrate_pipeline(
            nlp,
            dev_path,
            method=method,
            target_fpr=target_fpr,
            component=component,
            label=label,
            unlabelled_as_normal=unlabelled_as_normal,
        )
    except ValueError as err:
        msg.fail("Calibration failed", str(err), exits=1)
    counted = f"{n_labelled} labelled documents ({result.n_anomalous} anomalous)"
    if unlabelled_as_normal and n_unlabelled:
        counted += f" and {n_unlabelled} unlabelled documents counted as normal"
    elif n_unlabelled:
        counted += f"; {n_unlabelled} unlabelled documents skipped"
    msg.text(counted)
    n_normal = result.n_docs - result.n_anomalous
    if method == "target_fpr" and n_normal and 0.0 < target_fpr < 1.0 / n_normal:
        msg.warn(
            f"--target-fpr {target_fpr:g} is finer than the data allows: with {n_normal} normal documents the "
            f"smallest nonzero false-positive rate is 1/{n_normal} = {1.0 / n_normal:.4f}, so the threshold "
            f"allows no false positive at all{' and flags nothing' if result.recall == 0.0 else ''}. "
            f"Calibrate on at least {int(1.0 / target_fpr) + 1} normal documents."
        )
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
    if in_place:
        destination = Path(str(pipeline))
        card = destination / "README.md"
        nlp.to_disk(destination)
        if card.is_file():
            card.unlink()
            msg.warn(
                f"Removed {card}: its figures were at the old threshold. Run `evaluate` and `model-card` again."
            )
    else:
        destination = prepare_output(Path(output), overwrite, kind="pipeline")
        nlp.to_disk(destination)
    msg.good(f"Saved the calibrated pipeline to {destination}")
    return result


def _count_labels(nlp, dev_path: Path, label: str):
    """(documents with the gold label, documents without it) in the corpus."""
    from spacy.tokens import DocBin
    from spacy.training.corpus import walk_corpus

    n_labelled = n_unlabelled = 0
    for path in walk_corpus(dev_path, ".spacy"):
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
            if label in doc.cats:
                n_labelled += 1
            else:
                n_unlabelled += 1
    return n_labelled, n_unlabelled
