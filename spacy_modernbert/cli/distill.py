"""`python -m spacy_modernbert distill`: a small student pipeline from a trained teacher pipeline.

The typer signature and the plain function sit side by side; the distillation itself is
`spacy_modernbert/distill/` (docs/distill.md). Extra `--section.key value` options override the
student config, as in `spacy train`.
"""

from pathlib import Path
from typing import List, Optional

import typer

from ._util import app, check_output, load_pipeline, pipeline_location
from .pretrain import TEXT_HELP


@app.command("distill", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def distill_cli(
    ctx: typer.Context,
    teacher: str = typer.Argument(
        ..., help="The trained teacher pipeline: a directory or an installed package"
    ),
    student_config: Path = typer.Argument(
        ...,
        help="The student's config (a smaller encoder, the same components), e.g. configs/cpu_tiny.cfg",
    ),
    text: List[Path] = typer.Argument(None, help="Unlabelled text: " + TEXT_HELP),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Run directory: model-last/ (the student pipeline), model-best/ (with --dev), teacher.spacy, state/",
    ),
    gold: Optional[Path] = typer.Option(
        None, "--gold", help="Gold training data mixed with the teacher's (.spacy)"
    ),
    dev: Optional[Path] = typer.Option(
        None,
        "--dev",
        help="Gold data scored at each --eval-every (.spacy); the best is model-best/",
    ),
    steps: int = typer.Option(1000, "--steps", help="Updates in total"),
    signals: Optional[str] = typer.Option(
        None,
        "--signals",
        help="Comma-separated: hidden (token vectors), ner (silver entities), anomaly (soft scores), "
        "textcat (soft probabilities); default: all the teacher gives and the student learns",
    ),
    hidden_loss: str = typer.Option("mse", "--hidden-loss", help="mse or cosine"),
    hidden_weight: float = typer.Option(
        1.0, "--hidden-weight", help="Weight of the token-vector loss"
    ),
    init: str = typer.Option(
        "auto",
        "--init",
        help="teacher-layers: start from a subset of the teacher's layers (same width and tokenizer); "
        "config: the student config's own weights; auto: teacher-layers when the shapes allow",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the batch order and initialization"),
    eval_every: int = typer.Option(
        200, "--eval-every", help="Save (and score --dev) every N steps"
    ),
    log_every: int = typer.Option(20, "--log-every", help="Print a progress line every N steps"),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --output from its last save"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --output if it holds another distillation run"
    ),
) -> None:
    """Distill a trained teacher pipeline into a smaller student, from unlabelled text."""
    from spacy.cli._util import parse_config_overrides

    # the variadic TEXT argument takes `--section.key value` overrides too: split them off
    text = list(text or [])
    first = next((i for i, p in enumerate(text) if str(p).startswith("--")), len(text))
    extra = [str(p) for p in text[first:]] + list(ctx.args)
    distill(
        teacher,
        student_config,
        text[:first],
        output,
        gold=gold,
        dev=dev,
        steps=steps,
        signals=signals.split(",") if signals else None,
        hidden_loss=hidden_loss,
        hidden_weight=hidden_weight,
        init=init,
        seed=seed,
        eval_every=eval_every,
        log_every=log_every,
        resume=resume,
        overwrite=overwrite,
        overrides=parse_config_overrides(extra),
    )


OWN_FILES = ("model-last", "model-best", "state", "teacher.spacy", "teacher.json")


def distill(
    teacher: str,
    student_config: Path,
    text: List[Path],
    output: Path,
    resume: bool = False,
    overwrite: bool = False,
    **settings,
) -> dict:
    """Run `spacy_modernbert.distill.loop.distill`; exit with the message on bad input."""
    import shutil

    from wasabi import msg

    from ..distill import DistillSettingsError
    from ..encoder.checkpoint import CheckpointError
    from ..pretrain.data import PretrainDataError

    location = pipeline_location(teacher)
    output = Path(output)
    if not resume:
        for name in check_output(output, overwrite, own_files=OWN_FILES):
            target = output / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    from ..distill.loop import distill as run_distillation

    try:
        return run_distillation(
            location,
            student_config,
            text,
            output,
            resume=resume,
            load_teacher=load_pipeline,
            **settings,
        )
    except (DistillSettingsError, CheckpointError, PretrainDataError) as err:
        msg.fail(str(err), exits=1)
