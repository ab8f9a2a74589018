"""The search space of a sweep: config paths and the range each one is drawn from.

A YAML file (or a `.cfg` file with a `[space]` section) maps a dotted config path to one
distribution:

    training.optimizer.learn_rate.initial_rate: {log_uniform: [1e-4, 3e-3]}
    training.dropout: {uniform: [0.0, 0.3]}
    training.batcher.size: {int: [400, 1600]}
    components.ner.model.hidden_width: {categorical: [32, 64, 128]}

Every path must name a setting the config has; errors name the path, the problem and the fix.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping

DISTRIBUTIONS = ("log_uniform", "uniform", "int", "categorical")


class SpaceError(ValueError):
    """A malformed search space (the message names the path and the fix)."""


@dataclass(frozen=True)
class Dimension:
    path: str
    kind: str
    values: tuple

    def suggest(self, trial: Any) -> Any:
        """Draw this dimension's value for an Optuna trial (the parameter name is the path)."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.path, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.path, low, high)
        return trial.suggest_float(self.path, low, high, log=self.kind == "log_uniform")

    @property
    def log(self) -> bool:
        return self.kind == "log_uniform"

    def describe(self) -> Dict[str, List[Any]]:
        return {self.kind: list(self.values)}


def read_space(path: Path) -> Dict[str, Any]:
    """The raw mapping of a YAML or .cfg space file."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"Search space file not found: {path}")
    if path.suffix == ".cfg":
        import configparser

        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # keep the paths' case
        parser.read(path, encoding="utf8")
        if not parser.has_section("space"):
            raise SpaceError(f"{path}: a .cfg search space needs a [space] section")
        raw = {}
        for key, value in parser.items("space"):
            try:
                raw[key] = json.loads(value)
            except json.JSONDecodeError as err:
                raise SpaceError(
                    f'{path}: {key} = {value} is not JSON (write e.g. {{"log_uniform": [1e-4, 3e-3]}})'
                ) from err
        return raw
    import srsly

    try:
        raw = srsly.read_yaml(path)
    except Exception as err:
        raise SpaceError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise SpaceError(f"{path}: the search space must map config paths to ranges")
    return raw


def parse_space(raw: Mapping[str, Any], config: Mapping[str, Any]) -> List[Dimension]:
    """Check a raw space against the (uninterpolated) config and return its dimensions."""
    if not raw:
        raise SpaceError("The search space is empty: name at least one config path and its range")
    dims = []
    for path, spec in raw.items():
        _check_path(path, config)
        if not isinstance(spec, dict) or len(spec) != 1:
            raise SpaceError(
                f"{path}: give exactly one distribution, e.g. {{log_uniform: [1e-4, 3e-3]}} "
                f"(one of {', '.join(DISTRIBUTIONS)})"
            )
        kind, values = next(iter(spec.items()))
        if kind not in DISTRIBUTIONS:
            raise SpaceError(
                f"{path}: unknown distribution {kind!r} (use one of {', '.join(DISTRIBUTIONS)})"
            )
        if not isinstance(values, list):
            raise SpaceError(f"{path}: {kind} takes a list, e.g. {kind}: [low, high]")
        dims.append(Dimension(str(path), kind, tuple(_check_values(path, kind, values))))
    return dims


def _check_path(path: str, config: Mapping[str, Any]) -> None:
    node: Any = config
    parts = str(path).split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(parts[:depth]) or "the config"
            known = ", ".join(sorted(node)) if isinstance(node, Mapping) else "(not a section)"
            raise SpaceError(
                f"{path}: the config has no setting {part!r} in {where} (it has: {known})"
            )
        node = node[part]
    if isinstance(node, Mapping):
        raise SpaceError(f"{path} is a config section, not a setting: name one of its settings")


def _check_values(path: str, kind: str, values: List[Any]) -> List[Any]:
    if kind == "categorical":
        if not values:
            raise SpaceError(f"{path}: categorical needs at least one value")
        if any(not isinstance(v, (str, int, float, bool)) and v is not None for v in values):
            raise SpaceError(
                f"{path}: categorical values must be strings, numbers, booleans or null"
            )
        return values
    if len(values) != 2:
        raise SpaceError(f"{path}: {kind} takes [low, high], got {values}")
    low, high = values
    numeric = (int,) if kind == "int" else (int, float)
    if any(isinstance(v, bool) or not isinstance(v, numeric) for v in (low, high)):
        what = "integers" if kind == "int" else "numbers"
        raise SpaceError(f"{path}: {kind} bounds must be {what}, got {values}")
    if not low < high:
        raise SpaceError(f"{path}: empty range {values}: low must be below high")
    if kind == "log_uniform" and low <= 0:
        raise SpaceError(f"{path}: log_uniform needs a positive low bound, got {low}")
    return [low, high] if kind == "int" else [float(low), float(high)]
