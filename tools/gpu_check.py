"""Every GPU path in one command, from a checkout: `python -m tools.gpu_check --output gpu_report`.

Not in the installed package (it was, with steps that need a repository checkout): steps 3
and 4 run the weasel project and the benchmarks of this checkout (ROOT).

On a CUDA machine it runs, in order, and writes one report (`gpu_report.md` + `.json`):

1. attention-path parity: our packed encoder with `sdpa`, `eager` and `varlen`, in fp32 and
   with bf16 autocast (`mixed_precision`), against `transformers.ModernBertModel` in fp32
   on the tiny checkpoint, over sequences that use every attention layout (solo, padded
   buckets, stream blocks); HF's own bf16 error is the anchor for ours;
2. one training step on cupy (`spacy.require_gpu`): transformer + ner listener, finite loss;
3. `weasel run all` with the GPU vars (`--vars.gpu_id 0 --vars.config configs/gpu_base.cfg`)
   on the tiny checkpoint, in a scratch copy of the project;
4. `python -m benchmarks speed --gpu-id 0` (from a checkout: the benchmarks are not in the package).

Without CUDA it writes the report with every check skipped and the reason, and exits 0;
with CUDA it exits 1 if any check failed. Only torch, transformers, spaCy and (for step 2)
cupy are needed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sdpa", "eager", "varlen")
# sequence lengths covering a solo sequence (>= SOLO_LENGTH), a padded bucket, and the
# stream-blocked sliding window of the tiny checkpoint (window 16)
LENGTHS = [300, 170, 45, 40, 3]
FP32_TOLERANCE = 1e-4  # relative error (Frobenius) against HF fp32
BF16_FLOOR = 1e-2  # bf16 runs may be off by 3x HF's own bf16 error, or this, whichever is larger


def cuda_reason() -> Optional[str]:
    """None when a CUDA device can run the checks, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return f"no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False)"
    return None


def _relative_error(ours, ref) -> float:
    return float((ours.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-12))


def attention_parity(checkpoint: Path, device_name: str = "cuda") -> List[Dict[str, Any]]:
    """Our encoder per backend and precision vs HF fp32; one row per (backend, dtype).

    `device_name` is "cuda" here; tests run the same code on "cpu" (no varlen, no bf16).
    """
    import torch
    from transformers import ModernBertModel

    from spacy_modernbert.encoder.attention import varlen_available
    from spacy_modernbert.encoder.checkpoint import load_checkpoint
    from spacy_modernbert.encoder.packed import PackedModernBert

    device = torch.device(device_name)
    hf = (
        ModernBertModel.from_pretrained(str(checkpoint), attn_implementation="sdpa")
        .to(device)
        .eval()
    )
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randint(5, hf.config.vocab_size, (n,), generator=gen) for n in LENGTHS]
    with torch.no_grad():
        ref = torch.cat([hf(input_ids=s[None].to(device)).last_hidden_state[0] for s in seqs])
        with torch.autocast(device.type, dtype=torch.bfloat16):
            hf_bf16 = torch.cat(
                [hf(input_ids=s[None].to(device)).last_hidden_state[0] for s in seqs]
            )
    hf_bf16_error = _relative_error(hf_bf16, ref)
    encoder, _ = load_checkpoint(checkpoint)
    ids = torch.cat(seqs).to(device)
    pos = torch.cat([torch.arange(n) for n in LENGTHS]).to(device)
    groups = [(0, int(ids.shape[0]), list(LENGTHS))]
    every = torch.arange(ids.shape[0], device=device)
    rows = []
    for backend in BACKENDS:
        for bf16 in (False, True):
            row: Dict[str, Any] = {
                "backend": backend,
                "precision": "bf16 autocast" if bf16 else "fp32",
            }
            if backend == "varlen" and not varlen_available(device):
                row.update(
                    status="skipped",
                    reason=f"no varlen kernel on '{device.type}' with torch {torch.__version__}",
                )
                rows.append(row)
                continue
            # varlen's flash kernel computes attention in bf16 even in an fp32 run
            loose = bf16 or backend == "varlen"
            tolerance = max(3 * hf_bf16_error, BF16_FLOOR) if loose else FP32_TOLERANCE
            model = PackedModernBert(encoder, backend, mixed_precision=bf16).to(device).eval()
            with torch.no_grad():
                ours = model(ids, pos, groups, every)
            model.train()
            out = model(ids, pos, groups, every)
            out.float().pow(2).mean().backward()
            grads_finite = all(
                bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None
            )
            model.zero_grad(set_to_none=True)
            error = _relative_error(ours, ref)
            row.update(
                relative_error=error,
                tolerance=tolerance,
                hf_bf16_relative_error=hf_bf16_error,
                max_abs_diff=float((ours - ref).abs().max()),
                backward_finite=grads_finite,
                status="passed" if error <= tolerance and grads_finite else "failed",
            )
            rows.append(row)
    return rows


