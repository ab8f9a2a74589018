"""`python -m spacy_modernbert generate-demo`: regenerate the committed demo corpus.

The output follows the one overwrite rule (`_util.check_output`): a directory holding
train/dev/test.jsonl needs --overwrite, and one holding other files is refused, except a
README.md (the corpus's data card, as in assets/demo), which is left as it is.
"""

from pathlib import Path
from typing import Dict

import typer
from wasabi import msg

from ._util import app, check_output, prepare_output, run_or_exit

DEFAULT_N_DOCS = 600
DEFAULT_ANOMALY_RATE = 0.1
DEFAULT_SEED = 0
# The files generate-demo writes (what --overwrite replaces), and the one it leaves beside them.
DEMO_FILES = ("train.jsonl", "dev.jsonl", "test.jsonl")
DATA_CARD = ("README.md",)


@app.command("generate-demo")
def generate_demo_cli(
    # fmt: off
    output_dir: Path = typer.Argument(..., help="Directory for train/dev/test JSONL"),
    n_docs: int = typer.Option(
        DEFAULT_N_DOCS, "--n-docs", help="Number of reports, all splits together"
    ),
    anomaly_rate: float = typer.Option(
        DEFAULT_ANOMALY_RATE, "--anomaly-rate", help="Fraction of anomalous reports (0 < rate < 1)"
    ),
    seed: int = typer.Option(
        DEFAULT_SEED, "--seed", help="Random seed: the same options always give the same files"
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the JSONL files of an earlier generate-demo in OUTPUT_DIR",
    ),
    # fmt: on
) -> None:
    """Regenerate the demo corpus (IT incident reports) deterministically from a seed."""
    generate_demo(
        output_dir, n_docs=n_docs, anomaly_rate=anomaly_rate, seed=seed, overwrite=overwrite
    )


def generate_demo(
    output_dir: Path,
    n_docs: int = DEFAULT_N_DOCS,
    anomaly_rate: float = DEFAULT_ANOMALY_RATE,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
) -> Dict[str, Path]:
    """Write the demo corpus (IT incident reports) to `output_dir/{train,dev,test}.jsonl`.

    output_dir (Path): the output directory.
    n_docs (int): number of reports.
    anomaly_rate (float): fraction of anomalous reports.
    seed (int): the random seed; the same arguments always give the same files.
    overwrite (bool): replace the files of an earlier generate-demo in `output_dir`.
    RETURNS (Dict[str, Path]): split name -> written file.
    """
    check_output(output_dir, overwrite, own_files=DEMO_FILES, keep=DATA_CARD)
    from ..data.demo import generate_demo_splits
    from ..data.jsonl import write_jsonl

    splits = run_or_exit(
        generate_demo_splits, n_docs=n_docs, anomaly_rate=anomaly_rate, seed=seed, what="Generation"
    )
    output_dir = prepare_output(output_dir, overwrite, own_files=DEMO_FILES, keep=DATA_CARD)
    paths = {}
    for name, records in splits.items():
        paths[name] = write_jsonl(records, output_dir / f"{name}.jsonl")
        n_anom = sum(r["anomaly"] for r in records)
        msg.good(f"Wrote {len(records)} reports ({n_anom} anomalies) to {paths[name]}")
    return paths
