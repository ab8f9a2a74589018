"""Our encoder's forward as an ONNX graph, and the ONNX Runtime session that runs it.

Why: on CPU, what users pick instead of PyTorch for inference is ONNX Runtime (fp32 or
dynamic int8). `export-onnx` gives them the pipeline's encoder in that form, and the
speed benchmark runs the same graph as an anchor (`benchmarks/ort.py`).

Invariants:
* The graph is `ModernBertEncoder.forward` (modules.py: the plain padded forward, the
  same weights the pipeline runs), traced with `input_ids` / `attention_mask` of dynamic
  batch and length, output `last_hidden_state`; rotary tables, the sliding-window band
  and the key mask are computed inside the graph from the length, so any (batch, length)
  runs. It is checked against the pipeline's own (packed) forward before it is kept.
* Exported with torch's TorchScript-based exporter (`dynamo=False`): it needs only the
  `onnx` package (the dynamo exporter also needs onnxscript), and handles the dynamic
  length of this forward. torch warns that this exporter is deprecated; that one warning
  is filtered here.
* int8 is ONNX Runtime's own `quantize_dynamic` (int8 weights, activations quantized per
  call), the way its users run it; the fp32 graph is kept beside it.
"""

import warnings
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy

DEFAULT_OPSET = 17
MIN_OPSET = 14  # scaled_dot_product_attention with a mask
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "last_hidden_state"


class OnnxMissing(ImportError):
    """onnx / onnxruntime are not installed."""


def require_onnx() -> None:
    """Raise `OnnxMissing` naming the extra unless onnx and onnxruntime import."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise OnnxMissing(
            f"ONNX export needs the onnx and onnxruntime packages ({err.name} is missing): "
            "pip install 'spacy-modernbert[onnx]'."
        ) from err


def export_encoder(encoder: Any, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Trace `encoder` (our fp32 `ModernBertEncoder`, on CPU) to `path` with dynamic axes."""
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ValueError(
            f"--opset must be at least {MIN_OPSET} (attention with a mask), got {opset}."
        )
    axes = {"batch", "length"}
    dynamic = {name: {0: "batch", 1: "length"} for name in (*INPUTS, OUTPUT)}
    ids = torch.full((2, 16), int(encoder.config.pad_token_id or 0), dtype=torch.long)
    ids[:, 1:-1] = 5
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                encoder,
                (ids, mask),
                str(path),
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes=dynamic,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        encoder.train(was_training)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    for value in model.graph.input:
        dims = {d.dim_param for d in value.type.tensor_type.shape.dim}
        if not axes <= dims:  # pragma: no cover - a tracer that froze a shape
            raise RuntimeError(
                f"The exported input '{value.name}' has fixed dimensions {dims}, not (batch, length)."
            )
    return Path(path)


def quantize_int8(source: Path, target: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the fp32 graph (int8 weights)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return Path(target)


def session(path: Path, threads: int = 0, optimized_path: Optional[Path] = None) -> Any:
    """An ONNX Runtime CPU session with its fastest settings: every graph optimization
    (fusions included), `threads` intra-op threads (0: ORT's default), sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_padded(
    sess: Any, ids: Sequence[numpy.ndarray], pad_id: int, batch_size: int = 16
) -> List[numpy.ndarray]:
    """Each sequence's (n, width) output, run in length-sorted, right-padded batches."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: List[Any] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        longest = max(len(ids[i]) for i in chunk)
        batch = numpy.full((len(chunk), longest), pad_id, dtype=numpy.int64)
        mask = numpy.zeros((len(chunk), longest), dtype=numpy.int64)
        for row, i in enumerate(chunk):
            batch[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = 1
        hidden = sess.run([OUTPUT], {"input_ids": batch, "attention_mask": mask})[0]
        for row, i in enumerate(chunk):
            out[i] = hidden[row, : len(ids[i])]
    return out


def compare(got: Sequence[numpy.ndarray], want: Sequence[numpy.ndarray]) -> dict:
    """Largest absolute difference and the per-piece cosines of two lists of (n, width)."""
    diffs, cosines = [0.0], []
    for a, b in zip(got, want):
        if not len(a):
            continue
        diffs.append(float(numpy.abs(a - b).max()))
        norms = numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1)
        cosines.append((a * b).sum(-1) / numpy.maximum(norms, 1e-12))
    allc = numpy.concatenate(cosines) if cosines else numpy.ones(1)
    return {
        "max_abs_diff": max(diffs),
        "min_cosine": float(allc.min()),
        "mean_cosine": float(allc.mean()),
    }
