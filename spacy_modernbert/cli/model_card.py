"""`python -m spacy_modernbert model-card`: the README.md and meta.json that `spacy package` ships.

`spacy package` copies a README.md it finds in the pipeline directory into the package
(and generates its stock card only when there is none), and takes license, sources and
description from meta.json. This command writes both from what the pipeline really holds:
the base checkpoint the encoder was fine-tuned from, the components and their labels, the
anomaly extensions with the stored threshold, and the evaluation metrics.

Invariant: the card's figures are those of the pipeline it describes. `evaluate` records in
metrics.json the threshold and a fingerprint of the pipeline it scored; a metrics file of
another pipeline, or of this one at another threshold (e.g. before `calibrate`), is refused.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional

import srsly
import typer
from wasabi import msg

from ..anomaly import DEFAULT_LABEL
from ._util import app, is_installed_package, load_pipeline, pipeline_location

DEFAULT_LICENSE = "MIT"
ANOMALY_FACTORY = "anomaly_scorer"
HUB_URL = "https://huggingface.co/{name}"


@app.command("model-card")
def model_card_cli(
    # fmt: off
    pipeline: str = typer.Argument(
        ..., help="Trained (calibrated) pipeline directory, the input of `spacy package`"
    ),
    metrics: Optional[Path] = typer.Option(
        None,
        "--metrics",
        "-m",
        help="metrics.json written by `evaluate` (the test-set figures of the card)",
    ),
    license: str = typer.Option(
        DEFAULT_LICENSE, "--license", help="License of the packaged pipeline"
    ),
    base_license: Optional[str] = typer.Option(
        None,
        "--base-license",
        help="License of the base checkpoint, e.g. Apache-2.0 for answerdotai/ModernBERT-base",
    ),
    description: Optional[str] = typer.Option(
        None,
        "--description",
        help="One-line description (default: the components and the base checkpoint)",
    ),
    name: Optional[str] = typer.Option(
        None,
        "--name",
        "-n",
        help="Package name, as given to `spacy package --name` (default: meta.json's)",
    ),
    version: Optional[str] = typer.Option(
        None,
        "--version",
        "-v",
        help="Package version, as given to `spacy package --version` (default: meta.json's)",
    ),
    # fmt: on
) -> None:
    """Write the pipeline's model card (README.md) and fill meta.json for `spacy package`."""
    write_model_card(
        pipeline,
        metrics=metrics,
        license=license,
        base_license=base_license,
        description=description,
        name=name,
        version=version,
    )


def write_model_card(
    pipeline: Path,
    metrics: Optional[Path] = None,
    license: str = DEFAULT_LICENSE,
    base_license: Optional[str] = None,
    description: Optional[str] = None,
    name: Optional[str] = None,
    version: Optional[str] = None,
) -> Path:
    """Write `pipeline/README.md` and update `pipeline/meta.json` (license, sources, description).

    pipeline (Path): the pipeline directory.
    metrics (Optional[Path]): a metrics.json from `evaluate` (spaCy's evaluation scores).
    license (str): the pipeline's license.
    base_license (Optional[str]): the base checkpoint's license, if known.
    description (Optional[str]): the one-line description.
    name (Optional[str]): the package name (meta.json "name"), as `spacy package --name` sets it.
    version (Optional[str]): the package version (meta.json "version").
    RETURNS (Path): the README.md written.
    """
    if is_installed_package(pipeline):
        pipeline_location(pipeline)  # one line when it is not a package either
        msg.fail(
            f"{pipeline} is an installed package, already packaged: model-card writes into a pipeline "
            "directory (the input of `spacy package`)",
            exits=1,
        )
    pipeline = Path(pipeline)
    if not (pipeline / "meta.json").is_file():
        msg.fail(f"Not a pipeline directory (no meta.json): {pipeline}", exits=1)
    scores = read_metrics(metrics) if metrics is not None else {}
    nlp = load_pipeline(pipeline)
    if scores:
        check_metrics_match(scores, nlp, pipeline, metrics)
    meta = srsly.read_json(pipeline / "meta.json")
    base = _base_checkpoint(nlp)
    for key, value in (("name", name), ("version", version)):
        if value:
            meta[key] = value
    if description:
        meta["description"] = description
    elif not meta.get("description"):
        meta["description"] = (
            f"{', '.join(nlp.pipe_names)} on one shared ModernBERT encoder (fine-tuned from {base or 'a ModernBERT checkpoint'})."
        )
    meta["license"] = license
    if base:
        source: Dict[str, Any] = {"name": base, "license": base_license or "unknown"}
        if _is_hub_id(base):
            source["url"] = HUB_URL.format(name=base)
        meta["sources"] = [source]
    srsly.write_json(pipeline / "meta.json", meta)
    readme = pipeline / "README.md"
    readme.write_text(model_card_text(nlp, meta, scores, base, base_license), encoding="utf8")
    msg.good(f"Wrote the model card {readme} and updated {pipeline / 'meta.json'}")
    return readme


