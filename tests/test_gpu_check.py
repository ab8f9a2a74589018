"""The one-command GPU check: skipped cleanly on CPU; its parity code path runs anywhere."""

import json
import warnings

import pytest
import torch

from tools import gpu_check

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real checks")
def test_skipped_on_cpu_with_a_reason(tmp_path, capsys):
    assert gpu_check.main(["--output", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_report.json").read_text())
    assert report["cuda"] is False and "no CUDA device" in report["skipped"]
    assert {c["status"] for c in report["checks"].values()} == {"skipped"}
    assert report["failed"] == []
    assert "Skipped: no CUDA device" in capsys.readouterr().out


def test_parity_check_code_runs_on_cpu(tiny_checkpoint):
    """The GPU parity function on the CPU: sdpa and eager compared, varlen skipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mixed_precision on CPU warns: runs in fp32
        rows = gpu_check.attention_parity(tiny_checkpoint, "cpu")
    by = {(r["backend"], r["precision"]): r for r in rows}
    assert len(rows) == 6
    assert by[("varlen", "fp32")]["status"] == "skipped"
    for backend in ("sdpa", "eager"):
        row = by[(backend, "fp32")]
        assert row["status"] == "passed" and row["relative_error"] < 1e-5 and row["backward_finite"]
    assert "| sdpa | fp32 | passed" in gpu_check.render(
        {"cuda": False, "skipped": "x", "checks": {"attention_parity": rows}, "failed": []}
    )


@pytest.mark.gpu
@needs_cuda
def test_attention_paths_on_cuda(tiny_checkpoint):
    rows = gpu_check.attention_parity(tiny_checkpoint)
    assert all(r["status"] != "failed" for r in rows), rows


@pytest.mark.gpu
@needs_cuda
def test_training_step_on_cupy(tiny_checkpoint):
    pytest.importorskip("cupy")
    result = gpu_check.training_step(tiny_checkpoint)
    assert result["status"] == "passed", result