def training_step(checkpoint: Path) -> Dict[str, Any]:
    """One `nlp.update` of transformer + ner on cupy."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "cupy is not installed: pip install -e '.[cuda12x]'"}
    import spacy
    from spacy.training import Example

    spacy.require_gpu(0)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-modernbert.ModernBertTransformer.v1",
                "name": str(checkpoint),
                "mixed_precision": True,
            }
        },
    )
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "extra_state_tokens": False,
                "hidden_width": 32,
                "maxout_pieces": 2,
                "use_upper": False,
                "tok2vec": {
                    "@architectures": "spacy-transformers.TransformerListener.v1",
                    "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"},
                },
            }
        },
    )
    data = [
        ("Maria Lopez flew to London on Monday.", [(0, 11, "PERSON"), (19, 25, "GPE")]),
        ("The api gateway in Frankfurt failed at noon.", [(19, 28, "GPE")]),
    ] * 4
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": ents}) for t, ents in data]
    optimizer = nlp.initialize(lambda: examples)
    losses: Dict[str, float] = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    doc = nlp("Maria Lopez flew to London.")
    array = doc._.trf_data.model_output.last_hidden_state
    finite = all(v == v and abs(v) != float("inf") for v in losses.values())
    on_gpu = type(array).__module__.startswith("cupy")
    return {
        "status": "passed" if finite and on_gpu else "failed",
        "losses": losses,
        "trf_data_array": f"{type(array).__module__}.{type(array).__name__}",
    }


def _run(cmd: List[str], cwd: Path, timeout: int) -> Dict[str, Any]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    start = time.time()
    try:
        result = subprocess.run(
            cmd, cwd=str(cwd), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {
            "status": "failed",
            "reason": f"timed out after {timeout} s",
            "command": " ".join(cmd),
        }
    return {
        "status": "passed" if result.returncode == 0 else "failed",
        "command": " ".join(cmd),
        "seconds": round(time.time() - start, 1),
        "output_tail": (result.stdout + result.stderr)[-3000:],
    }


def weasel_run_all(timeout: int) -> Dict[str, Any]:
    """`weasel run all` with the GPU vars, in a scratch copy of the project."""
    if not (ROOT / "project.yml").is_file():
        return {
            "status": "skipped",
            "reason": "not run from a repository checkout (no project.yml)",
        }
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-weasel-"))
    shutil.copy(ROOT / "project.yml", scratch)
    shutil.copytree(ROOT / "configs", scratch / "configs")
    shutil.copytree(ROOT / "assets" / "demo", scratch / "assets" / "demo")
    cmd = [
        sys.executable,
        "-m",
        "weasel",
        "run",
        "all",
        ".",
        "--vars.gpu_id",
        "0",
        "--vars.config",
        "configs/gpu_base.cfg",
    ]
    result = _run(cmd, scratch, timeout)
    metrics = sorted((scratch / "metrics").glob("*.json")) if (scratch / "metrics").is_dir() else []
    result["metrics"] = {p.name: json.loads(p.read_text()) for p in metrics[:3]}
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def speed_benchmark(output: Path, data_dir: Optional[Path], timeout: int) -> Dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "speed",
        "--gpu-id",
        "0",
        "--output",
        str(output / "speed.json"),
    ]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    result = _run(cmd, ROOT, timeout)
    if (output / "speed.json").is_file():
        result["results"] = str(output / "speed.json")
    return result


def _guarded(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as err:  # a check that crashes is a failed check, reported with its trace
        return {
            "status": "failed",
            "reason": f"{type(err).__name__}: {err}",
            "trace": traceback.format_exc()[-3000:],
        }


def run_checks(
    output: Path, skip: List[str], data_dir: Optional[Path] = None, timeout: int = 3600
) -> Dict[str, Any]:
    """Run every check (or skip them all on CPU) and write the report; returns it."""
    output.mkdir(parents=True, exist_ok=True)
    reason = cuda_reason()
    report: Dict[str, Any] = {"cuda": reason is None}
    names = ["attention_parity", "training_step", "weasel_run_all", "speed_benchmark"]
    if reason is not None:
        report["skipped"] = reason
        report["checks"] = {name: {"status": "skipped", "reason": reason} for name in names}
    else:
        import torch
        import transformers

        report["device"] = torch.cuda.get_device_name(0)
        report["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
        from spacy_modernbert.tiny import create_tiny_checkpoint

        checkpoint = create_tiny_checkpoint(
            Path(tempfile.mkdtemp(prefix="gpu-check-ckpt-")) / "tiny"
        )
        steps = {
            "attention_parity": lambda: _guarded(lambda: attention_parity(checkpoint)),
            "training_step": lambda: _guarded(lambda: training_step(checkpoint)),
            "weasel_run_all": lambda: _guarded(lambda: weasel_run_all(timeout)),
            "speed_benchmark": lambda: _guarded(lambda: speed_benchmark(output, data_dir, timeout)),
        }
        report["checks"] = {}
        for name in names:
            if name in skip:
                report["checks"][name] = {"status": "skipped", "reason": "--skip"}
                continue
            print(f"[gpu_check] {name} ...", flush=True)
            report["checks"][name] = steps[name]()
            print(f"[gpu_check] {name}: {_status(report['checks'][name])}", flush=True)
    report["failed"] = [n for n, c in report["checks"].items() if _status(c) == "failed"]
    (output / "gpu_report.json").write_text(json.dumps(report, indent=2, default=str))
    (output / "gpu_report.md").write_text(render(report))
    return report


def _status(check: Any) -> str:
    if isinstance(check, list):
        states = {row["status"] for row in check}
        return "failed" if "failed" in states else "passed" if "passed" in states else "skipped"
    return check["status"]


def render(report: Dict[str, Any]) -> str:
    lines = ["# GPU check", ""]
    if not report["cuda"]:
        lines += [f"Skipped: {report['skipped']}.", ""]
    else:
        lines += [f"Device: {report['device']}; versions: {report['versions']}", ""]
    parity = report["checks"]["attention_parity"]
    if isinstance(parity, list):
        lines += [
            "| backend | precision | status | rel. error vs HF fp32 | tolerance | HF bf16 rel. error | backward finite |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in parity:
            lines.append(
                f"| {row['backend']} | {row['precision']} | {row['status']} | {row.get('relative_error', '')} | "
                f"{row.get('tolerance', '')} | {row.get('hf_bf16_relative_error', '')} | {row.get('backward_finite', row.get('reason', ''))} |"
            )
        lines.append("")
    for name, check in report["checks"].items():
        if isinstance(check, list):
            continue
        detail = check.get("reason") or check.get("command") or ""
        lines.append(f"- **{name}**: {check['status']} {detail}")
    lines += ["", f"Failed: {', '.join(report['failed']) or 'none'}", ""]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.gpu_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output", type=Path, default=Path("gpu_report"), help="report directory")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated checks to skip (attention_parity, training_step, weasel_run_all, speed_benchmark)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="benchmark data (default: the benchmark's ../shared/data)",
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per subprocess check")
    args = parser.parse_args(argv)
    report = run_checks(
        args.output, [s for s in args.skip.split(",") if s], args.data_dir, args.timeout
    )
    print((args.output / "gpu_report.md").read_text())
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
