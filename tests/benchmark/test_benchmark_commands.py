"""The benchmark commands (`python -m benchmarks`, from the checkout) run end to end on tiny inputs and write well-formed JSON.

No timing assertions: only that every system ran and the numbers are finite and sane.
"""

import json
import math
from pathlib import Path

import numpy
import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from spacy_modernbert.encoder.quantize import capability, native_bf16

CONLL = """EU B-ORG 0
rejects O 0
German B-MISC 0
call O 0
to O 0
boycott O 0
British B-MISC 0
lamb O 0
. O 0

Peter B-PER 0
Blackburn I-PER 0
flew O 0
to O 0
Paris B-LOC 0
on O 0
Monday O 0
. O 0

"""

SMS_HAM = [
    "Ok see you at six then",
    "Are you coming home for dinner tonight",
    "I will call you later when I am free",
]
SMS_SPAM = [
    "WINNER! Claim your free prize now, text WIN to 80086",
    "Free entry in a weekly comp, text FA to 87121",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-data")
    (root / "conll2003").mkdir()
    (root / "conll2003" / "train.iob").write_text(CONLL * 6, encoding="utf8")
    (root / "conll2003" / "valid.iob").write_text(CONLL * 6, encoding="utf8")
    (root / "sms_spam").mkdir()
    lines = [f"ham\t{t}" for t in SMS_HAM * 4] + [f"spam\t{t}" for t in SMS_SPAM * 4]
    (root / "sms_spam" / "SMSSpamCollection").write_text("\n".join(lines) + "\n", encoding="utf8")
    (root / "clinc150").mkdir()
    clinc = {
        "train": [[f"{t} please {i}", "intent"] for i, t in enumerate(SMS_HAM * 2)],
        "val": [[f"{t} now {i}", "intent"] for i, t in enumerate(SMS_HAM)],
        "oos_train": [[f"{t} {i}", "oos"] for i, t in enumerate(SMS_SPAM)],
        "oos_val": [[f"{t} again {i}", "oos"] for i, t in enumerate(SMS_SPAM)],
    }
    (root / "clinc150" / "clinc150_train_val.json").write_text(json.dumps(clinc), encoding="utf8")
    return root


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_speed_command_writes_json(tiny_checkpoint, data_dir, tmp_path):
    out = tmp_path / "speed.json"
    result = CliRunner().invoke(
        app,
        [
            "speed",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data_dir),
            "--output",
            str(out),
            "--threads",
            "1",
            "--n-short",
            "4",
            "--n-paragraphs",
            "1",
            "--paragraph-words",
            "30",
            "--long-tokens",
            "120",
            "--train-batch",
            "2",
            "--train-updates",
            "1",
            "--repeats",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["benchmark"] == "speed" and data["protocol"]["seeds"] == 3 and data["load_avg"]
    # every system timed once per round, 3 rounds; the figure is the median, inside the range of its samples
    for regime in data["inference"]:
        for m in regime["systems"].values():
            assert (
                len(m["seconds_samples"]) == 3 and m["seconds"] == sorted(m["seconds_samples"])[1]
            )
            assert m["words_per_s_range"][0] <= m["words_per_s"] <= m["words_per_s_range"][1]
        paired = regime["paired_ratios"]["ours/spacy_transformers_baseline"]
        assert paired["range"][0] <= paired["median"] <= paired["range"][1]
    assert len(data["training"]["systems"]["ours"]["words_per_s_samples"]) == 3
    assert {row["regime"] for row in data["rows"]} >= {"short", "training (ner + anomaly_scorer)"}
    assert any(
        s["claim"].startswith("short: ours vs spacy_transformers_baseline") for s in data["summary"]
    )
    assert data["matmul"]["flops_per_s"] > 0
    assert [r["name"].split()[0] for r in data["inference"]] == ["short", "paragraphs", "long"]
    for regime in data["inference"]:
        assert regime["n_words"] > 0 and regime["n_tokens"] > 0 and regime["flops_per_token"] > 0
        expected = {"ours", "spacy_transformers_baseline", "hf_baseline", "ours_int8"} | (
            {"ours_bf16"} if native_bf16() else set()
        )
        assert set(regime["systems"]) == expected
        assert _finite(regime["ratios"]["ours_int8/ours"])
        for m in regime["systems"].values():
            assert all(
                _finite(m[k]) and m[k] > 0
                for k in ("seconds", "words_per_s", "tokens_per_s", "flop_limit_fraction")
            )
            assert m["peak_memory_mib"] is None or _finite(m["peak_memory_mib"])
        assert _finite(regime["ratios"]["ours/spacy_transformers_baseline"]) and _finite(
            regime["ratios"]["ours/hf_baseline"]
        )
    assert data["inference"][2]["n_tokens"] <= 120 and data["inference"][2]["ours_windows"] == 1
    assert set(data["training"]["systems"]) == {"ours", "spacy_transformers_baseline"}
    assert _finite(data["training"]["ratios"]["ours/spacy_transformers_baseline"])
    assert "| regime" in result.output
    assert data["settings"]["cpu_kernels"] == capability() and "ours_int8/ours" in result.output


def test_accuracy_command_writes_json(tiny_checkpoint, data_dir, tmp_path):
    out = tmp_path / "accuracy.json"
    result = CliRunner().invoke(
        app,
        [
            "accuracy",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data_dir),
            "--output",
            str(out),
            "--threads",
            "1",
            "--ner-train",
            "8",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--test-frac",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["benchmark"] == "accuracy"
    assert set(data["ner"]["systems"]) == {"ours", "hf_baseline"}
    for m in data["ner"]["systems"].values():
        assert all(0.0 <= m[k] <= 1.0 for k in ("precision", "recall", "f1"))
    assert set(data["anomaly"]["systems"]) == {"ours", "hf_baseline", "tfidf_logreg"}
    for m in data["anomaly"]["systems"].values():
        assert 0.0 <= m["roc_auc"] <= 1.0 and 0.0 <= m["average_precision"] <= 1.0
    # the TF-IDF baseline separates these two obvious classes
    assert data["anomaly"]["systems"]["tfidf_logreg"]["roc_auc"] > 0.9


def test_missing_data_dir_is_a_clear_error(tiny_checkpoint, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "accuracy",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--output",
            str(tmp_path / "a.json"),
        ],
    )
    assert result.exit_code != 0
    assert "not found" in str(result.exception)


def test_speed_rounds_alternate_their_order():
    from benchmarks.results import round_order

    assert [round_order("abc", r) for r in range(4)] == [
        list("abc"),
        list("cba"),
        list("abc"),
        list("cba"),
    ]


def test_flops_count_local_attention():
    from types import SimpleNamespace

    from benchmarks.flops import attention_flops, linear_flops_per_token

    cfg = SimpleNamespace(
        hidden_size=8,
        intermediate_size=12,
        num_hidden_layers=3,
        local_attention=4,
        global_attn_every_n_layers=3,
    )
    assert linear_flops_per_token(cfg) == 2 * 3 * (8 * 24 + 64 + 8 * 24 + 12 * 8)
    # 10 tokens: layer 0 global (10 keys each), layers 1-2 local (+-2 keys, clipped at the ends)
    local_keys = sum(min(i + 2, 9) - max(i - 2, 0) + 1 for i in range(10))
    assert attention_flops(cfg, 10) == 4 * 8 * (10 * 10 + 2 * local_keys)


def test_iob_spans_and_f1():
    from benchmarks.accuracy import span_prf
    from benchmarks.data import iob_spans

    assert iob_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "B-ORG"]) == [
        (0, 2, "PER"),
        (3, 4, "LOC"),
        (4, 5, "LOC"),
        (5, 6, "ORG"),
    ]
    scores = span_prf([[(0, 2, "PER"), (3, 4, "LOC")]], [[(0, 2, "PER"), (3, 5, "LOC")]])
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.5


