"""`python -m benchmarks explain`: its test docs, held-out text and retrieval metrics (no run)."""

import json
import random
from pathlib import Path

import numpy
import pytest

from benchmarks.explain import (
    ONE_CLASS,
    SUPERVISED,
    SVDD,
    choose,
    choose_checkpoints,
    insert,
    insert_sentence,
    retrieval_metrics,
    sms_task,
)
from spacy_modernbert.anomaly.explain import AUTO

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "explain.json"


def test_insert_records_where_the_passage_lies():
    rng = random.Random(0)
    for _ in range(20):
        doc = insert(["a b", "cc", "ddd"], "SPAM!", rng, "\n")
        assert doc["text"][doc["start"] : doc["end"]] == "SPAM!"
        assert doc["text"].replace("SPAM!", "").replace("\n", "") == "a bccddd"
    doc = insert_sentence("Disk full. Backup failed. Fine.", "News item .", random.Random(1))
    assert doc["text"][doc["start"] : doc["end"]] == "News item ."


def test_sms_docs_keep_training_text_out(tmp_path):
    root = tmp_path / "data"
    (root / "sms_spam").mkdir(parents=True)
    lines = [f"ham\tham message {i}" for i in range(60)] + [
        f"spam\tspam offer {i}" for i in range(20)
    ]
    (root / "sms_spam" / "SMSSpamCollection").write_text("\n".join(lines) + "\n", encoding="utf8")
    task = sms_task(root, seed=0, n_docs=5, n_train=100)
    trained = {line for t, _ in task["labelled"] for line in t.split("\n")}
    trained |= set(task["tokenizer_texts"])
    assert {line for t in task["normal"] for line in t.split("\n")} <= trained
    test_lines, dev_lines = set(), set()
    for docs, seen in ((task["docs"], test_lines), (task["dev_docs"], dev_lines)):
        for doc in docs:
            lines_of_doc = doc["text"].split("\n")
            assert len(lines_of_doc) == 6 and not set(lines_of_doc) & trained
            assert doc["text"][doc["start"] : doc["end"]].startswith("spam offer")
            seen.update(lines_of_doc)
    assert test_lines and dev_lines and not test_lines & dev_lines  # dev docs choose, test report
    # the detectors' normal docs have the test docs' shape; the head learns from messages
    assert all(len(t.split("\n")) == 6 for t in task["normal"])
    fitted = [line for t in task["normal"] for line in t.split("\n")]  # every train ham once
    assert len(fitted) == len(set(fitted)) > len(task["tokenizer_texts"]) - 6
    assert not any(line.startswith("spam") for t in task["normal"] for line in t.split("\n"))
    assert all(t.startswith("spam") == (y == 1.0) for t, y in task["labelled"])


def _run(dev, test=None):
    """A pointing run of one system: {method: {unit: {weight: hit rate}}} on dev (and test);
    a method given as {weight: rate} has those rates for sentences and 0 for lines."""

    def units(rates):
        return {
            m: v if "sentences" in v else {"sentences": v, "lines": {w: 0.0 for w in v}}
            for m, v in rates.items()
        }

    return {
        "dev": {"s": {"random": 0.2, **units(dev)}},
        "test": {"s": {"random": 0.2, **units(test or dev)}},
    }


def test_choose_picks_on_dev_only():
    runs = [
        _run(
            {"tokens": {"0.0": 0.5, "0.5": 0.7}, "occlusion": {"0.0": 0.6, "1.0": 0.6}},
            test={"tokens": {"0.0": 1.0, "0.5": 0.0}, "occlusion": {"0.0": 1.0, "1.0": 1.0}},
        ),
        _run({"tokens": {"0.0": 0.5, "0.5": 0.9}, "occlusion": {"0.0": 0.8, "1.0": 0.8}}),
    ]
    choice = choose(runs)["s"]
    assert choice["method"] == "tokens" and choice["weights"] == {"tokens": 0.5, "occlusion": 0.0}
    assert choice["passages"] == {"tokens": "sentences", "occlusion": "sentences"}
    assert choice["dev"] == {"tokens": 0.8, "occlusion": 0.7}
    # a tie goes to the earlier method
    tie = choose([_run({"tokens": {"0.0": 0.5}, "occlusion": {"0.0": 0.5}})])["s"]
    assert tie["method"] == "tokens"


