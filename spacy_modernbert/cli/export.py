"""`export-hf` and `export-onnx`: a trained pipeline's encoder out of spaCy, checked.

`python -m spacy_modernbert export-hf PIPELINE OUTPUT` writes a `ModernBertModel`
directory (config.json, model.safetensors, tokenizer files, README.md model card) that
`AutoModel` / `AutoTokenizer.from_pretrained(OUTPUT)` load offline;
`python -m spacy_modernbert export-onnx PIPELINE OUTPUT [--int8] [--opset 17]` writes
`model.onnx` (dynamic batch and length; `model.int8.onnx` with --int8) beside the same
config, tokenizer and card. Both load the pipeline, write, then load what they wrote and
compare it with the pipeline's own encoder output on a few texts: an export that does not
reproduce the pipeline (HF: 1e-5, ONNX fp32: 1e-4 max abs difference) is reported as a
failure, not left looking fine.

Refused with a one-line message: a pipeline that does not load, one with no ModernBERT
encoder component, a quantized encoder (exports are fp32), an encoder with no weights, and
a non-empty OUTPUT (unless --overwrite, which replaces the files of the export and leaves
other files alone). Heavy imports happen inside the functions.
"""

import datetime
from pathlib import Path
from typing import Any, Dict, List, Tuple

import typer
from wasabi import msg

from ._util import app

DEFAULT_COMPONENT = "transformer"
HF_TOLERANCE, ONNX_TOLERANCE = 1e-5, 1e-4
ONNX_FILE, ONNX_INT8_FILE = "model.onnx", "model.int8.onnx"
CHECK_TEXTS = [
    "Maria Lopez works for Acme Corporation in London and flies to Paris on Monday.",
    "The committee approved the budget after a long debate about transport and schools.",
    "WIN a FREE holiday!!! Text CLAIM to 80080 now, offer ends tonight.",
    "ok",
    " ".join(
        [
            "At 03:12 UTC the gateway returned errors for seven minutes and the deploy was rolled back."
        ]
        * 6
    ),
]
# Files an export writes (what --overwrite replaces).
EXPORT_FILES = (
    "config.json",
    "model.safetensors",
    ONNX_FILE,
    ONNX_INT8_FILE,
    "README.md",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


class ExportError(ValueError):
    """An export that cannot be done; the message names the input and the fix."""


@app.command("export-hf")
def export_hf_cli(
    # fmt: off
    pipeline: str = typer.Argument(
        ..., help="Trained pipeline: a directory or an installed package name"
    ),
    output: Path = typer.Argument(..., help="Empty (or new) directory for the Hugging Face model"),
    component: str = typer.Option(
        DEFAULT_COMPONENT, "--component", "-c", help="The pipeline's ModernBERT encoder component"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the files of an earlier export in OUTPUT"
    ),
    # fmt: on
) -> None:
    """Export the pipeline's fine-tuned encoder as a Hugging Face ModernBertModel directory."""
    _run(export_hf, pipeline, output, component=component, overwrite=overwrite)


@app.command("export-onnx")
def export_onnx_cli(
    # fmt: off
    pipeline: str = typer.Argument(
        ..., help="Trained pipeline: a directory or an installed package name"
    ),
    output: Path = typer.Argument(
        ..., help="Empty (or new) directory for model.onnx, tokenizer and card"
    ),
    component: str = typer.Option(
        DEFAULT_COMPONENT, "--component", "-c", help="The pipeline's ModernBERT encoder component"
    ),
    int8: bool = typer.Option(
        False, "--int8", help="Also write model.int8.onnx (ONNX Runtime dynamic int8)"
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 14)"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the files of an earlier export in OUTPUT"
    ),
    # fmt: on
) -> None:
    """Export the pipeline's encoder to ONNX (dynamic batch and length), checked with ONNX Runtime."""
    _run(
        export_onnx,
        pipeline,
        output,
        component=component,
        int8=int8,
        opset=opset,
        overwrite=overwrite,
    )


def _run(func, *args, **kwargs) -> None:
    from ..export.onnx import OnnxMissing

    try:
        func(*args, **kwargs)
    except (ExportError, OnnxMissing) as err:
        msg.fail(str(err), exits=1)


def load_pipeline(name: str) -> Any:
    """The pipeline, as `spacy.load` finds it (a directory or an installed package).

    The one place that loads: swap it for the project's shared loader when there is one."""
    import spacy

    try:
        return spacy.load(name)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"Could not load the pipeline '{name}': {first}") from err


