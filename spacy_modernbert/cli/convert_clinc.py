"""`python -m spacy_modernbert convert-clinc`: CLINC150 intents + out-of-scope to `.spacy` splits.

The conversion lives in `spacy_modernbert/data/from_clinc.py`; here we check paths, apply the
one overwrite rule (`_util.check_output`, before any reading), write one `.spacy` file per
split and `intents.json` (the textcat's label list, read by `configs/intents_*.cfg`).
"""

from pathlib import Path
from typing import Any, Dict, Optional

import srsly
import typer
from wasabi import msg

from ..anomaly import DEFAULT_LABEL
from ._util import app, check_output, prepare_output, require_file, run_or_exit

INTENTS_FILE = "intents.json"
# What convert-clinc may write in its OUTPUT_DIR (what --overwrite replaces).
CLINC_FILES = ("train.spacy", "dev.spacy", "val.spacy", "test.spacy", INTENTS_FILE)


@app.command("convert-clinc")
def convert_clinc_cli(
    # fmt: off
    input_path: Path = typer.Argument(
        ...,
        help="CLINC150 JSON: {split: [[text, intent], ...]}, oos_* keys or intent 'oos' out-of-scope",
    ),
    output_dir: Path = typer.Argument(
        ..., help="Directory for one .spacy file per split (val -> dev.spacy) and intents.json"
    ),
    carve_dev: int = typer.Option(
        0,
        "--carve-dev",
        help="Carve this many docs per intent (and the same fraction of out-of-scope) from train into dev.spacy; val is then written as val.spacy, for the report",
    ),
    per_intent: Optional[int] = typer.Option(
        None,
        "--per-intent",
        help="Keep this many training docs per intent (the same fraction of out-of-scope), after carving",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of carving and subsampling"),
    label: str = typer.Option(
        DEFAULT_LABEL, "--label", help="doc.cats label of out-of-scope (the anomaly_scorer's label)"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the files of an earlier convert-clinc in OUTPUT_DIR"
    ),
    # fmt: on
) -> None:
    """Convert CLINC150 (intents, out-of-scope as anomalies) into .spacy splits and intents.json."""
    convert_clinc(
        input_path,
        output_dir,
        carve_dev=carve_dev,
        per_intent=per_intent,
        seed=seed,
        label=label,
        overwrite=overwrite,
    )


def convert_clinc(
    input_path: Path,
    output_dir: Path,
    carve_dev: int = 0,
    per_intent: Optional[int] = None,
    seed: int = 0,
    label: str = DEFAULT_LABEL,
    overwrite: bool = False,
) -> Dict[str, Any]:
    """Convert CLINC150 into `output_dir/{split}.spacy` and `output_dir/intents.json`.

    input_path (Path): the CLINC150 JSON file.
    output_dir (Path): the output directory.
    carve_dev (int): docs per intent carved from train into dev (0: val is dev).
    per_intent (Optional[int]): training docs kept per intent (None: all).
    seed (int): the seed of carving and subsampling.
    label (str): the doc.cats label of out-of-scope docs.
    overwrite (bool): replace the files of an earlier convert-clinc in `output_dir`.
    RETURNS (dict): split name -> {"n_docs", "n_out_of_scope"}, and "intents".
    """
    require_file(input_path, "CLINC150 input")
    check_output(output_dir, overwrite, own_files=CLINC_FILES)
    if carve_dev < 0:
        msg.fail(f"--carve-dev must be >= 0, got {carve_dev}", exits=1)
    if per_intent is not None and per_intent < 1:
        msg.fail(f"--per-intent must be >= 1, got {per_intent}", exits=1)
    from ..data.converters import write_docbin
    from ..data.from_clinc import clinc_to_docs

    splits, intents = run_or_exit(
        clinc_to_docs,
        input_path,
        carve_dev=carve_dev,
        per_intent_train=per_intent,
        seed=seed,
        label=label,
    )
    unknown = sorted(set(splits) - {Path(name).stem for name in CLINC_FILES})
    if unknown:
        msg.fail(
            f"{input_path}: unknown split keys {unknown}: expected train, val, test and their oos_* parts",
            exits=1,
        )
    output_dir = prepare_output(output_dir, overwrite, own_files=CLINC_FILES)
    out: Dict[str, Any] = {"intents": intents}
    for name, docs in splits.items():
        path = output_dir / f"{name}.spacy"
        write_docbin(docs, path)
        n_oos = sum(1 for doc in docs if doc.cats.get(label) == 1.0)
        out[name] = {"n_docs": len(docs), "n_out_of_scope": n_oos}
        msg.good(f"Wrote {len(docs)} docs to {path} ({n_oos} out-of-scope)")
    srsly.write_json(output_dir / INTENTS_FILE, intents)
    msg.good(f"Wrote {len(intents)} intents to {output_dir / INTENTS_FILE}")
    return out