def test_choose_picks_the_passage_unit_on_dev():
    by_unit = {"sentences": {"0.0": 0.6, "1.0": 0.7}, "lines": {"0.0": 0.9, "1.0": 0.9}}
    choice = choose([_run({"occlusion": by_unit}, test={"occlusion": {"0.0": 1.0, "1.0": 0.0}})])
    assert choice["s"]["passages"] == {"occlusion": "lines"}
    assert choice["s"]["weights"] == {"occlusion": 0.0}  # a tie: the weight nearest 0
    tie = {"sentences": {"0.0": 0.9}, "lines": {"0.0": 0.9}}
    assert choose([_run({"occlusion": tie})])["s"]["passages"] == {"occlusion": "sentences"}


def test_auto_is_what_the_committed_run_chose():
    """explain.AUTO (the component's "auto") holds the choices of the committed result file."""
    result = json.loads(RESULT.read_text(encoding="utf8"))
    if "auto" not in result:
        pytest.skip("the committed explain.json predates the dev choice")
    assert set(result["auto"]) == {SUPERVISED, *ONE_CLASS}
    for system, choice in result["auto"].items():
        auto = AUTO[None if system == SUPERVISED else system]  # "knn_idf": pooling = "idf"
        assert auto["method"] == choice["method"], system
        assert auto["weights"] == choice["weights"], system
        assert auto.get("passages", {}) == choice.get("passages", {}), system


def test_the_checkpoint_is_chosen_on_dev():
    choices = {
        "knn @random-init": {
            "method": "alone",
            "weights": {"alone": 1.0},
            "passages": {"alone": "lines"},
            "dev": {"alone": 0.9},
        },
        "knn @pretrained": {
            "method": "occlusion",
            "weights": {"occlusion": 0.0},
            "passages": {"occlusion": "sentences"},
            "dev": {"occlusion": 0.7},
        },
        "supervised @random-init": {
            "method": "occlusion",
            "weights": {},
            "passages": {},
            "dev": {"occlusion": 0.5},
        },
        "supervised @pretrained": {
            "method": "occlusion",
            "weights": {},
            "passages": {},
            "dev": {"occlusion": 0.5},
        },
    }
    auto = choose_checkpoints(choices)
    assert auto["knn"]["checkpoint"] == "random-init" and auto["knn"]["method"] == "alone"
    assert auto["knn"]["passages"] == {"alone": "lines"}
    assert auto["supervised"]["checkpoint"] == "pretrained"  # a tie: the pretrained one


def test_retrieval_metrics():
    vectors = numpy.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]])
    labels = ["a", "a", "b", "b", "c"]  # "c" has no relevant neighbour: left out
    m = retrieval_metrics(vectors, labels, k=1)
    assert m == {"recall@1": pytest.approx(1.0), "mrr": pytest.approx(1.0)}
    swapped = retrieval_metrics(vectors, ["a", "b", "a", "b", "c"], k=1)
    assert swapped["recall@1"] == pytest.approx(0.0) and swapped["mrr"] < 1.0


