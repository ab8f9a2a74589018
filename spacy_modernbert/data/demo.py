"""The demo corpus: synthetic IT incident reports with entities and an anomaly flag.

Seeded and deterministic (the standard library's `random.Random` only). Every report is
1-4 sentences built by concatenating template fragments and entity values, recording the
character offsets of each entity as it is appended (never by searching the finished text).

Entity labels: HOST, IP, SERVICE, PERSON, ERROR, TEAM, TIME.

About `anomaly_rate` of the reports are anomalous. The anomaly is in what the story says,
not in a giveaway word: anomalous reports are built from the same vocabulary, sentence
shapes and entity types as the normal ones, and most of their sentences have a normal
"twin" that differs in a detail (a privileged login from an outside address followed by
audit logging being switched off; data copied to a host that is not ours; a routine
cleanup that removes the recent backups too; a restart by someone outside the on-call
team; a timeline whose response comes before the alert; alerts muted for days instead of
minutes...). A bag-of-words model can pick up some of these cues but not all of them.

This module is the generator; the vocabulary and the drawn values are in `demo_cast.py`, the
scenarios in `demo_scenarios.py` (normal) and `demo_anomalies.py` (anomalous). The names they
define that tests and users import from here stay importable from here.

Invariant: the same arguments (n_docs, anomaly_rate, seed) always give byte-identical records.
"""

import random
import re
from typing import Dict, List, Optional, Union

from .demo_anomalies import ANOMALOUS
from .demo_cast import (  # noqa: F401  (re-exported: the corpus's vocabulary)
    BUSINESS_TEAMS,
    ENTITY_LABELS,
    ERRORS,
    EXTERNAL_HOSTS,
    FIRST_NAMES,
    HOST_ENVS,
    HOST_ROLES,
    INFRA_TEAMS,
    LAST_NAMES,
    ORG_DOMAIN,
    PORTS,
    SERVICES,
    WEEKDAYS,
    Cast,
)
from .demo_scenarios import NORMAL, Scenario
from .splits import stratified_split

_SLOT = re.compile(r"\{([A-Za-z0-9_]+)\}")


class _Builder:
    """Concatenate text fragments, recording entity offsets as they are appended."""

    def __init__(self) -> None:
        self.parts: List[str] = []
        self.length = 0
        self.entities: List[List[Union[int, str]]] = []

    def add(self, text: str, label: Optional[str] = None) -> None:
        if label is not None:
            self.entities.append([self.length, self.length + len(text), label])
        self.parts.append(text)
        self.length += len(text)

    def render(self, template: str, ctx: Cast) -> None:
        pos = 0
        for match in _SLOT.finditer(template):
            if match.start() > pos:
                self.add(template[pos : match.start()])
            self.add(*ctx.get(match.group(1)))
            pos = match.end()
        if pos < len(template):
            self.add(template[pos:])

    @property
    def text(self) -> str:
        return "".join(self.parts)


SENTENCE_WEIGHTS = (1, 3, 4, 3)  # for 1, 2, 3 or 4 sentences
MIN_WORDS = 15
MAX_WORDS = 60


def _pick_parts(rng: random.Random, scenario: Scenario) -> List[int]:
    """Which sentence slots to use: the required ones plus a random ordered subset of the rest."""
    parts = scenario["parts"]
    required = list(scenario["required"])
    target = rng.choices(range(1, 5), weights=SENTENCE_WEIGHTS)[0]
    target = max(len(required), min(target, len(parts)))
    optional = [i for i in range(len(parts)) if i not in required]
    chosen = required + rng.sample(optional, target - len(required))
    return sorted(chosen)


def generate_report(rng: random.Random, anomalous: bool) -> Dict[str, object]:
    """One incident report as a JSONL record (text, entities, anomaly).

    rng (random.Random): the random generator (advanced by the call).
    anomalous (bool): draw from the anomalous scenarios instead of the normal ones.
    RETURNS (dict): `{"text": str, "entities": [[start, end, label], ...], "anomaly": 0|1}`
        with exact character offsets (end exclusive), 15-60 words.
    """
    scenarios = ANOMALOUS if anomalous else NORMAL
    for _ in range(100):
        scenario = rng.choices(scenarios, weights=[s["weight"] for s in scenarios])[0]
        ctx = Cast(rng, night=bool(scenario["night"]))
        builder = _Builder()
        for k, index in enumerate(_pick_parts(rng, scenario)):
            if k:
                builder.add(" ")
            builder.render(rng.choice(scenario["parts"][index]), ctx)
        text = builder.text
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return {"text": text, "entities": builder.entities, "anomaly": int(anomalous)}
    raise RuntimeError("could not generate a report of the required length")  # pragma: no cover


def generate_demo_records(
    n_docs: int = 600, anomaly_rate: float = 0.1, seed: int = 0
) -> List[Dict[str, object]]:
    """Generate the demo corpus: `n_docs` reports, round(n_docs * anomaly_rate) of them anomalous.

    n_docs (int): number of reports (at least 1).
    anomaly_rate (float): fraction of anomalous reports, in [0, 1].
    seed (int): the seed; the same arguments always give the same records.
    RETURNS (List[dict]): JSONL records (see `generate_report`), anomalies at random positions.
    RAISES ValueError: n_docs < 1 or anomaly_rate outside [0, 1].
    """
    if n_docs < 1:
        raise ValueError(f"n_docs must be at least 1, got {n_docs}")
    if not 0.0 <= anomaly_rate <= 1.0:
        raise ValueError(f"anomaly_rate must be between 0 and 1, got {anomaly_rate}")
    rng = random.Random(seed)
    n_anomalies = int(round(n_docs * anomaly_rate))
    anomalous = set(rng.sample(range(n_docs), n_anomalies))
    return [generate_report(rng, i in anomalous) for i in range(n_docs)]


def generate_demo_splits(
    n_docs: int = 600,
    anomaly_rate: float = 0.1,
    seed: int = 0,
    dev_frac: float = 0.15,
    test_frac: float = 0.15,
) -> Dict[str, List[Dict[str, object]]]:
    """Generate the demo corpus and split it 70/15/15 into train/dev/test, stratified by anomaly.

    n_docs (int): number of reports.
    anomaly_rate (float): fraction of anomalous reports.
    seed (int): the seed of both the generator and the split.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    RETURNS (Dict[str, List[dict]]): {"train": [...], "dev": [...], "test": [...]}.
    """
    records = generate_demo_records(n_docs, anomaly_rate, seed)
    splits = stratified_split([r["anomaly"] for r in records], dev_frac, test_frac, seed)
    return {name: [records[i] for i in idx] for name, idx in zip(("train", "dev", "test"), splits)}