def test_benchmarks_live_outside_the_package_and_default_to_the_checkouts_data():
    import benchmarks.data
    import spacy_modernbert

    root = Path(benchmarks.__file__).resolve().parent.parent
    assert not (Path(spacy_modernbert.__file__).parent / "benchmark").exists()
    assert benchmarks.data.DEFAULT_DATA_DIR == root.parent / "shared" / "data"


def test_one_class_command_chooses_on_validation_and_reports_test(
    tiny_checkpoint, data_dir, tmp_path
):
    out = tmp_path / "one_class.json"
    result = CliRunner().invoke(
        app,
        [
            "one-class",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data_dir),
            "--output",
            str(out),
            "--news-eval",
            "1",
            "--splits",
            "3",
            "--pretrain-steps",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["benchmark"] == "one_class" and data["protocol"]["seeds"] == 3
    assert data["protocol"]["chooses"].startswith("validation") and data["protocol"][
        "reports"
    ].startswith("test")
    assert {r["task"] for r in data["runs"]} == {
        "sms",
        "news-vs-sms1",
        "news-vs-sms3",
        "news-mixed",
        "clinc-oos",
    } and len(data["runs"]) == 15
    for run in data["runs"]:
        assert {"ours", "tfidf_knn", "emb_lof"} <= set(run["families"])
        for fam in run["families"].values():
            # the chosen configuration is the validation best of its grid
            assert fam["val"]["roc_auc"] == max(v for v in fam["grid"].values() if v is not None)
            assert 0.0 <= fam["test"]["roc_auc"] <= 1.0
        assert (
            len(run["families"]["tfidf_knn"]["grid"]) == 12
            and len(run["families"]["ours"]["grid"]) == 6
        )
    assert [s["claim"].split(":")[0] for s in data["summary"]] == [
        "one-class sms",
        "one-class news-vs-sms1",
        "one-class news-vs-sms3",
        "one-class news-mixed",
        "one-class clinc-oos",
    ]
    bad = CliRunner().invoke(
        app, ["one-class", "--data-dir", str(data_dir), "--objectives", "mlm,electra"]
    )
    assert bad.exit_code != 0 and "electra" in bad.output


def test_one_class_outlier_exposure_is_a_family_and_never_the_anomaly_source(
    tiny_checkpoint, data_dir, tmp_path
):
    wiki = tmp_path / "wiki.txt"
    wiki.write_text(
        "\n".join(f"the river flows past the old town number {i}" for i in range(30)) + "\n",
        encoding="utf8",
    )
    out = tmp_path / "oe.json"
    args = ["one-class", "--checkpoint", str(tiny_checkpoint), "--data-dir", str(data_dir)]
    args += ["--tasks", "clinc-oos", "--splits", "1", "--news-eval", "4", "--pretrain-steps", "0"]
    result = CliRunner().invoke(
        app,
        args
        + ["--output", str(out), "--outlier-exposure", str(wiki), "--outlier-exposure-n", "20"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["settings"]["outlier_exposure"] == {"path": str(wiki), "n": 20}
    run = data["runs"][0]
    assert len(run["families"]["ours_oe"]["grid"]) == len(run["families"]["ours"]["grid"]) == 6
    # ours_oe is scored, and is not an anchor: the best anchor is one of the anchors
    assert [s["claim"].split(": ")[1][:5] for s in data["summary"]] == ["ours ", "ours "]
    assert "outlier exposure" in data["summary"][1]["claim"]
    assert all(
        s["baseline"].split()[0] in ("tfidf_knn", "emb_lof", "emb_ecod") for s in data["summary"]
    )
    # a file that holds the task's out-of-scope utterances is refused
    clinc = json.loads((data_dir / "clinc150" / "clinc150_train_val.json").read_text())
    leaky = tmp_path / "leaky.txt"
    leaky.write_text("\n".join(t for t, _ in clinc["oos_val"]) + "\n", encoding="utf8")
    bad = CliRunner().invoke(app, args + ["--output", str(out), "--outlier-exposure", str(leaky)])
    assert bad.exit_code != 0 and "not the task's anomaly source" in bad.output
    missing = CliRunner().invoke(app, args + ["--outlier-exposure", str(tmp_path / "none.txt")])
    assert missing.exit_code != 0 and "none.txt" in missing.output


def test_one_class_summary_rows_per_checkpoint_are_ours_not_anchors():
    from benchmarks.one_class import summarize

    def fam(val, test):
        m = {"roc_auc": val, "average_precision": val, "abs_spearman_words": 0.1}
        return {"chosen": "x", "val": m, "test": dict(m, roc_auc=test), "grid": {"x": val}}

    runs = [
        {
            "task": "sms",
            "split": seed,
            "families": {
                "ours": fam(0.9, 0.90 + seed / 100),
                "ours @pretrained": fam(0.9, 0.99),
                "ours @random-init": fam(0.8, 0.80),
                "tfidf_knn": fam(0.85, 0.85),
            },
        }
        for seed in range(3)
    ]
    result = summarize(runs, ["sms"], 3, None, 200, 2048)
    assert [r["family"] for r in result["rows"]][:3] == [
        "ours",
        "ours @pretrained",
        "ours @random-init",
    ]
    # the per-checkpoint rows are ours: the claim compares ours with tfidf_knn, the one anchor
    assert len(result["summary"]) == 1 and result["summary"][0]["baseline"].startswith("tfidf_knn")
    assert "ours above" in result["summary"][0]["claim"]


def test_one_class_splits_keep_test_and_anomalies_out_of_training(data_dir):
    from benchmarks.one_class import clinc_split, news_splits, sms_split

    rows = [(y, f"{'spam' if y else 'ham'} message {i}") for i, y in enumerate([0] * 40 + [1] * 10)]
    for seed in range(3):
        s = sms_split(rows, seed)
        spam = {t for y, t in rows if y}
        assert (
            not spam & set(s["train"])
            and not set(s["train"]) & set(s["test"])
            and not set(s["val"]) & set(s["test"])
        )
        assert sum(s["test_gold"]) == 2 and sum(s["val_gold"]) == 2
    train = [f"train doc {i}" for i in range(10)]
    valid = [[f"valid doc {i} sentence {j}" for j in range(3)] for i in range(16)]
    sms = [f"sms {i}" for i in range(48)]
    splits = news_splits(train, valid, sms, 4, 0)
    assert set(splits) == {"news-vs-sms1", "news-vs-sms3", "news-mixed"}
    for _task, s in splits.items():
        assert s["train"] == train and not set(s["val"]) & set(s["test"])
        assert s["val_gold"] == s["test_gold"] == [0] * 4 + [1] * 4
    # news-mixed: a normal doc from none of the normal ones, one sentence an SMS message
    mixed = splits["news-mixed"]
    normal_docs = {
        t
        for t, y in zip(mixed["val"] + mixed["test"], [0] * 4 + [1] * 4 + [0] * 4 + [1] * 4)
        if not y
    }
    used = {d.split(" sentence")[0] for t in normal_docs for d in [t]}
    for text in mixed["val"][4:] + mixed["test"][4:]:
        assert text.count("sms ") == 1 and text.count("sentence") == 2
        doc = text[text.index("valid doc") :].split(" sentence")[0]
        assert doc not in used
    clinc = {
        "train": [[f"in {i}", "a"] for i in range(30)],
        "val": [[f"val {i}", "a"] for i in range(12)],
        "oos_train": [[f"oos {i}", "oos"] for i in range(4)],
        "oos_val": [[f"oos val {i}", "oos"] for i in range(4)],
    }
    first = clinc_split(clinc, 20, 5, 0)
    for seed in range(3):
        s = clinc_split(clinc, 20, 5, seed)
        assert s["train"] == first["train"] and len(s["train"]) == 20
        assert all(t.startswith("in ") for t in s["train"])
        assert not set(s["val"]) & set(s["test"]) and not set(s["train"]) & set(s["test"])
        assert s["val_gold"] == s["test_gold"] == [0] * 5 + [1] * 4
        assert all(t.startswith("oos") for t in s["test"][5:] + s["val"][5:])


def test_accuracy_lr_sweep_reports_every_point_and_keeps_each_systems_best(
    tiny_checkpoint, data_dir, tmp_path
):
    out = tmp_path / "accuracy.json"
    result = CliRunner().invoke(
        app,
        [
            "accuracy",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data_dir),
            "--tasks",
            "ner",
            "--output",
            str(out),
            "--threads",
            "1",
            "--ner-train",
            "8",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--lr-sweep",
            "1e-3,5e-3",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert "anomaly" not in data and data["settings"]["lr_sweep"] == [1e-3, 5e-3]
    assert data["ner"]["n_dev"] > 0 and "dev split" in data["settings"]["sweep_chooses_on"]
    for m in data["ner"]["systems"].values():
        assert [p["lr"] for p in m["sweep"]] == [1e-3, 5e-3]
        # the dev split chose the rate; the reported F1 is the test run at that rate
        assert m["chosen_on"] == "dev"
        assert m["lr"] == max(m["sweep"], key=lambda p: p["f1"])["lr"]
        assert _finite(m["train_words_per_s"]) and m["train_words_per_s"] > 0
    assert "NER sweep (dev split)" in result.output


def test_lr_sweep_chooses_on_dev_and_scores_test_once_at_the_choice():
    """No sweep point reads the test split; a test score that would pick another rate cannot
    steer the choice."""
    from benchmarks.accuracy import TUNED_LR, _sweep

    calls = []

    def train(lr, split):
        calls.append((lr, split))
        # dev prefers 2e-3; test would prefer 1e-3
        return {"f1": {"dev": {1e-3: 0.5, 2e-3: 0.7}, "test": {1e-3: 0.9, 2e-3: 0.6}}[split][lr]}

    m = _sweep("ner", "ours", [1e-3, 2e-3], "f1", train)
    assert calls == [(1e-3, "dev"), (2e-3, "dev"), (2e-3, "test")]
    assert m["lr"] == 2e-3 and m["f1"] == 0.6 and m["chosen_on"] == "dev"
    calls.clear()
    m = _sweep(
        "ner", "ours", None, "f1", lambda lr, split: calls.append((lr, split)) or {"f1": 0.1}
    )
    assert calls == [(TUNED_LR["ner"]["ours"], "test")] and "sweep" not in m


def test_ner_dev_split_is_the_last_tenth_of_train_and_anomaly_dev_is_held_out(data_dir):
    from benchmarks import data as bdata

    rows = bdata.read_sms(data_dir / bdata.SMS)
    train, dev, test = bdata.stratified_split3(rows, 0.1, 0.3, 0)
    assert dev and len(train) + len(dev) + len(test) == len(rows)
    # the test split is the one the plain train/test split gives: carving dev leaves it alone
    assert test == bdata.stratified_split(rows, 0.3, 0)[1]
    pool, ner_dev = bdata.train_pool(data_dir)
    sents = bdata.read_conll(data_dir / bdata.CONLL_TRAIN)
    assert pool + ner_dev == sents and len(ner_dev) == round(0.1 * len(sents))


@pytest.mark.parametrize(
    "option", [["--lr-sweep", "fast"], ["--lr-sweep", "2"], ["--tasks", "pos"]]
)
def test_accuracy_refuses_bad_sweep_and_task_options(tiny_checkpoint, data_dir, tmp_path, option):
    result = CliRunner().invoke(
        app,
        [
            "accuracy",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data_dir),
            "--output",
            str(tmp_path / "a.json"),
            *option,
        ],
    )
    assert result.exit_code == 2 and option[0] in result.output


def test_both_schedules_warm_up_then_decay_to_zero_at_the_runs_last_step():
    import torch

    from benchmarks.accuracy import ScheduledAdamW, spacy_optimizer

    total = 20  # 10% warmup: 2 steps
    ours = spacy_optimizer(1e-3, total)
    rates = [ours.learn_rate]
    for _ in range(total):
        ours.step_schedules()
        rates.append(ours.learn_rate)
    assert rates[0] < rates[1] < rates[2] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[2:], rates[3:])) and rates[total] == pytest.approx(0.0)
    hf = ScheduledAdamW(torch.nn.Linear(2, 2), 1e-3, total)
    hf_rates = []
    for _ in range(total):
        hf_rates.append(hf.opt.param_groups[0]["lr"])
        hf.step()
    assert hf_rates[0] < hf_rates[1] == pytest.approx(1e-3)
    assert (
        all(a >= b for a, b in zip(hf_rates[1:], hf_rates[2:]))
        and hf_rates[3] < hf_rates[2]
        and 0 < hf_rates[-1] < 1e-4
    )


def test_quantized_accuracy_command_writes_json(tiny_checkpoint, data_dir, tmp_path):
    out = tmp_path / "quantized.json"
    result = CliRunner().invoke(
        app,
        [
            "quantized-accuracy",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data_dir),
            "--output",
            str(out),
            "--threads",
            "1",
            "--ner-train",
            "8",
            "--epochs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    expected = {"fp32", "int8"} | ({"bf16"} if native_bf16() else set())
    assert (
        set(data["ner"]["precisions"]) == expected
        and set(data["anomaly"]["precisions"]) == expected
    )
    assert data["ner"]["f1_difference_points"]["fp32"] == 0.0 and _finite(
        data["anomaly"]["auc_difference"]["int8"]
    )
    assert data["cpu_kernels"] == capability()


# `python -m benchmarks soak` runs `spacy train` end to end on tiny inputs and writes well-formed
# JSON; no timing or memory assertion here (tests/encoder/test_memory_soak.py holds the memory check).
def test_soak_command_writes_json(tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    (data / "conll2003").mkdir(parents=True)
    (data / "conll2003" / "train.iob").write_text(CONLL * 10, encoding="utf8")
    out = tmp_path / "soak.json"
    result = CliRunner().invoke(
        app,
        [
            "soak",
            "--checkpoint",
            str(tiny_checkpoint),
            "--data-dir",
            str(data),
            "--output",
            str(out),
            "--updates",
            "3",
            "--batch-words",
            "30",
            "--variant",
            "ours",
        ],
    )
    assert result.exit_code == 0, result.output
    res = json.loads(out.read_text())
    assert res["benchmark"] == "soak" and res["columns"] == ["system", "update", "rss_mib"]
    assert list(res)[:6] == ["benchmark", "command", "commit", "date", "machine", "load_avg"]
    assert res["date"].endswith("Z") and res["commit"] not in ("", None)
    assert [(r["system"], r["update"]) for r in res["rows"]] == [("ours", 0), ("ours", 3)]
    assert all(r["rss_mib"] > 0 for r in res["rows"])
    assert res["summary"][0]["figure"] is None  # no update 100 in a 3-update run: no ratio claimed


def test_one_class_ours_idf_pooling_reads_the_keys_of_each_text():
    """`pooling = "idf"` in ours' grid: the doc vectors are IDF-pooled with the table of the
    training texts' keys (one key per token, as encoder_features tokenizes), as the component
    pools them; a text of unseen words outranks one of training words."""
    from benchmarks.one_class_grids import ours_scores, text_keys
    from spacy_modernbert.anomaly import detectors, idf_pooling

    train = ["reset my password", "reset the password", "my card is lost", "lost my card"] * 3
    val, test = ["reset my card", "volcano eruption tonight"], ["lost password"]
    keys = {"train": text_keys(train), "val": text_keys(val), "test": text_keys(test)}
    assert [len(k) for k in keys["val"]] == [3, 3]
    rng = numpy.random.RandomState(0)
    vectors = {}  # one random vector per word: a bag of words

    def feats(texts):
        T = [
            numpy.stack([vectors.setdefault(w, rng.normal(size=8)) for w in t.split()])
            for t in texts
        ]
        return numpy.stack([t.mean(axis=0) for t in T]), T

    f = {"train": feats(train), "val": feats(val), "test": feats(test), "keys": keys}
    cfg = {"name": "knn k2 idf", "detector": "knn", "n_neighbors": 2, "token_neighbors": 1}
    val_s, _ = ours_scores(dict(cfg, pooling="idf"), f)
    assert val_s[1] > val_s[0]
    state = f["fitted"]["knn k2 idf"]
    assert set(idf_pooling.KEYS) <= set(state)
    expected = detectors.make_detector("knn", n_neighbors=2, pooling="idf").scores(
        state, idf_pooling.pooled(state, f["val"][1], keys["val"])
    )
    numpy.testing.assert_allclose(val_s, expected)


def test_one_class_replaced_tokens_adds_the_detector_to_ours_and_a_row_of_its_own(
    tiny_checkpoint, data_dir, tmp_path
):
    out = tmp_path / "rtd.json"
    args = ["one-class", "--checkpoint", str(tiny_checkpoint), "--data-dir", str(data_dir)]
    args += ["--tasks", "clinc-oos", "--splits", "1", "--news-eval", "4", "--pretrain-steps", "0"]
    result = CliRunner().invoke(app, args + ["--output", str(out), "--replaced-tokens"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["settings"]["replaced_tokens"] is True
    assert "replaced_tokens top5" in data["settings"]["grids"]["ours"]
    run = data["runs"][0]
    assert len(run["families"]["ours"]["grid"]) == 8
    row = run["families"]["ours @replaced_tokens"]
    assert sorted(row["grid"]) == [
        "replaced_tokens @random-init",
        "replaced_tokens top5 @random-init",
    ]
    assert row["val"]["roc_auc"] == max(row["grid"].values())
    assert any(r["family"] == "ours @replaced_tokens" for r in data["rows"])
    # the restricted row is ours, never the anchor ours is compared with
    assert all(
        s["baseline"].split()[0] in ("tfidf_knn", "emb_lof", "emb_ecod") for s in data["summary"]
    )
    assert "--objectives" in CliRunner().invoke(app, ["one-class", "--help"]).output


def test_the_null_detector_is_the_best_mean_validation_configuration_of_the_committed_runs():
    """`detector = null` (DEFAULT_DETECTOR with DEFAULT_DETECTOR_SETTINGS) is the configuration
    of ours' grid with the best validation ROC AUC averaged over the five one-class protocols
    of the committed round-three runs (each protocol's splits averaged first): validation
    chooses the default, the test split never does."""
    from spacy_modernbert.anomaly import detectors

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    per: dict = {}
    for name in ("one_class_clinc_r3", "one_class_sms_r3", "one_class_news_r3"):
        for run in json.loads((results / f"{name}.json").read_text())["runs"]:
            for config, auc in run["families"]["ours"]["grid"].items():
                per.setdefault(config, {}).setdefault(run["task"], []).append(auc)
    tasks = {task for by_task in per.values() for task in by_task}
    assert len(tasks) == 5
    mean = {
        config: sum(sum(v) / len(v) for v in by_task.values()) / len(by_task)
        for config, by_task in per.items()
        if set(by_task) == tasks
    }
    best = max(mean, key=mean.get)
    s = detectors.DEFAULT_DETECTOR_SETTINGS
    expected = f"{detectors.DEFAULT_DETECTOR} k{s['n_neighbors']} tk{s['token_neighbors']}"
    assert best.split(" @")[0] == expected, (best, round(mean[best], 4))