METRIC_KEYS = (
    "ents_p",
    "ents_r",
    "ents_f",
    "anomaly_auc",
    "anomaly_ap",
    "anomaly_p",
    "anomaly_r",
    "anomaly_f",
    "anomaly_fpr",
    "token_acc",
    "cats_score",
    "speed",
)


def read_metrics(path: Path) -> Dict[str, Any]:
    """The metrics.json of `evaluate`, or one line naming what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        msg.fail(f"Metrics file not found: {path}", exits=1)
    try:
        scores = srsly.read_json(path)
    except (ValueError, UnicodeDecodeError) as err:
        msg.fail(
            f"--metrics {path} is not JSON ({type(err).__name__}): pass the metrics.json written by `evaluate`",
            exits=1,
        )
    if not isinstance(scores, dict) or not any(key in scores for key in METRIC_KEYS):
        msg.fail(
            f"--metrics {path} holds no evaluation metrics (none of {', '.join(METRIC_KEYS[:6])}, ...): "
            "pass the metrics.json written by `evaluate`",
            exits=1,
        )
    return scores


def check_metrics_match(scores: Dict[str, Any], nlp: Any, pipeline: Path, metrics: Any) -> None:
    """Refuse figures of another pipeline, or of this one at another anomaly threshold."""
    from .evaluate import pipeline_fingerprint

    fix = f"run `python -m spacy_modernbert evaluate {pipeline} ...` and pass its metrics.json"
    for name, pipe in nlp.pipeline:
        if nlp.get_pipe_meta(name).factory == ANOMALY_FACTORY and "anomaly_threshold" in scores:
            threshold = float(pipe.cfg.get("threshold", 0.5))
            if (
                abs(float(scores["anomaly_threshold"]) - threshold) > 1e-9
            ):  # metrics.json keeps ~10 digits
                msg.fail(
                    f"--metrics {metrics} were scored at threshold {scores['anomaly_threshold']}, the pipeline "
                    f"stores {threshold}: {fix}",
                    exits=1,
                )
    if "pipeline_fingerprint" not in scores:
        msg.fail(
            f"--metrics {metrics} does not say which pipeline it scored (not written by this version's "
            f"`evaluate`): {fix}",
            exits=1,
        )
    if scores["pipeline_fingerprint"] != pipeline_fingerprint(pipeline):
        msg.fail(
            f"--metrics {metrics} are the scores of another pipeline (or of {pipeline} before it was "
            f"changed, e.g. by calibrate): {fix}",
            exits=1,
        )


def model_card_text(
    nlp: Any,
    meta: Dict[str, Any],
    scores: Dict[str, Any],
    base: Optional[str],
    base_license: Optional[str],
) -> str:
    """The model card as Markdown."""
    name = f"{meta.get('lang', 'en')}_{meta.get('name', 'pipeline')}"
    lines: List[str] = [
        f"# {name} {meta.get('version', '')}".rstrip(),
        "",
        meta.get("description", ""),
        "",
    ]
    rows = [
        ("Name", f"`{name}`"),
        ("Version", f"`{meta.get('version', '')}`"),
        ("spaCy", f"`{meta.get('spacy_version', '')}`"),
        (
            "Base checkpoint",
            (
                f"`{base}`"
                + _pretraining(base)
                + (f", license: {base_license}" if base_license else "")
            )
            if base
            else "n/a",
        ),
        ("Components", ", ".join(f"`{n}`" for n in nlp.pipe_names)),
        ("License", f"`{meta.get('license', '')}`"),
        ("Requires", ", ".join(f"`{r}`" for r in _requirements(nlp, meta)) or "spaCy only"),
    ]
    lines += (
        ["| Feature | Description |", "| --- | --- |"]
        + [f"| **{k}** | {v} |" for k, v in rows]
        + [""]
    )
    lines += [
        "## Components and labels",
        "",
        "| Component | Factory | Labels |",
        "| --- | --- | --- |",
    ]
    for pipe_name, pipe in nlp.pipeline:
        factory = nlp.get_pipe_meta(pipe_name).factory
        labels = list(getattr(pipe, "labels", ()) or ())
        lines.append(
            f"| `{pipe_name}` | `{factory}` | {', '.join(f'`{label}`' for label in labels) or '-'} |"
        )
    lines.append("")
    for pipe_name, pipe in nlp.pipeline:
        if nlp.get_pipe_meta(pipe_name).factory == ANOMALY_FACTORY:
            lines += _anomaly_section(pipe_name, pipe)
    lines += _distillation_section(meta.get("distillation"))
    lines += _metrics_section(scores, meta.get("performance") or {})
    lines += [
        "## Install offline",
        "",
        "The pipeline needs the `spacy-modernbert` plugin; `weasel run package` places its wheel",
        "next to the pipeline's, so both install without an index (dependencies such as spaCy and",
        "torch must already be installed or be in the same folder):",
        "",
        "```bash",
        f"pip install --no-index --find-links packages packages/{name}-{meta.get('version', '')}/dist/*.whl",
        "```",
        "",
    ]
    return "\n".join(lines)


def _anomaly_section(pipe_name: str, pipe: Any) -> List[str]:
    cfg = pipe.cfg
    label = cfg.get("label", DEFAULT_LABEL)
    return [
        f"## Anomaly scores (`{pipe_name}`)",
        "",
        f"- `doc._.anomaly_score`: a float in [0, 1], higher is more anomalous ({cfg.get('mode')} mode).",
        f"- `doc._.is_anomaly`: `doc._.anomaly_score >= {float(cfg.get('threshold', 0.5)):.6f}`, the threshold stored "
        "in the pipeline (set by `python -m spacy_modernbert calibrate`; 0.5 if it was never calibrated).",
        f'- `doc.cats["{label}"]`: the same score.',
        "",
    ]


def _distillation_section(run: Optional[Dict[str, Any]]) -> List[str]:
    """What `distill` recorded in meta["distillation"]: the teacher and how the student learnt."""
    if not run:
        return []

    def shape(enc: Dict[str, Any]) -> str:
        return f"{enc.get('layers')} layers x {enc.get('hidden_size')}" if enc else "n/a"

    layers = run.get("init_from_teacher_layers")
    return [
        "## Distillation",
        "",
        f"This pipeline is a student distilled from the teacher `{run.get('teacher')}` "
        "(`python -m spacy_modernbert distill`).",
        "",
        f"- Teacher encoder: {shape(run.get('teacher_encoder'))}; student encoder: {shape(run.get('student_encoder'))}.",
        f"- Signals: {', '.join(run.get('signals') or [])}"
        + (f" (token vectors: {run['hidden_loss']})" if run.get("hidden_loss") else "")
        + ".",
        f"- Data: {run.get('silver_docs', 0)} documents annotated by the teacher, "
        f"{run.get('gold_docs', 0)} gold documents; {run.get('steps')} updates.",
        f"- Student initialization: {'teacher layers ' + str(layers) if layers else 'its own checkpoint'}.",
        "",
    ]


def _metrics_section(scores: Dict[str, Any], performance: Dict[str, Any]) -> List[str]:
    keys = [
        ("ents_p", "NER precision"),
        ("ents_r", "NER recall"),
        ("ents_f", "NER F"),
        ("anomaly_auc", "Anomaly ROC AUC"),
        ("anomaly_ap", "Anomaly average precision"),
        ("anomaly_p", "Anomaly precision at the threshold"),
        ("anomaly_r", "Anomaly recall at the threshold"),
        ("anomaly_f", "Anomaly F at the threshold"),
        ("anomaly_fpr", "Anomaly false-positive rate at the threshold"),
    ]
    columns = [
        (title, source)
        for title, source in (("Test (`evaluate`)", scores), ("Dev (training)", performance))
        if source
    ]
    if not columns:
        return ["## Evaluation", "", "No evaluation metrics were given.", ""]
    lines = [
        "## Evaluation",
        "",
        "| Metric | " + " | ".join(t for t, _ in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for key, title in keys:
        values = [source.get(key) for _, source in columns]
        if any(isinstance(v, (int, float)) for v in values):
            lines.append(f"| {title} (`{key}`) | " + " | ".join(_fmt(v) for v in values) + " |")
    per_type = scores.get("ents_per_type") or performance.get("ents_per_type") or {}
    if per_type:
        lines += ["", "| Entity type | P | R | F |", "| --- | --- | --- | --- |"]
        lines += [
            f"| `{label}` | {_fmt(s.get('p'))} | {_fmt(s.get('r'))} | {_fmt(s.get('f'))} |"
            for label, s in sorted(per_type.items())
        ]
    lines.append("")
    return lines


def _fmt(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else "-"


def _requirements(nlp: Any, meta: Dict[str, Any]) -> List[str]:
    """The packages the wheel will require: meta.json's plus those `spacy package` adds from the config."""
    from spacy.cli.package import get_third_party_dependencies
    from spacy.util import split_requirement

    requirements = list(meta.get("requirements", []))
    existing = [split_requirement(req)[0] for req in requirements]
    return requirements + get_third_party_dependencies(nlp.config, exclude=existing)


def _base_checkpoint(nlp: Any) -> Optional[str]:
    """The `name` of a ModernBERT (or spacy-transformers) transformer in the pipeline's config."""
    for component in nlp.config.interpolate().get("components", {}).values():
        model = component.get("model", {}) if isinstance(component, dict) else {}
        if (
            isinstance(model, dict)
            and "name" in model
            and "transformer" in str(model.get("@architectures", "")).lower()
        ):
            return str(model["name"])
    return None


def _pretraining(base: str) -> str:
    """ " (masked-LM pretraining of X, N steps)" when `base` is a `pretrain` output directory."""
    from ..pretrain.checkpoint import read_state

    try:
        state = read_state(base) if Path(base).is_dir() else None
    except Exception:  # not a pretrain run directory, or an unreadable one: say nothing
        return ""
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("base_model"), str)
        or not isinstance(state.get("step"), int)
    ):
        return ""
    return f" (masked-LM pretraining of `{state['base_model']}` for {state['step']} steps with `pretrain`)"


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not Path(name).exists() and not name.startswith((".", "/"))
