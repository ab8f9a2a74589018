"""`python -m spacy_modernbert pretrain`: masked-LM training of a ModernBERT checkpoint on text.

The typer signature and the plain function sit side by side (as `spacy/cli/evaluate.py`);
the training itself is `spacy_modernbert/pretrain/`. Run it under
`torchrun --nproc_per_node N -m spacy_modernbert pretrain ...` for data-parallel training.
"""

from pathlib import Path
from typing import List, Optional

import typer

from ._util import app

TEXT_HELP = (
    '.txt (one document per line), .jsonl (a "text" field) or .spacy files, or directories '
    "searched for them"
)


@app.command("pretrain")
def pretrain_cli(
    base_model: str = typer.Argument(
        ...,
        help="ModernBERT checkpoint: a local directory or a hub id (with or without an MLM head)",
    ),
    text: List[Path] = typer.Argument(..., help=TEXT_HELP),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Run directory: a Hugging Face ModernBertForMaskedLM checkpoint, usable as `name` in configs",
    ),
    steps: int = typer.Option(
        1000,
        "--steps",
        help="Optimizer steps in total (0: save BASE_MODEL unchanged, with an MLM head)",
    ),
    lr: float = typer.Option(5e-4, "--lr", help="Peak learning rate (AdamW)"),
    schedule: str = typer.Option(
        "linear", "--schedule", help="After warm-up: linear (decay to 0), cosine, or constant"
    ),
    warmup_steps: Optional[int] = typer.Option(
        None, "--warmup-steps", help="Linear warm-up steps (default: 6% of --steps)"
    ),
    weight_decay: float = typer.Option(
        0.01, "--weight-decay", help="AdamW weight decay (not on norms and biases)"
    ),
    mask_prob: float = typer.Option(
        0.3, "--mask-prob", help="Fraction of pieces masked (ModernBERT used 0.3); 80/10/10 rule"
    ),
    window: int = typer.Option(
        512,
        "--window",
        help="Window length in pieces, [CLS] and [SEP] included; longer documents are split",
    ),
    batch_tokens: int = typer.Option(
        8192, "--batch-tokens", help="Pieces per optimizer step, over all processes (no padding)"
    ),
    gpu_id: int = typer.Option(
        -1,
        "--gpu-id",
        "-g",
        help="GPU id, or -1 for CPU (under torchrun: each process's local rank)",
    ),
    bf16: bool = typer.Option(
        True, "--bf16/--no-bf16", help="bf16 autocast on CUDA (ignored on CPU)"
    ),
    gradient_checkpointing: bool = typer.Option(
        False,
        "--gradient-checkpointing",
        help="Recompute layer activations in backward (less memory)",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the data order, masks and held-out split"),
    save_every: int = typer.Option(
        500, "--save-every", help="Save (and report the held-out loss) every N steps"
    ),
    eval_fraction: float = typer.Option(
        0.01,
        "--eval-fraction",
        help="Fraction of the windows held out for the MLM loss reported at each save",
    ),
    log_every: int = typer.Option(10, "--log-every", help="Print a progress line every N steps"),
    objective: str = typer.Option(
        "mlm",
        "--objective",
        help="mlm, or mlm+contrastive: also InfoNCE on two random crops of each doc "
        "(positives) against the step's other docs, for the one-class anomaly detectors; rtd: "
        "replaced-token detection (pieces replaced from the text's unigram distribution, a head "
        "finds them; ELECTRA/DATE) instead of MLM; mlm+rtd: both",
    ),
    contrastive_weight: float = typer.Option(
        1.0, "--contrastive-weight", help="Weight of the contrastive loss (mlm+contrastive)"
    ),
    contrastive_temperature: float = typer.Option(
        0.05,
        "--contrastive-temperature",
        help="InfoNCE temperature (mlm+contrastive); higher pushes normal docs apart less",
    ),
    rtd_rate: float = typer.Option(
        0.15, "--rtd-rate", help="Share of pieces replaced (rtd, mlm+rtd)"
    ),
    rtd_weight: float = typer.Option(
        1.0, "--rtd-weight", help="Weight of the replaced-token loss (rtd, mlm+rtd)"
    ),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue the run saved in this directory (from its last save)"
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        "--force",
        help="Replace --output even if it exists and is not this run (--force: the old name)",
    ),
) -> None:
    """Continue masked-language-model training of a ModernBERT checkpoint on unlabelled text."""
    pretrain(
        base_model,
        text,
        output,
        steps=steps,
        lr=lr,
        schedule=schedule,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        mask_prob=mask_prob,
        window=window,
        batch_tokens=batch_tokens,
        gpu_id=gpu_id,
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing,
        seed=seed,
        save_every=save_every,
        eval_fraction=eval_fraction,
        log_every=log_every,
        objective=objective,
        contrastive_weight=contrastive_weight,
        contrastive_temperature=contrastive_temperature,
        rtd_rate=rtd_rate,
        rtd_weight=rtd_weight,
        resume=resume,
        overwrite=overwrite,
    )


def pretrain(
    base_model: str, text: List[Path], output: Path, overwrite: bool = False, **settings
) -> dict:
    """Run `spacy_modernbert.pretrain.loop.pretrain`; exit with the message on bad input.

    overwrite (bool): replace an --output that exists and is not this run (the one overwrite
        rule of every command; the loop calls it `force`).
    """
    from wasabi import msg

    from ..encoder.checkpoint import CheckpointError
    from ..pretrain import PretrainSettingsError
    from ..pretrain.checkpoint import RunDirError
    from ..pretrain.data import PretrainDataError
    from ..pretrain.loop import pretrain as run_pretraining

    try:
        return run_pretraining(base_model, text, output, force=overwrite, **settings)
    except (CheckpointError, RunDirError, PretrainDataError, PretrainSettingsError) as err:
        msg.fail(str(err), exits=1)