def test_every_method_a_detector_has_is_measured():
    from types import SimpleNamespace

    from benchmarks.explain import METHODS, methods_of
    from spacy_modernbert.anomaly.detectors import make_detector
    from spacy_modernbert.anomaly.explain import EXPLAIN_METHODS

    assert ("auto", *METHODS) == EXPLAIN_METHODS  # every method the component offers

    def scorer(name, **settings):
        detector = make_detector(name, **settings) if name else None
        return SimpleNamespace(_fitted=detector and SimpleNamespace(detector=detector))

    decompose = ["decompose", "decompose_projected", "decompose_calibrated"]
    assert methods_of(scorer("knn", pooling="idf")) == ["occlusion", "alone", *decompose]
    assert methods_of(scorer("mahalanobis")) == ["occlusion", "alone", *decompose]
    assert methods_of(scorer("token_knn")) == ["tokens", "occlusion", "alone"]
    assert methods_of(scorer(None)) == ["occlusion", "alone"]
    assert ONE_CLASS["knn_idf"] == ("knn", {"pooling": "idf"})


def _fake_pointing_runs(
    tmp_path, monkeypatch, objectives, steps=(5,), dev_rate=None, shapes=("small",), systems=None
):
    """run_pointing_task with the checkpoints, pipelines and pointing replaced by fakes: each
    checkpoint's dev hit rate is fixed (contrastive best, pretrained next, or `dev_rate`, by
    the checkpoint directory's name, or "KEY-SHAPE/NAME" for another encoder shape), its
    test rate 1 - dev. Every checkpoint is pretrained on the task's tokenizer_texts only."""
    from benchmarks import data as bdata
    from benchmarks import explain, one_class

    for root in (tmp_path / "one_class" / "key", tmp_path / "one_class" / "key-pretrain"):
        for name in ("pretrained", "contrastive"):  # cached: nothing is pretrained
            for n in (5, 9):
                (root / f"{name}-{n}x2048").mkdir(parents=True, exist_ok=True)
                (root / f"{name}-{n}x2048" / "config.json").write_text("{}", encoding="utf8")
    monkeypatch.setattr(bdata, "ensure_checkpoint", lambda path, *a, **k: path)
    pipelines = []

    def one_class_pipeline(ckpt, normal, names):
        pipelines.append(list(names))
        return ckpt

    monkeypatch.setattr(explain, "one_class_pipeline", one_class_pipeline)
    monkeypatch.setattr(explain, "supervised_pipeline", lambda ckpt, *a: ckpt)
    monkeypatch.setattr(explain, "svdd_pipeline", lambda ckpt, *a: ckpt)
    texts_seen = []
    real_checkpoints_for = one_class.checkpoints_for

    def checkpoints_for(key, train, *args, **kwargs):
        texts_seen.append(train)
        return real_checkpoints_for(key, train, *args, **kwargs)

    monkeypatch.setattr(one_class, "checkpoints_for", checkpoints_for)
    dev_rate = dev_rate or {
        "random-init": 0.3,
        "pretrained-5x2048": 0.6,
        "contrastive-5x2048": 0.9,
    }

    def pointing(ckpt, names, docs):
        dev = dev_rate.get(f"{ckpt.parent.name}/{ckpt.name}", dev_rate.get(ckpt.name))
        rate = dev if docs[0]["text"] == "dev" else 1.0 - dev
        occlusion = {"sentences": {"0.0": rate}, "lines": {"0.0": 0.0}}
        return {n: {"random": 0.2, "random_lines": 0.2, "occlusion": occlusion} for n in names}

    monkeypatch.setattr(explain, "pointing", pointing)
    monkeypatch.setattr(
        explain,
        "explain_cost",
        lambda nlp, names, texts, r: {
            n: {"off_s": 1.0, "occlusion": {"overhead": 0.0}} for n in names
        },
    )
    spec = {"key": "key", "tokenizer_texts": ["a"], "normal": [], "labelled": []}
    spec["docs"] = [{"text": "test"}]
    spec["dev_docs"] = [{"text": "dev"}]
    run = explain.run_pointing_task(
        "sms",
        spec,
        tmp_path,
        tmp_path,
        0,
        1,
        1,
        0,
        list(steps),
        objectives,
        list(shapes),
        explain.SYSTEMS if systems is None else systems,
    )
    # the pretraining text is the normal training text only, never a dev or test doc
    assert texts_seen and all(t is spec["tokenizer_texts"] for t in texts_seen)
    # one one-class pipeline per checkpoint, with the one-class systems asked for
    wanted = [n for n in ONE_CLASS if systems is None or n in systems]
    assert pipelines == ([wanted] * len(run["checkpoints"]) if wanted else [])
    return [{"task": "sms", "seed": 0, "n_docs": 1, **run}]


