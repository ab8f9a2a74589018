"""Refusals of the `anomaly_scorer` for files and states that would give silent garbage.

A pipeline directory is input from a stranger, and a diverged training run writes a
`model-last` that loads: so the stored cfg is validated field by field (threshold in
[0, 1], one-class scale > 0, all finite), an unreadable model file is named, non-finite
weights are refused at load, a non-finite loss stops training with the likely cause, and
a listener that receives no encoder output (its upstream component disabled) is an error
at the first call instead of scores computed from zero vectors.

Thinc/numpy only (no torch), like the component.
"""

import math
from typing import Any, Dict, Iterable, Optional, Tuple

from thinc.api import Model

from .model import MODES

# The calibration may return the float just above 1.0 to flag nothing when a score is 1.0.
MAX_THRESHOLD = math.nextafter(1.0, 2.0)
LISTENER_NAMES = ("transformer-listener", "tok2vec-listener")


def _finite(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def check_threshold(threshold: Any, name: str, source: str = "") -> None:
    """A threshold is a finite number in [0, 1] (scores are probabilities)."""
    if not (_finite(threshold) and 0.0 <= float(threshold) <= MAX_THRESHOLD):
        where = f" in {source}" if source else ""
        raise ValueError(
            f"anomaly_scorer '{name}': threshold must be a finite number in [0, 1] (scores are "
            f"in [0, 1]), got {threshold!r}{where}."
        )


def check_settings(settings: Dict[str, Any], known: Tuple[str, ...], name: str) -> Dict[str, Any]:
    """Refuse settings the component does not have; returns them."""
    unknown = set(settings) - set(known)
    if unknown:
        raise TypeError(
            f"anomaly_scorer '{name}': unknown settings {sorted(unknown)}; known: {sorted(known)}"
        )
    return settings


def initial_cfg(settings: Dict[str, Any], name: str) -> Dict[str, Any]:
    """The component's cfg from its (complete) settings, each checked; the statistics unset."""
    label, mode, pos_weight = settings["label"], settings["mode"], settings["pos_weight"]
    if not isinstance(label, str) or not label:
        raise ValueError(
            f"anomaly_scorer '{name}': label must be a non-empty string, got {label!r}"
        )
    if mode not in MODES:
        raise ValueError(f"anomaly_scorer '{name}': mode must be one of {MODES}, got {mode!r}")
    check_threshold(settings["threshold"], name)
    if pos_weight is not None and not (_finite(pos_weight) and pos_weight > 0):
        raise ValueError(
            f"anomaly_scorer '{name}': pos_weight must be a positive number or null, got {pos_weight!r}"
        )
    unlabelled_as_normal = settings["unlabelled_as_normal"]
    return {
        "label": label,
        "mode": mode,
        "threshold": float(settings["threshold"]),
        "unlabelled_as_normal": bool(
            mode == "one_class" if unlabelled_as_normal is None else unlabelled_as_normal
        ),
        "pos_weight": None if pos_weight is None else float(pos_weight),
        "pos_weight_from_data": pos_weight is None,
        "one_class_location": None,
        "one_class_scale": None,
        "n_train_anomalous": 0,
        "n_train_normal": 0,
        "n_train_unlabelled": 0,
    }


def check_cfg(cfg: Any, name: str, source: str) -> Dict[str, Any]:
    """Validate a stored cfg (`source` names the file); returns it."""

    def bad(field: str, rule: str) -> ValueError:
        return ValueError(
            f"anomaly_scorer '{name}': {source} has an invalid '{field}': {rule}, got "
            f"{cfg.get(field)!r}. The file is corrupt or was edited; re-save the pipeline or "
            "fix the field (e.g. `python -m spacy_modernbert calibrate` sets the threshold)."
        )

    if not isinstance(cfg, dict):
        raise ValueError(
            f"anomaly_scorer '{name}': {source} must hold a JSON object, got {type(cfg).__name__}."
        )
    if "label" in cfg and not (isinstance(cfg["label"], str) and cfg["label"]):
        raise bad("label", "a non-empty string")
    if "mode" in cfg and cfg["mode"] not in MODES:
        raise bad("mode", f"one of {MODES}")
    if cfg.get("detector") is not None and not (
        isinstance(cfg["detector"], str) and cfg["detector"]
    ):
        raise bad("detector", "the name of a detector (a non-empty string) or null")
    if "threshold" in cfg:
        try:
            check_threshold(cfg["threshold"], name, source)
        except ValueError:
            raise bad("threshold", "a finite number in [0, 1]") from None
    for field in ("unlabelled_as_normal", "pos_weight_from_data"):
        if field in cfg and not isinstance(cfg[field], bool):
            raise bad(field, "true or false")
    if cfg.get("pos_weight") is not None and not (
        _finite(cfg["pos_weight"]) and cfg["pos_weight"] > 0
    ):
        raise bad("pos_weight", "a finite number > 0 or null")
    if cfg.get("one_class_location") is not None and not _finite(cfg["one_class_location"]):
        raise bad("one_class_location", "a finite number or null")
    if cfg.get("one_class_scale") is not None and not (
        _finite(cfg["one_class_scale"]) and cfg["one_class_scale"] > 0
    ):
        raise bad("one_class_scale", "a finite number > 0 or null")
    if (cfg.get("one_class_location") is None) != (cfg.get("one_class_scale") is None):
        raise bad(
            "one_class_scale", "set together with one_class_location (both numbers or both null)"
        )
    for field in ("n_train_anomalous", "n_train_normal", "n_train_unlabelled"):
        value = cfg.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(field, "a count (integer >= 0)")
    return cfg


def load_model_bytes(model: Model, data: bytes, name: str, source: str) -> None:
    """`model.from_bytes`, with a message naming the file when it is truncated or corrupt."""
    try:
        model.from_bytes(data)
    except AttributeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise ValueError(
            f"anomaly_scorer '{name}': {source} is unreadable, truncated or does not fit this "
            f"component's model ({type(err).__name__}: {err}). Re-save or re-download the pipeline."
        ) from err


def check_finite_params(model: Model, name: str, source: str) -> None:
    """Refuse weights with NaN or infinity (e.g. a model-last saved after divergence)."""
    xp = model.ops.xp
    for node in model.walk():
        for param in node.param_names:
            if node.has_param(param) and not bool(xp.isfinite(node.get_param(param)).all()):
                raise ValueError(
                    f"anomaly_scorer '{name}': {source} holds non-finite weights ({node.name}.{param} "
                    "has NaN or infinity); training diverged (too high a learn_rate?) or the file is "
                    "corrupt. Retrain, or use an earlier checkpoint such as model-best."
                )


def check_finite_loss(loss: float, name: str, sgd: Optional[Any]) -> None:
    """Stop training at the first non-finite loss, naming the component and the likely cause."""
    if math.isfinite(loss):
        return
    rate = getattr(sgd, "learn_rate", None)
    rate_text = f" (learn_rate {rate})" if rate is not None else ""
    raise ValueError(
        f"anomaly_scorer '{name}': the training loss is {loss} (not finite): the model has "
        f"diverged. The likely cause is too high a learning rate{rate_text}: lower "
        "[training.optimizer.learn_rate] (ModernBERT fine-tuning: 5e-5 to 8e-5) or add gradient "
        "clipping (grad_clip). Training stops here: the weights may already be non-finite, and "
        "a pipeline saved now (model-last) is refused at load."
    )


def check_finite_raw(xp: Any, raw: Any, name: str) -> None:
    """Never turn a NaN model output into a score."""
    if bool(xp.isnan(raw).any()):
        raise ValueError(
            f"anomaly_scorer '{name}': the model produced NaN for {int(xp.isnan(raw).sum())} document(s), "
            "so no score can be given. The weights (of this component or of the encoder it listens "
            "to) are not finite: training diverged or the pipeline files are corrupt."
        )


def check_listener_input(model: Model, docs: Iterable[Any], name: str) -> None:
    """A listener must find its upstream's output on every non-empty doc.

    spaCy's and spacy-transformers' listeners silently return zeros when the upstream
    component did not run (e.g. `spacy.load(..., disable=["transformer"])`), which gave
    every doc the same meaningless score.
    """
    listeners = [node for node in model.walk() if node.name in LISTENER_NAMES]
    if not listeners:
        return
    for doc in docs:
        if not len(doc):
            continue
        for node in listeners:
            if node.name == "transformer-listener":
                missing = getattr(doc._, "trf_data", None) is None
            else:
                missing = doc.tensor is None or doc.tensor.size == 0
            if missing:
                upstream = getattr(node, "upstream_name", "*")
                upstream_text = (
                    "the encoder component"
                    if upstream in (None, "*")
                    else f"the component '{upstream}'"
                )
                raise ValueError(
                    f"anomaly_scorer '{name}' listens to {upstream_text}, but the document "
                    f"{doc.text[:60]!r} carries no output of it: that component is disabled "
                    "(spacy.load(..., disable=[...]), nlp.select_pipes) or did not run on these docs. "
                    "Enable it, or pass documents processed by the whole pipeline; without it every "
                    "score would be computed from zero vectors."
                )
