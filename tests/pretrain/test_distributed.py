"""torchrun data parallelism: 2 gloo processes take the same steps as 1 process on the same global batch."""

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from .conftest import ROOT


def _run(args, env):
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_two_gloo_processes_equal_one_process(tiny_checkpoint, pretrain_text, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [
        str(tiny_checkpoint),
        str(pretrain_text),
        "--steps",
        "3",
        "--batch-tokens",
        "2048",
        "--window",
        "64",
        "--lr",
        "2e-3",
        "--eval-fraction",
        "0.05",
        "--log-every",
        "1",
    ]
    _run(
        [
            sys.executable,
            "-m",
            "spacy_modernbert",
            "pretrain",
            *common,
            "--output",
            str(tmp_path / "one"),
        ],
        env,
    )
    out = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "spacy_modernbert",
            "pretrain",
            *common,
            "--output",
            str(tmp_path / "two"),
        ],
        env,
    )
    assert "over 2 processes" in out
    one, two = (
        load_file(str(tmp_path / "one" / "model.safetensors")),
        load_file(str(tmp_path / "two" / "model.safetensors")),
    )
    start = load_file(str(tiny_checkpoint / "model.safetensors"))
    moved = (
        (one["model.layers.0.attn.Wqkv.weight"] - start["layers.0.attn.Wqkv.weight"]).abs().max()
    )
    assert moved > 1e-3  # the runs trained, so equality below means something
    for key in one:
        assert torch.allclose(one[key], two[key], atol=1e-5), key
