"""Atomic saves of a pretraining run, and the checks that guard its output directory.

A run directory is a standard Hugging Face `ModernBertForMaskedLM` checkpoint (config,
safetensors, fast tokenizer, MLM head) plus `pretrain_state.json` (step, settings,
held-out losses: what marks it as a run) and `pretrain_optimizer.pt` (optimizer and
schedule, for `--resume`). A save writes everything into a sibling temporary directory
and only then swaps it in with renames, so a crash or a full disk mid-save leaves the
previous save in place; `recover` finishes a swap that a crash interrupted.
"""

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional

import torch

STATE_FILE = "pretrain_state.json"
OPTIMIZER_FILE = "pretrain_optimizer.pt"


class RunDirError(ValueError):
    """The output or resume directory cannot be used; the message says why and what to do."""


def _sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}.{tag}"


def recover(path: Path) -> None:
    """Finish a swap a crash interrupted: the old save is back when the new one never landed."""
    old, new = _sibling(path, "old"), _sibling(path, "new")
    if not path.exists() and old.is_dir():
        os.replace(old, path)
    for leftover in (old, new):
        if leftover.exists():
            shutil.rmtree(leftover, ignore_errors=True)


def read_state(path: Path) -> Optional[Dict[str, Any]]:
    """The run state of `path`, or None when it is not a pretraining run directory."""
    file = Path(path) / STATE_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf8"))
    except (OSError, ValueError) as err:
        raise RunDirError(f"'{file}' is unreadable ({err}); the run directory is damaged.") from err


def check_output(output: Path, resume: Optional[Path], force: bool) -> None:
    """Refuse to overwrite a directory that is not this run's (unless `force`)."""
    recover(output)
    if output.exists() and not output.is_dir():
        raise RunDirError(f"--output '{output}' is a file, not a directory.")
    if not output.is_dir() or not any(output.iterdir()) or force:
        return
    if resume is not None and output.resolve() == resume.resolve():
        return
    state = read_state(output)
    if state is not None:
        raise RunDirError(
            f"--output '{output}' holds a previous pretraining run (step {state.get('step')}). "
            f"Pass --resume {output} to continue it, or --overwrite to start over and replace it."
        )
    raise RunDirError(
        f"--output '{output}' exists and is not a pretraining run directory; refusing to replace "
        "its contents. Choose a new directory, or pass --overwrite to replace it."
    )


def save_run(
    output: Path,
    hf_shell: Any,
    state_dict: Dict[str, torch.Tensor],
    tokenizer: Any,
    state: Dict[str, Any],
    optimizer_state: Dict[str, Any],
) -> None:
    """Write a complete checkpoint next to `output`, then swap it in (atomic at the rename)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    new, old = _sibling(output, "new"), _sibling(output, "old")
    shutil.rmtree(new, ignore_errors=True)
    try:
        new.mkdir()
        hf_shell.save_pretrained(str(new), state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(str(new))
        torch.save(optimizer_state, new / OPTIMIZER_FILE)
        (new / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf8")
    except BaseException as err:
        shutil.rmtree(new, ignore_errors=True)
        if isinstance(err, OSError):
            last = read_state(output) if output.is_dir() else None
            kept = (
                f"the previous save (step {last['step']}) in '{output}' is intact"
                if last
                else "nothing was written"
            )
            raise RunDirError(
                f"Saving to '{output}' failed ({err}); {kept}. Free disk space and rerun with --resume {output}."
            ) from err
        raise
    if output.exists():
        os.replace(output, old)
    os.replace(new, output)
    shutil.rmtree(old, ignore_errors=True)


def load_optimizer_state(path: Path) -> Dict[str, Any]:
    file = Path(path) / OPTIMIZER_FILE
    if not file.is_file():
        raise RunDirError(
            f"--resume '{path}' has no {OPTIMIZER_FILE}: it is not a complete pretraining run."
        )
    return torch.load(file, map_location="cpu", weights_only=True)
