"""`AnomalyScorer`'s serialization: TrainablePipe's, with the cfg as exact JSON and a detector file.

Why not TrainablePipe's own: it writes cfg through srsly's ujson, which keeps ~10 decimals of
a float and rounds when reading, so the one-class statistics, and so the scores, would change
in a save/load round trip (still so with srsly 2.5.6: 99% of random floats come back changed).
Here cfg goes through the standard `json` module (exact round trip), and a fitted detector's
state is one more entry, `detector` (an .npz without pickles).

Invariants: a pipeline directory is untrusted input: the cfg is validated (`checks.check_cfg`),
the model bytes are loaded through `checks.load_model_bytes` and must hold finite weights,
and the detector state is validated by its detector; every refusal names the file.
Entries load in the order cfg, vocab, model, detector (the detector's width needs the model).
The host class provides `_load_cfg`, `_detector_bytes`, `_load_detector` and `_sync_mode`.
"""

import json
from pathlib import Path
from typing import Any, Iterable, Union

from spacy import util
from spacy.errors import Errors

from . import checks


def json_cfg(data: bytes, name: str, source: str) -> Any:
    """The JSON object stored in `data`, or a ValueError naming `source`."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"anomaly_scorer '{name}': {source} is not valid JSON ({err}).") from err


class JsonCfgSerialization:
    """to_bytes / from_bytes / to_disk / from_disk of a TrainablePipe with an exact cfg."""

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """Serialize the component (cfg, vocab, model, detector state) to a bytestring."""
        self._validate_serialization_attrs()
        serialize = {
            "cfg": lambda: json.dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": self.model.to_bytes,
            "detector": self._detector_bytes,
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()):
        """Load the component from a bytestring."""
        self._validate_serialization_attrs()
        deserialize = {
            "cfg": lambda b: self._load_cfg(
                json_cfg(b, self.name, "the cfg bytes"), "the cfg bytes"
            ),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: self._load_model(b, "the model bytes"),
            "detector": self._load_detector,
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        self._sync_mode()
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Serialize the component to a directory (cfg, model, detector)."""
        self._validate_serialization_attrs()
        serialize = {
            "cfg": lambda p: Path(p).write_text(json.dumps(self.cfg, indent=2), encoding="utf8"),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: self.model.to_disk(p),
            "detector": lambda p: Path(p).write_bytes(self._detector_bytes()),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()):
        """Load the component from a directory."""
        self._validate_serialization_attrs()

        def load_cfg(p: Path) -> None:
            if Path(p).exists():
                self._load_cfg(json_cfg(Path(p).read_bytes(), self.name, str(p)), str(p))

        deserialize = {
            "cfg": load_cfg,
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": lambda p: self._load_model(Path(p).read_bytes(), str(p)),
            "detector": lambda p: self._load_detector(
                Path(p).read_bytes() if Path(p).exists() else b""
            ),
        }
        util.from_disk(path, deserialize, exclude)
        self._sync_mode()
        return self

    def _load_model(self, data: bytes, source: str) -> None:
        try:
            checks.load_model_bytes(self.model, data, self.name, source)
        except AttributeError:
            raise ValueError(Errors.E149) from None
        checks.check_finite_params(self.model, self.name, source)
