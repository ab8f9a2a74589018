"""`python -m benchmarks ort`: ours (fp32, int8) vs ONNX Runtime (fp32, dynamic int8) on CPU.

Why: on CPU, ONNX Runtime is what a user picks instead of PyTorch for inference; the speed
table needs it as an anchor, run the way its users run it.

Protocol (one process, one base-shaped random checkpoint, the same documents, the same
threads for everyone):
* ours: the pipeline's `transformer` component alone (`nlp.pipe`, tokenization, windows,
  packing and alignment included), fp32 and `quantize = "int8"`;
* ONNX Runtime: the same encoder weights exported by `export-onnx`'s code
  (`spacy_modernbert/export/onnx.py`), fp32 and `quantize_dynamic` int8, its best
  `SessionOptions` (ORT_ENABLE_ALL, intra-op threads = threads, sequential), docs sorted by
  length and run in right-padded batches (tokenizer call included, as a user would);
* every system and regime is warmed once, then the systems run interleaved (ABAB: the
  order reverses every repeat) `repeats` times; each figure is the median and range over
  repeats, and each ratio is computed per repeat (paired) before its median. The load
  average is recorded before and after: the box may be shared.
"""

import os
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from . import data as bdata
from ._app import CacheDir, Checkpoint, DataDir, Output, Threads, app, defaults
from .report import log, machine_info, write_json
from .results import command_line, header

SYSTEMS = ("ours", "ort", "ours_int8", "ort_int8")


def _ort_runner(path: Path, tokenizer: Any, threads: int, batch_size: int):
    from spacy_modernbert.export.onnx import OUTPUT, session

    sess = session(path, threads=threads)

    def run(texts: List[str]) -> int:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows = 0
        for start in range(0, len(order), batch_size):
            batch = [" " + texts[i] for i in order[start : start + batch_size]]
            enc = tokenizer(batch, padding=True, return_tensors="np")
            out = sess.run(
                [OUTPUT],
                {
                    "input_ids": enc["input_ids"].astype("int64"),
                    "attention_mask": enc["attention_mask"].astype("int64"),
                },
            )[0]
            rows += out.shape[0]
        return rows

    return run


def gemm_peaks(threads: int, size: int = 2048, repeats: int = 5) -> Dict[str, float]:
    """The machine's fp32 GEMM rate by the best kernel here: torch.matmul vs ONNX Runtime's
    MatMul on the same (size x size) operands, interleaved, best of `repeats` each (FLOP/s)."""
    import numpy
    import onnx
    import torch
    from onnx import TensorProto, helper

    from spacy_modernbert.export.onnx import session

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gemm_{os.getpid()}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    sess = session(path, threads=threads)
    path.unlink()
    a, b = (
        numpy.random.default_rng(i).standard_normal((size, size), dtype=numpy.float32)
        for i in (0, 1)
    )
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    best = {"torch_matmul": float("inf"), "onnxruntime_matmul": float("inf")}
    runs = {
        "torch_matmul": lambda: torch.matmul(ta, tb),
        "onnxruntime_matmul": lambda: sess.run(None, {"a": a, "b": b}),
    }
    with torch.inference_mode():
        for _ in range(2):
            for run in runs.values():
                run()
        for _ in range(repeats):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - t0)
    return {name: 2.0 * size**3 / seconds for name, seconds in best.items()}


