"""`python -m spacy_modernbert plot-training`: loss and score curves of a training run, as SVG.

Reads the metrics file the `spacy-modernbert.ConsoleLogger.v1` logger writes with
`metrics_file` set (the weasel `train` step: training/metrics.jsonl).
"""

from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from ..charts import Panel, Series, write_svg
from ..training_logger import read_metrics
from ._util import app, check_output_file

METRICS_NAME = "metrics.jsonl"


@app.command("plot-training")
def plot_training_cli(
    # fmt: off
    metrics: Path = typer.Argument(
        ..., help="A metrics.jsonl file, or the training output directory holding one"
    ),
    output: Optional[Path] = typer.Option(
        None,
        "--output",
        "-o",
        help="SVG file to write (default: curves.svg beside the metrics file)",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file"),
    # fmt: on
) -> None:
    """Draw the loss and score curves of a training run (one SVG, two panels)."""
    path = plot_training(metrics, output, overwrite=overwrite)
    msg.good(f"Wrote {path}")


def plot_training(metrics: Path, output: Optional[Path] = None, overwrite: bool = False) -> Path:
    """Write the curves of a metrics file (or a directory holding metrics.jsonl) as one SVG."""
    metrics = Path(metrics)
    if metrics.is_dir():
        metrics = metrics / METRICS_NAME
    if not metrics.is_file():
        msg.fail(
            f"No metrics file at {metrics}",
            "Train with [training.logger] metrics_file set (spacy train ... "
            "--training.logger.metrics_file training/metrics.jsonl) and pass that file.",
            exits=1,
        )
    records = read_metrics(metrics)
    if not records:
        msg.fail(f"{metrics} holds no evaluation yet", exits=1)
    output = check_output_file(Path(output) if output else metrics.parent / "curves.svg", overwrite)
    return write_svg(output, training_panels(records), columns=2)


def training_panels(records: List[Dict[str, Any]]) -> List[Panel]:
    """A loss panel (one line per component) and a score panel (the weighted score and each score)."""
    steps = [record["step"] for record in records]

    def series(key: str, name: str) -> Series:
        pairs = [(s, r[key].get(name)) for s, r in zip(steps, records)]
        pairs = [(s, v) for s, v in pairs if v is not None]
        return Series(name, [s for s, _ in pairs], [v for _, v in pairs], points=True)

    losses = sorted({name for r in records for name in r.get("losses", {})})
    scores = sorted(
        {name for r in records for name, v in r.get("scores", {}).items() if v is not None}
    )
    weighted = [(s, r["score"]) for s, r in zip(steps, records) if r.get("score") is not None]
    score_series = [
        Series(
            "score", [s for s, _ in weighted], [v for _, v in weighted], points=True, colour="black"
        )
    ] + [series("scores", name) for name in scores]
    return [
        Panel(
            "Training loss (since the previous evaluation)",
            "step",
            "loss",
            [series("losses", n) for n in losses],
        ),
        Panel("Dev scores", "step", "score", score_series),
    ]