def _fake_settings(**settings):
    """The settings of a fake run of _fake_pointing_runs (5 steps), updated by `settings`."""
    return {
        "seeds": 1,
        "repeats": 1,
        "retrieval_subset": 0,
        "pretrain_steps": 5,
        "finetune_docs": 0,
        **settings,
    }


def _assert_the_dev_docs_choose(runs_of, rates, key, candidate, settings, protocol):
    """With `rates[key]` (the candidate checkpoint's dev rate) at 0.8, above the others,
    `runs_of()` runs give every system the checkpoint `candidate`, the protocol names it
    (`protocol`) and its row reports the test figure of the dev choice; a worse candidate is
    not taken, a tie goes to it (the later checkpoint). Returns the first runs."""
    from benchmarks.explain import summarize

    runs = runs_of()
    assert runs[0]["checkpoints"][-1] == candidate
    auto = choose_checkpoints(choose(runs))
    assert {a["checkpoint"] for a in auto.values()} == {candidate}
    result = summarize(runs, None, settings)
    assert protocol in result["protocol"]["checkpoint"]
    knn = [r for r in result["rows"] if r["system"].startswith(f"knn @{candidate} ")]
    assert knn and knn[0]["system"].endswith("(dev-chosen)")
    assert knn[0]["result (mean)"] == pytest.approx(0.2)  # the test docs report the dev choice
    for rate, chosen in ((0.5, "pretrained"), (0.6, candidate)):
        rates[key] = rate
        auto = choose_checkpoints(choose(runs_of()))
        assert {a["checkpoint"] for a in auto.values()} == {chosen}
    return runs


def test_objectives_add_checkpoints_the_dev_docs_choose_among(tmp_path, monkeypatch):
    from benchmarks.explain import summarize
    from benchmarks.one_class import parse_objectives

    # the default: the old checkpoint set, random-init and MLM-pretrained
    runs = _fake_pointing_runs(tmp_path, monkeypatch, ("mlm",))
    assert runs[0]["checkpoints"] == ["random-init", "pretrained"]
    assert set(runs[0]["dev"]) == {
        f"{n} @{c}" for n in [*ONE_CLASS, SVDD, SUPERVISED] for c in runs[0]["checkpoints"]
    }
    auto = choose_checkpoints(choose(runs))
    assert {a["checkpoint"] for a in auto.values()} == {"pretrained"}
    # mlm+contrastive: one more checkpoint, and the same dev rule picks it for every system
    objectives = parse_objectives("mlm,mlm+contrastive")
    runs = _fake_pointing_runs(tmp_path, monkeypatch, objectives)
    assert runs[0]["checkpoints"] == ["random-init", "pretrained", "contrastive"]
    auto = choose_checkpoints(choose(runs))
    assert set(auto) == {*ONE_CLASS, SVDD, SUPERVISED}
    assert {a["checkpoint"] for a in auto.values()} == {"contrastive"}
    result = summarize(runs, None, _fake_settings(objectives=objectives))
    assert "@contrastive" in result["protocol"]["checkpoint"]
    knn = [r for r in result["rows"] if r["system"].startswith("knn @contrastive")]
    assert knn and knn[0]["system"].endswith("(dev-chosen)") and knn[0]["result (mean)"] == 0.1
    with pytest.raises(Exception, match="unknown objectives"):
        parse_objectives("mlm,bogus")


