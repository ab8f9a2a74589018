"""`python -m spacy_modernbert quantize`: a copy of a trained pipeline that runs int8 (or bf16) on CPU.

The copy is the same pipeline with `quantize = "int8"` (or "bf16") in its encoder's config:
the weights stay fp32 and are quantized at load (see `encoder/quantize.py`), so the copy can
be switched back with `--components.transformer.model.quantize null` (or a config override
at `spacy.load`) and trained again from the same weights. The same effect without a copy:
`spacy.load(path, config={"components.transformer.model.quantize": "int8"})`.

Before writing, the command loads the copy, runs both versions over a few texts (or a
`.spacy` corpus) and prints how close the quantized encoder's outputs are to fp32 and
whether entities / anomaly scores agree, so a user sees the accuracy cost on their data.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ._util import app, check_output, load_pipeline, pipeline_location, prepare_output

ARCHITECTURE = "spacy-modernbert.ModernBertTransformer.v1"
DEFAULT_MODE = "int8"
CHECK_TEXTS = [
    "Maria Lopez works for Acme Corporation in London and flies to Paris on Monday.",
    "The committee approved the budget after a long debate about transport and schools.",
    "WIN a FREE holiday!!! Text CLAIM to 80080 now, offer ends tonight.",
    "Can you pick up some milk on your way home? Thanks.",
]


@dataclass
class QuantizeReport:
    """How the quantized copy compares with the fp32 pipeline on the check texts."""

    mode: str
    components: List[str]
    n_texts: int = 0
    min_cosine: Optional[float] = None  # per piece, encoder output, quantized vs fp32
    mean_cosine: Optional[float] = None
    entity_agreement: Optional[float] = None  # fraction of docs with identical doc.ents
    max_anomaly_score_diff: Optional[float] = None


@app.command("quantize")
def quantize_cli(
    # fmt: off
    pipeline: str = typer.Argument(
        ..., help="Trained pipeline directory or installed package name"
    ),
    output: Path = typer.Argument(
        ...,
        help="Directory for the quantized copy (new or empty; --overwrite replaces a pipeline there)",
    ),
    mode: str = typer.Option(
        DEFAULT_MODE,
        "--mode",
        "-m",
        help="int8 (dynamic quantization, any x86-64 / ARM CPU) or bf16 (CPUs with native bf16 matmul)",
    ),
    check_path: Optional[Path] = typer.Option(
        None,
        "--check-path",
        help="A .spacy corpus whose texts are used to compare the copy with fp32 (default: a few built-in sentences)",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a pipeline already in OUTPUT"
    ),
    # fmt: on
) -> None:
    """Write a copy of a pipeline whose encoder runs int8 (or bf16) on CPU, and compare it with fp32."""
    quantize(pipeline, output, mode=mode, check_path=check_path, overwrite=overwrite)


def quantize(
    pipeline,
    output: Path,
    mode: str = DEFAULT_MODE,
    check_path: Optional[Path] = None,
    overwrite: bool = False,
) -> QuantizeReport:
    """Copy `pipeline` to `output` with `quantize = mode` in every ModernBERT encoder's config.

    pipeline: a trained pipeline directory or installed package name.
    output (Path): where the copy is written (must differ from `pipeline`): a new or empty
        directory, or with `overwrite` a pipeline directory, replaced as a whole. The model
        card (README.md) is not copied: its figures are those of the fp32 pipeline.
    overwrite (bool): replace a pipeline directory at `output`.
    mode (str): "int8" or "bf16".
    check_path (Optional[Path]): a `.spacy` corpus; its texts (the first 200) are run
        through both pipelines. Default: a few built-in sentences.
    RETURNS (QuantizeReport): agreement of the copy with the fp32 pipeline.
    """
    import spacy
    from spacy.util import load_config

    from ..encoder.quantize import MODES, QuantizeError, capability, resolve_mode

    if mode not in MODES:
        msg.fail(f"--mode must be one of {', '.join(MODES)}, got {mode!r}", exits=1)
    source, output = pipeline_location(pipeline), Path(output)
    if output.resolve() == source.resolve():
        msg.fail(
            "The output directory must differ from the pipeline (the fp32 pipeline is kept)",
            exits=1,
        )
    check_output(output, overwrite, kind="pipeline")
    config = load_config(source / "config.cfg", interpolate=False)
    names = [
        n
        for n, c in config["components"].items()
        if c.get("model", {}).get("@architectures") == ARCHITECTURE
    ]
    if not names:
        msg.fail(f"No component of {pipeline} uses {ARCHITECTURE}: nothing to quantize", exits=1)
    msg.info(f"Kernels here: {capability()}")
    try:
        runs_here = resolve_mode(mode) == mode  # bf16 without native bf16: a warning, then fp32
    except QuantizeError as err:
        msg.fail(f'quantize = "{mode}" cannot run here', str(err), exits=1)
    texts = _check_texts(check_path)
    msg.info(f"Loading {pipeline} (fp32)")
    nlp = load_pipeline(pipeline)
    reference = list(nlp.pipe(texts))
    prepare_output(output, overwrite, kind="pipeline")
    nlp.to_disk(output)
    for name in names:
        config["components"][name]["model"]["quantize"] = mode
    config.to_disk(output / "config.cfg", interpolate=False)
    report = QuantizeReport(mode=mode, components=names, n_texts=len(texts))
    if not runs_here:
        msg.warn(f'Wrote {output} with quantize = "{mode}", not checked: this CPU runs it in fp32')
        return report
    quantized = spacy.load(output)
    for name in names:
        model = quantized.get_pipe(name).model
        if model.transformer.quantized != mode:
            msg.fail(f"The copy's component {name!r} did not load as {mode}", exits=1)
    _compare(report, reference, list(quantized.pipe(texts)), nlp)
    msg.good(
        f'Wrote {output}: {", ".join(names)} with quantize = "{mode}" (weights stored fp32, quantized at load)'
    )
    if report.min_cosine is not None:
        msg.text(
            f"encoder output vs fp32 on {report.n_texts} texts: cosine per piece mean {report.mean_cosine:.5f}, "
            f"min {report.min_cosine:.5f}"
        )
    if report.entity_agreement is not None:
        msg.text(f"docs with the same entities as fp32: {100 * report.entity_agreement:.1f}%")
    if report.max_anomaly_score_diff is not None:
        msg.text(f"largest anomaly score difference: {report.max_anomaly_score_diff:.4f}")
    return report


def _check_texts(check_path: Optional[Path]) -> List[str]:
    if check_path is None:
        return list(CHECK_TEXTS)
    import spacy
    from spacy.tokens import DocBin

    from ._util import require_file
    from .evaluate import check_corpus

    require_file(check_path, "Check corpus")
    check_corpus(check_path)
    texts = [doc.text for doc in DocBin().from_disk(check_path).get_docs(spacy.blank("xx").vocab)][
        :200
    ]
    return [t for t in texts if t.strip()] or list(CHECK_TEXTS)


def _compare(report: QuantizeReport, reference: list, quantized: list, nlp) -> None:
    import numpy

    cosines = []
    for a, b in zip(reference, quantized):
        if a._.trf_data is None or b._.trf_data is None:
            continue
        x, y = (
            a._.trf_data.model_output.last_hidden_state,
            b._.trf_data.model_output.last_hidden_state,
        )
        if not len(x) or not x.size:
            continue
        x, y = numpy.asarray(x).reshape(-1, x.shape[-1]), numpy.asarray(y).reshape(-1, y.shape[-1])
        norms = numpy.linalg.norm(x, axis=-1) * numpy.linalg.norm(y, axis=-1)
        cosines.append((x * y).sum(-1) / numpy.maximum(norms, 1e-12))
    if cosines:
        allc = numpy.concatenate(cosines)
        report.min_cosine, report.mean_cosine = float(allc.min()), float(allc.mean())
    if "ner" in nlp.pipe_names:
        same = [
            [(e.start, e.end, e.label_) for e in a.ents]
            == [(e.start, e.end, e.label_) for e in b.ents]
            for a, b in zip(reference, quantized)
        ]
        report.entity_agreement = sum(same) / max(1, len(same))
    if any(nlp.get_pipe_meta(name).factory == "anomaly_scorer" for name in nlp.pipe_names):
        diffs = [
            abs(a._.anomaly_score - b._.anomaly_score)
            for a, b in zip(reference, quantized)
            if a._.anomaly_score is not None and b._.anomaly_score is not None
        ]
        report.max_anomaly_score_diff = max(diffs) if diffs else None
