"""The sweep's search space: YAML or .cfg, checked against the config with errors that name the fix."""

import pytest
from spacy.util import load_config

from spacy_modernbert.sweep.space import Dimension, SpaceError, parse_space, read_space
from tests.conftest import ROOT

CONFIG = load_config(ROOT / "configs" / "cpu_tiny.cfg", interpolate=False)
RATE = "training.optimizer.learn_rate.initial_rate"


def test_yaml_and_cfg_spaces_read_the_same(tmp_path):
    (tmp_path / "space.yml").write_text(
        f"{RATE}: {{log_uniform: [1.0e-4, 3.0e-3]}}\n"
        "training.dropout: {uniform: [0, 0.3]}\n"
        "training.batcher.size: {int: [400, 1600]}\n"
        "components.ner.model.hidden_width: {categorical: [32, 64]}\n"
    )
    (tmp_path / "space.cfg").write_text(
        "[space]\n"
        f'{RATE} = {{"log_uniform": [1e-4, 3e-3]}}\n'
        'training.dropout = {"uniform": [0, 0.3]}\n'
        'training.batcher.size = {"int": [400, 1600]}\n'
        'components.ner.model.hidden_width = {"categorical": [32, 64]}\n'
    )
    yml = parse_space(read_space(tmp_path / "space.yml"), CONFIG)
    cfg = parse_space(read_space(tmp_path / "space.cfg"), CONFIG)
    assert yml == cfg
    assert yml[0] == Dimension(RATE, "log_uniform", (1e-4, 3e-3)) and yml[0].log
    assert yml[2] == Dimension("training.batcher.size", "int", (400, 1600))


def test_shipped_space_fits_the_shipped_config():
    dims = parse_space(read_space(ROOT / "configs" / "sweep_space.yml"), CONFIG)
    assert RATE in [d.path for d in dims]


@pytest.mark.parametrize(
    "raw,message",
    [
        ({}, "empty"),
        (
            {"training.optimizer.learn_rate.peak": {"uniform": [0, 1]}},
            "no setting 'peak' in training.optimizer.learn_rate",
        ),
        ({"training.optimizer": {"uniform": [0, 1]}}, "is a config section"),
        ({RATE: {"uniform": [1e-3, 1e-3]}}, "empty range"),
        ({RATE: {"log_uniform": [0, 1e-3]}}, "positive low bound"),
        ({RATE: {"uniform": ["a", 1]}}, "must be numbers"),
        ({"training.batcher.size": {"int": [1.5, 8]}}, "must be integers"),
        ({RATE: {"normal": [0, 1]}}, "unknown distribution 'normal'"),
        ({RATE: {"categorical": []}}, "at least one value"),
        ({RATE: [1e-4, 1e-3]}, "exactly one distribution"),
        ({RATE: {"uniform": [0, 1, 2]}}, r"takes \[low, high\]"),
    ],
)
def test_malformed_space_is_refused_with_the_path_and_fix(raw, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(raw, CONFIG)


def test_unreadable_space_files(tmp_path):
    with pytest.raises(SpaceError, match="not found"):
        read_space(tmp_path / "missing.yml")
    (tmp_path / "bad.cfg").write_text("[other]\nx = 1\n")
    with pytest.raises(SpaceError, match=r"\[space\] section"):
        read_space(tmp_path / "bad.cfg")
    (tmp_path / "bad2.cfg").write_text("[space]\ntraining.dropout = {uniform: [0, 1]}\n")
    with pytest.raises(SpaceError, match="is not JSON"):
        read_space(tmp_path / "bad2.cfg")
