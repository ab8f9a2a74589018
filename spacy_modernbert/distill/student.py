"""The student: built from its own config, optionally started from a subset of the teacher's layers.

Layer-subset initialization (DistilBERT's recipe): when the student's encoder has the teacher's
width (hidden and intermediate sizes, heads) and the same tokenizer, its embeddings and final
norm are the teacher's and its layer i is the teacher's layer `layer_map(n, m)[i]`: evenly
spaced over the teacher's layers, first and last included. Otherwise the student keeps the
weights its config gives (its checkpoint, or random with `from_scratch`).
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from . import DistillSettingsError
from .teacher import components_by_factory

INITS = ("auto", "teacher-layers", "config")


def load_student(config_path: Path, overrides: Optional[Dict[str, Any]] = None):
    """(nlp, config) of the student config, filled, not initialized."""
    from spacy import util

    import spacy_modernbert  # noqa: F401  (registers the architecture and anomaly_scorer)

    config_path = Path(config_path)
    if not config_path.is_file():
        raise DistillSettingsError(f"Student config not found: {config_path}")
    config = util.load_config(config_path, overrides=overrides or {}, interpolate=False)
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    if "transformer" not in components_by_factory(nlp):
        raise DistillSettingsError(
            f"The student config {config_path} has no `transformer` component: distill trains a "
            "student encoder; use a config like configs/cpu_tiny.cfg."
        )
    return nlp, nlp.config


def encoder_of(nlp):
    """The PackedModernBert of a pipeline's transformer component."""
    return nlp.get_pipe(components_by_factory(nlp)["transformer"]).model


def layer_map(n_student: int, n_teacher: int) -> List[int]:
    """Teacher layer for each student layer: evenly spaced, first and last kept."""
    if n_student > n_teacher:
        raise DistillSettingsError(
            f"The student has more layers ({n_student}) than the teacher ({n_teacher})."
        )
    if n_student == 1:
        return [n_teacher - 1]
    return [round(i * (n_teacher - 1) / (n_student - 1)) for i in range(n_student)]


def _subset_state(student_sd, teacher_sd, mapping) -> Tuple[Dict[str, Any], List[str]]:
    """The student's HF state dict taken from the teacher's; and the names that do not fit."""
    new, problems = {}, []
    for key, value in student_sd.items():
        source = key
        parts = key.split(".")
        if parts[0] == "layers":
            source = ".".join(["layers", str(mapping[int(parts[1])])] + parts[2:])
        found = teacher_sd.get(source)
        if found is None or tuple(found.shape) != tuple(value.shape):
            problems.append(key)
        else:
            new[key] = found.detach().clone()
    return new, problems


def init_from_teacher(student, teacher, init: str) -> Optional[Dict[str, Any]]:
    """Copy a subset of the teacher's layers into the (initialized) student when `init` allows.

    RETURNS: {"teacher_layers": [...]} when copied, None when the student keeps its own weights.
    Raises DistillSettingsError for init="teacher-layers" when the shapes or tokenizers differ.
    """
    if init not in INITS:
        raise DistillSettingsError(f"--init must be one of {', '.join(INITS)}; got {init!r}.")
    if init == "config":
        return None
    s_model, t_model = encoder_of(student), encoder_of(teacher)
    s_enc, t_enc = s_model.transformer.encoder, t_model.transformer.encoder
    why = None
    if s_model.tokenizer.get_vocab() != t_model.tokenizer.get_vocab():
        why = "its tokenizer differs from the teacher's (give the student checkpoint the teacher's tokenizer files)"
    mapping = layer_map(s_enc.config.num_hidden_layers, t_enc.config.num_hidden_layers)
    new, problems = _subset_state(s_enc.to_hf_state_dict(), t_enc.to_hf_state_dict(), mapping)
    if why is None and problems:
        why = (
            f"{len(problems)} of its tensors differ in shape from the teacher's (e.g. {problems[0]}): "
            "layer-subset initialization needs the teacher's width, heads and intermediate size"
        )
    if why is not None:
        if init == "teacher-layers":
            raise DistillSettingsError(
                f"--init teacher-layers: the student cannot start from the teacher's layers: {why}."
            )
        return None
    import torch

    from ..encoder.modules import hf_to_ours_name

    with torch.no_grad():
        s_enc.load_state_dict({hf_to_ours_name(k): v for k, v in new.items()}, strict=True)
    s_model.transformer.apply_quantize()
    return {"teacher_layers": mapping}
