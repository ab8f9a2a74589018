"""Fixtures for pretraining tests: a tiny checkpoint and a little text (the demo corpus)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_TRAIN = ROOT / "assets" / "demo" / "train.jsonl"


@pytest.fixture(scope="session")
def pretrain_text() -> Path:
    return DEMO_TRAIN


def run_settings(**overrides) -> dict:
    """Few, small steps: each test trains for a second or two."""
    settings = dict(
        steps=4,
        lr=2e-3,
        batch_tokens=1024,
        window=64,
        save_every=100,
        eval_fraction=0.05,
        log_every=2,
        seed=0,
    )
    settings.update(overrides)
    return settings