def run_ort(
    checkpoint: Optional[Path] = None,
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/ort.json"),
    threads: int = 2,
    n_short: int = 64,
    n_paragraphs: int = 16,
    paragraph_words: int = 300,
    short_batch: int = 64,
    paragraph_batch: int = 16,
    repeats: int = 3,
) -> Dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    from spacy_modernbert.export.onnx import export_encoder, quantize_int8

    from .systems import build_pipeline

    load_before = os.getloadavg()
    torch.set_num_threads(threads)
    if checkpoint is None:
        checkpoint = bdata.ensure_checkpoint(
            Path(cache_dir) / "modernbert-base-random", "base", data_dir, log=log
        )
    checkpoint = Path(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)
    sentences = bdata.sentence_texts(data_dir)
    regimes = [
        ("short", bdata.short_docs(sentences, n_short), short_batch),
        (
            f"paragraphs (~{paragraph_words} words)",
            bdata.paragraphs(sentences, n_paragraphs, paragraph_words, offset=n_short),
            paragraph_batch,
        ),
    ]
    runners: Dict[str, Dict[str, Any]] = {}
    pipelines = {}
    for system in ("ours", "ours_int8"):
        nlp = build_pipeline(
            "ours", checkpoint, components=(), quantize="int8" if system == "ours_int8" else None
        )
        nlp.initialize()
        pipelines[system] = nlp
        runners[system] = {
            name: (lambda texts, nlp=nlp, b=b: len(list(nlp.pipe(texts, batch_size=b))))
            for name, _, b in regimes
        }
    onnx_dir = Path(cache_dir) / "ort"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path = onnx_dir / "model.onnx", onnx_dir / "model.int8.onnx"
    log(f"exporting the encoder to {fp32_path} (opset 17) and quantizing it (ORT dynamic int8)")
    encoder = pipelines["ours"].get_pipe("transformer").model.transformer.encoder
    export_encoder(encoder, fp32_path)
    quantize_int8(fp32_path, int8_path)
    for system, path in (("ort", fp32_path), ("ort_int8", int8_path)):
        runners[system] = {name: _ort_runner(path, tokenizer, threads, b) for name, _, b in regimes}

    from transformers import AutoConfig

    from .flops import flops_per_token

    config = AutoConfig.from_pretrained(str(checkpoint))
    log("measuring the fp32 GEMM peak (torch.matmul vs ONNX Runtime MatMul, 2048^2)")
    peaks_before = gemm_peaks(threads)
    rows, summary, regimes_out = [], [], []
    for name, texts, batch in regimes:
        words = sum(bdata.n_words(t) for t in texts)
        lengths = [
            len(tokenizer.backend_tokenizer.encode(" " + t, add_special_tokens=False).ids) + 2
            for t in texts
        ]
        fpt = flops_per_token(config, lengths)
        for system in SYSTEMS:  # warm-up: one pass each
            runners[system][name](texts[: max(4, batch // 4)])
        times: Dict[str, List[float]] = {s: [] for s in SYSTEMS}
        for r in range(repeats):
            order = SYSTEMS if r % 2 == 0 else tuple(reversed(SYSTEMS))
            for system in order:
                t0 = time.perf_counter()
                runners[system][name](texts)
                times[system].append(time.perf_counter() - t0)
                log(f"{name} repeat {r + 1}: {system} {len(texts) / times[system][-1]:.2f} docs/s")
        for system in SYSTEMS:
            dps = [len(texts) / t for t in times[system]]
            wps = [words / t for t in times[system]]
            rows.append(
                {
                    "system": system,
                    "regime": name,
                    "docs": len(texts),
                    "words": words,
                    "batch_size": batch,
                    "docs_per_s": statistics.median(dps),
                    "docs_per_s_range": [min(dps), max(dps)],
                    "words_per_s": statistics.median(wps),
                    "words_per_s_range": [min(wps), max(wps)],
                    "tokens": sum(lengths),
                    "flops_per_token": fpt,
                    "gflop_per_s": statistics.median(sum(lengths) * fpt / t for t in times[system])
                    / 1e9,
                    "seconds": times[system],
                }
            )
        for ours, ort in (("ours", "ort"), ("ours_int8", "ort_int8")):
            paired = [
                b / a for a, b in zip(times[ours], times[ort])
            ]  # ours speed / ORT speed, per repeat
            regimes_out.append(
                {
                    "regime": name,
                    "ratio": f"{ours}/{ort}",
                    "median": statistics.median(paired),
                    "range": [min(paired), max(paired)],
                    "per_repeat": paired,
                }
            )
            summary.append(
                {
                    "claim": f"{name}: {ours} / {ort} docs/s",
                    "figure": f"{statistics.median(paired):.2f}x",
                    "range": f"{min(paired):.2f}-{max(paired):.2f}x",
                    "baseline": f"ONNX Runtime {'int8 (quantize_dynamic)' if 'int8' in ort else 'fp32'}, ORT_ENABLE_ALL, {threads} threads",
                    "split": "CoNLL-2003 validation sentences (no selection involved)",
                    "caveat": "ours includes spaCy tokenization/alignment, ORT includes the HF tokenizer call; "
                    f"shared box, load average {load_before[0]:.1f} at start",
                }
            )
    peaks_after = gemm_peaks(threads)
    peak = max(list(peaks_before.values()) + list(peaks_after.values()))
    for row in rows:
        row["share_of_best_gemm_peak"] = row["gflop_per_s"] * 1e9 / peak
    load_after = os.getloadavg()
    import onnxruntime

    result = {
        **header(
            "ort",
            command_line("python -m benchmarks ort"),
            machine={**machine_info("cpu"), "onnxruntime": onnxruntime.__version__},
            load=[list(load_before), list(load_after)],
        ),
        "protocol": {
            "chooses": "nothing is chosen: fixed settings (ORT's fastest optimization level, same threads)",
            "reports": "CoNLL-2003 validation sentences / ~300-word paragraphs of them",
            "checkpoint": "ModernBERT-base shape, random-init, tokenizer trained on CoNLL-2003 train + SMS",
            "seeds": repeats,
            "repeats": f"{repeats} interleaved (ABAB) repeats after one warm-up pass; median and range",
            "threads": threads,
        },
        "columns": [
            "system",
            "regime",
            "docs_per_s",
            "docs_per_s_range",
            "words_per_s",
            "words_per_s_range",
            "gflop_per_s",
            "share_of_best_gemm_peak",
        ],
        "rows": rows,
        "ratios": regimes_out,
        "gemm_peak_flops_per_s": {"before": peaks_before, "after": peaks_after, "best": peak},
        "summary": summary,
    }
    for row in rows:
        print(
            f"{row['regime']:<28} {row['system']:<10} {row['docs_per_s']:8.2f} docs/s "
            f"({row['docs_per_s_range'][0]:.2f}-{row['docs_per_s_range'][1]:.2f}) {row['words_per_s']:8.1f} words/s "
            f"{row['gflop_per_s']:6.1f} GFLOP/s = {100 * row['share_of_best_gemm_peak']:.0f}% of the best GEMM"
        )
    for r in regimes_out:
        print(
            f"{r['regime']:<28} {r['ratio']:<18} {r['median']:.2f}x ({r['range'][0]:.2f}-{r['range'][1]:.2f})"
        )
    print(
        f"fp32 GEMM peak (2048^2, {threads} threads) GFLOP/s: before "
        + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in peaks_before.items())
        + "; after "
        + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in peaks_after.items())
    )
    print(f"load average: before {load_before}, after {load_after}")
    write_json(output, result)
    return result


_D = defaults(run_ort)


@app.command("ort")
def ort_cli(
    # fmt: off
    checkpoint: Checkpoint = _D["checkpoint"],
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = _D["output"],
    threads: Threads = _D["threads"],
    n_short: int = typer.Option(_D["n_short"], "--n-short"),
    n_paragraphs: int = typer.Option(_D["n_paragraphs"], "--n-paragraphs"),
    repeats: int = typer.Option(_D["repeats"], "--repeats"),
    # fmt: on
) -> None:
    """Ours (fp32, int8) vs ONNX Runtime (fp32, dynamic int8): docs/s, interleaved repeats."""
    run_ort(
        checkpoint=checkpoint,
        cache_dir=cache_dir,
        data_dir=data_dir,
        output=output,
        threads=threads,
        n_short=n_short,
        n_paragraphs=n_paragraphs,
        repeats=repeats,
    )