def test_longer_pretraining_adds_checkpoints_the_dev_docs_choose_among(tmp_path, monkeypatch):
    from benchmarks.explain import parse_steps

    assert parse_steps("200") == [200] and parse_steps("200, 600") == [200, 600]
    assert parse_steps("0") == [0]
    for bad in ("", "200,200", "0,600", "600,0", "-5", "two"):
        with pytest.raises(Exception, match="distinct step counts"):
            parse_steps(bad)
    # 5,9 steps: one more checkpoint per objective, after the first count's, named by its steps
    rates = {"random-init": 0.3, "pretrained-5x2048": 0.6, "pretrained-9x2048": 0.8}
    runs = _assert_the_dev_docs_choose(
        lambda: _fake_pointing_runs(tmp_path, monkeypatch, ("mlm",), (5, 9), rates),
        rates,
        "pretrained-9x2048",
        "pretrained-9",
        _fake_settings(objectives=["mlm"], longer_pretrain_steps=[9]),
        "@pretrained-9: + pretrain mlm 9 steps",
    )
    # with two objectives: every objective's checkpoint again at every further count
    rates.update({"contrastive-5x2048": 0.1, "contrastive-9x2048": 0.1})
    runs = _fake_pointing_runs(tmp_path, monkeypatch, ("mlm", "mlm+contrastive"), (5, 9), rates)
    assert runs[0]["checkpoints"] == [
        "random-init",
        "pretrained",
        "contrastive",
        "pretrained-9",
        "contrastive-9",
    ]


def test_the_default_steps_reproduce_the_committed_result():
    """`--pretrain-steps 200` alone: summarize on the committed runs of explain.json writes its
    rows, claims, choices and auto again (the longer-steps option changes nothing by default)."""
    from benchmarks.explain import parse_steps, summarize

    result = json.loads(RESULT.read_text(encoding="utf8"))
    assert parse_steps(str(result["settings"]["pretrain_steps"])) == [200]
    settings = {**result["settings"], "longer_pretrain_steps": parse_steps("200")[1:]}
    retrieval = {
        "runs": result["retrieval_runs"],
        "systems": list(result["retrieval_runs"][0]["systems"]),
    }
    again = summarize(result["runs"], retrieval, settings)
    for key in ("protocol", "columns", "rows", "summary", "choices", "auto"):
        assert again[key] == result[key], key


def test_other_shapes_add_checkpoints_the_dev_docs_choose_among(tmp_path, monkeypatch):
    from benchmarks import data as bdata
    from benchmarks.explain import parse_shapes, parse_systems, summarize

    assert parse_shapes("small") == ["small"] and parse_shapes("small, pretrain") == [
        "small",
        "pretrain",
    ]
    for bad in ("", "pretrain", "pretrain,small", "small,small", "small,huge"):
        with pytest.raises(Exception, match="'small' first"):
            parse_shapes(bad)
    assert parse_systems("mahalanobis,knn") == ["knn", "mahalanobis"]  # SYSTEMS order
    with pytest.raises(Exception, match="unknown systems"):
        parse_systems("knn,bogus")
    # small,pretrain: one more checkpoint per objective, the 6 x 256 encoder after the first
    # step count, from its own random init (cached apart: key-pretrain), named by its shape
    spec = bdata.SHAPES["pretrain"]
    assert (spec["num_hidden_layers"], spec["hidden_size"]) == (6, 256)
    rates = {"random-init": 0.3, "pretrained-5x2048": 0.6, "key-pretrain/pretrained-5x2048": 0.8}
    shapes = ("small", "pretrain")
    settings = _fake_settings(objectives=["mlm"], shapes=list(shapes))
    runs = _assert_the_dev_docs_choose(
        lambda: _fake_pointing_runs(tmp_path, monkeypatch, ("mlm",), (5,), rates, shapes),
        rates,
        "key-pretrain/pretrained-5x2048",
        "pretrained-6x256",
        settings,
        "@pretrained-6x256: a 6 x 256 encoder",
    )
    assert runs[0]["checkpoints"] == ["random-init", "pretrained", "pretrained-6x256"]
    # --systems: a run restricted to knn and mahalanobis scores only them, and its summary
    # says so (no cost claim without the systems it compares)
    systems = ["knn", "mahalanobis"]
    runs = _fake_pointing_runs(
        tmp_path, monkeypatch, ("mlm",), (5,), rates, ("small", "pretrain"), systems
    )
    assert {s.split(" @")[0] for s in runs[0]["dev"]} == set(systems)
    assert set(runs[0]["cost"]) == set(systems)
    result = summarize(runs, None, {**settings, "systems": systems})
    assert {a for a in result["auto"]} == set(systems)
    caveats = [c["caveat"] for c in result["summary"]]
    assert any("only the systems run (--systems knn,mahalanobis)" in c for c in caveats)
    assert not any(c["claim"].startswith("explanation cost") for c in result["summary"])