def find_encoder(nlp: Any, component: str, pipeline: str) -> Any:
    """The component's ModernBERT encoder model, refusing anything else with the fix."""
    from ..encoder.architecture import ModernBertEncoderModel

    ours = [
        n for n, p in nlp.pipeline if isinstance(getattr(p, "model", None), ModernBertEncoderModel)
    ]
    if component not in nlp.pipe_names:
        if ours:
            raise ExportError(
                f"Pipeline '{pipeline}' has no component '{component}'; its ModernBERT encoder is "
                f"'{ours[0]}': pass --component {ours[0]}."
            )
        raise ExportError(
            f"Pipeline '{pipeline}' has no transformer component (components: "
            f"{', '.join(nlp.pipe_names) or 'none'}): there is no encoder to export."
        )
    model = getattr(nlp.get_pipe(component), "model", None)
    if not isinstance(model, ModernBertEncoderModel):
        hint = (
            f" (its ModernBERT encoder is '{ours[0]}': pass --component {ours[0]})" if ours else ""
        )
        raise ExportError(
            f"Component '{component}' of '{pipeline}' is not a spacy-modernbert encoder "
            f"(spacy-modernbert.ModernBertTransformer.v1){hint}."
        )
    shim = model.shims[0]
    if not shim.loaded:
        raise ExportError(
            f"The encoder '{component}' of '{pipeline}' has no weights: train or initialize the pipeline first."
        )
    if shim.quantize is not None:
        raise ExportError(
            f"The encoder '{component}' of '{pipeline}' is quantized (quantize = \"{shim.quantize}\"): exports are fp32. "
            f"Export the fp32 pipeline it was made from, or set quantize = null in [components.{component}.model]."
        )
    return model


