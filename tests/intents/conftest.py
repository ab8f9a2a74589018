"""A small CLINC150-shaped file: 3 intents, in-scope and out-of-scope items in train and val."""

import json

import pytest

INTENTS = ("weather", "alarm", "balance")
TEXTS = {
    "weather": ["what is the weather in {}", "will it rain in {} today", "forecast for {}"],
    "alarm": ["set an alarm for {}", "wake me up at {}", "alarm at {} please"],
    "balance": ["how much money is in {}", "balance of my {} account", "what is left in {}"],
}
FILLERS = ["paris", "seven", "checking", "boston", "noon", "savings", "tokyo", "six"]
OOS = ["tell me a joke about cats", "who won the world cup", "how do i cook rice", "play chess"]


def clinc_data(n_per_intent: int = 8, n_oos: int = 4) -> dict:
    def items(offset):
        out = []
        for intent in INTENTS:
            for i in range(n_per_intent):
                template = TEXTS[intent][i % len(TEXTS[intent])]
                out.append([template.format(FILLERS[(i + offset) % len(FILLERS)]), intent])
        return out

    return {
        "train": items(0),
        "val": items(3),
        "oos_train": [[t, "oos"] for t in OOS[:n_oos]],
        "oos_val": [[t + " now", "oos"] for t in OOS[:n_oos]],
    }


@pytest.fixture
def clinc_file(tmp_path):
    path = tmp_path / "clinc.json"
    path.write_text(json.dumps(clinc_data()))
    return path