def test_the_shapes_run_repeats_the_committed_cells_and_changes_no_default():
    """results/explain_shapes.json (--shapes small,pretrain --systems knn,mahalanobis): every
    4 x 128 cell equals explain.json's (the restricted run scores as the full one), its tables
    are summarize's of its runs, and AUTO is not its choice where the pre-registered condition
    (knn and mahalanobis both on @pretrained-6x256 at >= 0.80 SMS test) does not hold."""
    from benchmarks.explain import summarize

    shapes = json.loads((RESULT.parent / "explain_shapes.json").read_text(encoding="utf8"))
    full = {
        (r["task"], r["seed"]): r for r in json.loads(RESULT.read_text(encoding="utf8"))["runs"]
    }
    assert shapes["settings"]["shapes"] == ["small", "pretrain"]
    for run in shapes["runs"]:
        assert run["checkpoints"] == ["random-init", "pretrained", "pretrained-6x256"]
        for split in ("dev", "test"):
            small = {s: v for s, v in run[split].items() if not s.endswith("6x256")}
            assert small and small == {s: full[(run["task"], run["seed"])][split][s] for s in small}
    again = summarize(shapes["runs"], None, shapes["settings"])
    for key in ("protocol", "rows", "summary", "choices", "auto"):
        assert again[key] == shapes[key], key
    sms = {
        r["system"].split(" (")[0]: r["result (mean)"]
        for r in shapes["rows"]
        if r["task"] == "pointing game: sms" and r["method"].endswith("(auto)")
    }
    adopted = all(
        shapes["auto"][d]["checkpoint"] == "pretrained-6x256"
        and sms[shapes["auto"][d]["system"]] >= 0.8
        for d in ("knn", "mahalanobis")
    )
    assert not adopted and "superseded" in shapes
    default = json.loads(RESULT.read_text(encoding="utf8"))["auto"]
    for d in ("knn", "mahalanobis"):  # AUTO stays the default run's choice
        assert (AUTO[d]["method"], AUTO[d]["passages"]) == (
            default[d]["method"],
            default[d]["passages"],
        )
    assert shapes["auto"]["knn"]["method"] != AUTO["knn"]["method"]  # not followed


def test_the_svdd_run_is_summarized_and_the_refusal_follows_its_rule():
    """results/explain_svdd.json (--systems svdd): its tables are summarize's of its runs, and
    the pre-registered rule holds: the component refuses explain for svdd exactly when the dev
    choice's mean dev hit rate is below 0.80 (explain.NOT_EXPLAINED)."""
    from benchmarks.explain import summarize
    from spacy_modernbert.anomaly.explain import NOT_EXPLAINED

    svdd = json.loads((RESULT.parent / "explain_svdd.json").read_text(encoding="utf8"))
    assert svdd["settings"]["systems"] == [SVDD]
    assert {r["task"] for r in svdd["runs"]} == {"sms", "report"} and len(svdd["runs"]) == 6
    again = summarize(svdd["runs"], None, svdd["settings"])
    for key in ("protocol", "rows", "summary", "choices", "auto"):
        assert again[key] == svdd[key], key
    assert (svdd["auto"][SVDD]["dev"] < 0.8) == (SVDD in NOT_EXPLAINED)