def prepare_output(output: Path, overwrite: bool, pipeline: str) -> Path:
    """Refuse a non-empty OUTPUT (or the pipeline itself); with overwrite, remove only our files."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ExportError(f"OUTPUT '{output}' is a file, not a directory.")
    if Path(pipeline).exists() and output.resolve() == Path(pipeline).resolve():
        raise ExportError(
            f"OUTPUT '{output}' is the pipeline directory itself: pass another directory."
        )
    present = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    if present and not overwrite:
        shown = ", ".join(present[:5]) + (" ..." if len(present) > 5 else "")
        raise ExportError(
            f"OUTPUT '{output}' is not empty ({shown}): pass an empty directory, or --overwrite "
            "to replace the files of an earlier export."
        )
    for name in present:
        if name in EXPORT_FILES and (output / name).is_file():
            (output / name).unlink()
    others = [n for n in present if n not in EXPORT_FILES]
    if others:
        msg.warn(f"Left in {output} (not written by an export): {', '.join(others[:10])}")
    output.mkdir(parents=True, exist_ok=True)
    return output


def pipeline_pieces(
    nlp: Any, component: str, texts: List[str]
) -> Tuple[List[Tuple[str, Any, Any]], int]:
    """(text, [CLS] pieces [SEP] ids, encoder output) of each text that the pipeline encodes in
    one window (longer ones are windowed and merged: not what a plain model computes), and
    how many texts were skipped for that."""
    import numpy

    pipe = nlp.get_pipe(component)
    max_length = pipe.model.attrs["max_length"]
    out, skipped = [], 0
    for text, doc in zip(texts, pipe.pipe(nlp.make_doc(t) for t in texts)):
        trf = doc._.trf_data
        if trf is None or not len(doc):
            continue
        ids = numpy.asarray(trf.wordpieces.input_ids[0], dtype=numpy.int64)
        if len(ids) > max_length:
            skipped += 1
            continue
        out.append(
            (text, ids, numpy.asarray(trf.model_output.last_hidden_state[0], dtype=numpy.float32))
        )
    return out, skipped


def provenance(nlp: Any, model: Any, pipeline: str, component: str, command: str) -> Dict[str, Any]:
    from .. import __version__

    config = model.shims[0]._model.config
    source = str(Path(pipeline).resolve()) if Path(pipeline).exists() else pipeline
    meta = nlp.meta
    return {
        "title": f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')} encoder ({component})",
        "pipeline": source,
        "component": component,
        "command": command,
        "version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "pipeline_name": meta.get("name", "?"),
        "pipeline_version": meta.get("version", "?"),
        "lang": meta.get("lang", "?"),
        "pipe_names": list(nlp.pipe_names),
        "base": model.attrs.get("name"),
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "vocab": config.vocab_size,
        "max_length": model.attrs["max_length"],
    }


def export_hf(
    pipeline: str,
    output: Path,
    component: str = DEFAULT_COMPONENT,
    overwrite: bool = False,
    texts: List[str] = CHECK_TEXTS,
) -> Dict[str, Any]:
    """Write the encoder of `pipeline`'s `component` to `output` as a `ModernBertModel` directory,
    load it back with transformers and compare with the pipeline on `texts`.

    RETURNS (dict): files written, check results ("max_abs_diff", "loading_info", ...), heads not exported.
    """
    from ..export.hf import check_hf_dir, head_notes, model_card, write_hf_dir

    nlp = load_pipeline(pipeline)
    model = find_encoder(nlp, component, pipeline)
    output = prepare_output(output, overwrite, pipeline)
    shim = model.shims[0]
    files = write_hf_dir(shim._model, shim.tokenizer, output)
    pieces, skipped = pipeline_pieces(nlp, component, texts)
    check = check_hf_dir(output, pieces)
    problems = {k: v for k, v in check["loading_info"].items() if v}
    notes = head_notes(nlp, component)
    info = provenance(nlp, model, pipeline, component, "python -m spacy_modernbert export-hf")
    info["checks"] = [
        f"AutoModel loads it as {check['model_class']} with no missing, unexpected or mismatched weight"
        if not problems
        else f"AutoModel loading reported {problems}",
        f"hidden states vs the pipeline's encoder on {check['n_docs']} texts: max abs difference "
        f"{check['max_abs_diff']:.2e} (tolerance {HF_TOLERANCE:g})",
        f'`tokenizer(" " + text)` gives the pipeline\'s pieces on {check["same_pieces"]} of {check["n_docs"]} texts',
    ]
    (output / "README.md").write_text(
        model_card(info, notes, files + ["README.md"]), encoding="utf8"
    )
    for line in info["checks"]:
        msg.text(line)
    for name, factory, why in notes:
        msg.info(f"Not exported: '{name}' ({factory}): {why}.")
    result = {
        "files": files + ["README.md"],
        "check": check,
        "skipped": skipped,
        "not_exported": notes,
    }
    if problems or check["max_abs_diff"] > HF_TOLERANCE:
        raise ExportError(
            f"The export in '{output}' does not reproduce the pipeline (loading: {problems or 'ok'}, "
            f"max abs difference {check['max_abs_diff']:.2e}): please report this as a bug."
        )
    msg.good(f"Wrote a Hugging Face ModernBertModel to {output}")
    return result


def export_onnx(
    pipeline: str,
    output: Path,
    component: str = DEFAULT_COMPONENT,
    int8: bool = False,
    opset: int = 17,
    overwrite: bool = False,
    texts: List[str] = CHECK_TEXTS,
) -> Dict[str, Any]:
    """Write `model.onnx` (and `model.int8.onnx`) of the encoder, with config, tokenizer and card,
    and compare ONNX Runtime's output with the pipeline's on `texts`."""
    from ..export import onnx as ox
    from ..export.hf import head_notes, model_card, write_config_and_tokenizer

    ox.require_onnx()
    if opset < ox.MIN_OPSET:
        raise ExportError(
            f"--opset must be at least {ox.MIN_OPSET} (attention with a mask), got {opset}."
        )
    nlp = load_pipeline(pipeline)
    model = find_encoder(nlp, component, pipeline)
    output = prepare_output(output, overwrite, pipeline)
    shim = model.shims[0]
    files = write_config_and_tokenizer(shim._model, shim.tokenizer, output)
    msg.info(f"Exporting {component} to ONNX (opset {opset})")
    ox.export_encoder(shim._model.encoder, output / ONNX_FILE, opset)
    files.append(ONNX_FILE)
    pieces, skipped = pipeline_pieces(nlp, component, texts)
    pad = shim.tokenizer.pad_token_id or 0
    want = [h for _, _, h in pieces]
    fp32 = ox.compare(
        ox.run_padded(ox.session(output / ONNX_FILE), [i for _, i, _ in pieces], pad), want
    )
    checks = [
        f"ONNX Runtime fp32 vs the pipeline's encoder on {len(pieces)} texts (padded batches): max abs "
        f"difference {fp32['max_abs_diff']:.2e} (tolerance {ONNX_TOLERANCE:g})"
    ]
    result: Dict[str, Any] = {"fp32": fp32, "skipped": skipped, "opset": opset}
    if int8:
        msg.info("Quantizing (ONNX Runtime dynamic int8)")
        ox.quantize_int8(output / ONNX_FILE, output / ONNX_INT8_FILE)
        files.append(ONNX_INT8_FILE)
        q = ox.compare(
            ox.run_padded(ox.session(output / ONNX_INT8_FILE), [i for _, i, _ in pieces], pad), want
        )
        result["int8"] = q
        checks.append(
            f"ONNX Runtime int8 vs fp32 pipeline: cosine per piece mean {q['mean_cosine']:.5f}, "
            f"min {q['min_cosine']:.5f} (quantization error, not a bug)"
        )
    info = provenance(nlp, model, pipeline, component, "python -m spacy_modernbert export-onnx")
    info["checks"] = [
        f"opset {opset}; inputs input_ids, attention_mask (int64, [batch, length]); "
        "output last_hidden_state (float32, [batch, length, hidden])"
    ] + checks
    (output / "README.md").write_text(
        model_card(info, head_notes(nlp, component), files + ["README.md"], what="onnx"),
        encoding="utf8",
    )
    result["files"] = files + ["README.md"]
    for line in checks:
        msg.text(line)
    if fp32["max_abs_diff"] > ONNX_TOLERANCE:
        raise ExportError(
            f"The ONNX graph in '{output}' does not reproduce the pipeline (max abs difference "
            f"{fp32['max_abs_diff']:.2e} > {ONNX_TOLERANCE:g}): please report this as a bug."
        )
    msg.good(f"Wrote {', '.join(f for f in files if f.endswith('.onnx'))} to {output}")
    return result
