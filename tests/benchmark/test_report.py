"""`python -m benchmarks report`: the page's tables are generated from the committed result files."""

import json

import pytest
from typer.testing import CliRunner

from benchmarks.__main__ import app
from benchmarks.page import PAGE, load_results, render, update_page
from benchmarks.results import RESULTS_DIR, git_commit, head_commit, header, header_of_runs, record


def _result(**over):
    r = record(
        "demo",
        "python -m benchmarks demo",
        {"chooses": "dev", "reports": "test", "checkpoint": "tiny", "seeds": 3},
        ["system", "auc"],
        [{"system": "ours", "auc": 0.91234}, {"system": "anchor", "auc": 0.8}],
        [
            {
                "claim": "ours wins",
                "figure": "0.912",
                "range": "0.90-0.92",
                "baseline": "anchor 0.800",
                "split": "test",
                "caveat": "tiny",
            }
        ],
        machine={"cpu": "x", "cpu_count": 2, "torch_threads": 1},
    )
    r.update(over)
    return r


HEADER_KEYS = ["benchmark", "command", "commit", "date", "machine", "load_avg"]


def test_every_result_opens_with_the_same_header():
    """`header` is the one place the six opening keys are built: `record` and the benchmarks
    that write their own schema (soak, vocab, ort, ...) share it, with the same date format
    and the commit read when the benchmark started."""
    h = header("demo", "python -m benchmarks demo", machine={"cpu": "x"})
    assert list(h) == HEADER_KEYS
    assert h["commit"] == git_commit() and h["machine"] == {"cpu": "x"}
    assert len(h["date"]) == 20 and h["date"].endswith("Z") and h["date"][10] == "T"
    assert all(isinstance(x, float) for x in h["load_avg"])
    sampled = header("demo", "cmd", commit="abc", machine={}, load=[[1.0, 2.0], [3.0, 4.0]])
    assert sampled["commit"] == "abc" and sampled["load_avg"] == [[1.0, 2.0], [3.0, 4.0]]
    assert list(_result())[:6] == HEADER_KEYS
    runs = header_of_runs("demo", "cmd", [3.5, 1.25, 2.0])
    assert list(runs) == HEADER_KEYS and runs["load_avg"] == [1.25, 3.5]
    assert runs["commit"] == head_commit()


def test_the_committed_page_equals_what_report_generates_from_the_committed_results():
    text = PAGE.read_text(encoding="utf8")
    assert "<!-- report:summary -->" in text
    assert update_page(text, load_results(RESULTS_DIR)) == text, (
        "run `python -m benchmarks report` and commit BENCHMARKS.md"
    )


def test_regions_are_rewritten_prose_kept_and_rewriting_is_idempotent():
    page = "# Title\nprose stays\n<!-- report:demo -->\nstale 0.5\n<!-- /report:demo -->\nmore prose\n<!-- report:summary -->\n<!-- /report:summary -->\n"
    new = update_page(page, {"demo": _result()})
    assert "stale" not in new and "prose stays" in new and "more prose" in new
    assert "| ours | 0.912 |" in new and "chosen on dev; reported on test" in new
    assert (
        "| ours wins | 0.912 | 0.90-0.92 | anchor 0.800 | test | tiny | [demo](benchmarks/results/demo.json) |"
        in new
    )
    assert update_page(new, {"demo": _result()}) == new


def test_a_missing_result_leaves_a_placeholder_and_a_glob_collects_files():
    assert "Not measured yet" in render("ner*", {})
    both = render("ner*", {"ner": _result(), "ner_pretrained": _result()})
    assert "**ner**" in both and "**ner_pretrained**" in both


def test_a_superseded_result_keeps_its_table_but_leaves_every_summary():
    old = _result(superseded="rerun on newer code: `ner_r2`")
    old["summary"][0]["claim"] = "old claim"
    results = {"ner": old, "ner_r2": _result(), "other": _result()}
    page = (
        "<!-- report:summary -->\n<!-- /report:summary -->\n"
        "<!-- report:summary:ner* -->\n<!-- /report:summary:ner* -->\n"
        "<!-- report:ner -->\n<!-- /report:ner -->\n"
    )
    new = update_page(page, results)
    summary, ner_summary, table = new.split("<!-- /report:")[:3]
    assert "old claim" not in summary and "[ner_r2]" in summary and "[other]" in summary
    assert "old claim" not in ner_summary and "[ner_r2]" in ner_summary
    assert "[other]" not in ner_summary
    assert "| ours | 0.912 |" in table
    assert "Not a current claim: rerun on newer code: `ner_r2`." in table
    assert update_page(new, results) == new


@pytest.mark.parametrize(
    "note",
    [
        "rerun on newer code",  # names no file
        "see `ner_r9`",  # a file that does not exist
        "see `ner`",  # itself
        "see `ner_old`",  # a file superseded in turn: not the current one
    ],
)
def test_a_superseded_note_must_lead_to_a_current_result(note):
    results = {
        "ner": _result(superseded=note),
        "ner_old": _result(superseded="see `ner_r2`"),
        "ner_r2": _result(),
    }
    with pytest.raises(ValueError, match="ner.json: its 'superseded' note"):
        update_page("<!-- report:summary -->\n<!-- /report:summary -->\n", results)


def test_every_committed_superseded_note_leads_to_a_current_result():
    from benchmarks.page import SUPERSEDED, check_superseded

    results = load_results(RESULTS_DIR)
    check_superseded(results)
    assert any(SUPERSEDED in r for r in results.values())


def test_an_unclosed_region_is_refused():
    with pytest.raises(ValueError, match="no closing"):
        update_page("<!-- report:demo -->\n", {})


def test_record_refuses_a_protocol_without_its_splits():
    with pytest.raises(ValueError, match="protocol lacks"):
        record("demo", "cmd", {"chooses": "dev"}, [], [], [], machine={})


def test_report_check_fails_on_a_stale_page_and_report_fixes_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "demo.json").write_text(json.dumps(_result()))
    page = tmp_path / "PAGE.md"
    page.write_text("<!-- report:demo -->\nold\n<!-- /report:demo -->\n")
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["report", "--page", str(page), "--results", str(results), "--check"]
        ).exit_code
        == 1
    )
    assert (
        runner.invoke(app, ["report", "--page", str(page), "--results", str(results)]).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["report", "--page", str(page), "--results", str(results), "--check"]
        ).exit_code
        == 0
    )
    assert "0.912" in page.read_text()


def test_ray_vs_local_claims_parity_unless_the_range_of_the_ratio_excludes_one(tmp_path):
    from types import SimpleNamespace

    from benchmarks.annotate import write_result

    def runs(rates):
        return [
            {"annotated": 100, "wall_seconds": 100 / r, "load_avg_1min": [1.0, 1.0]} for r in rates
        ]

    args = SimpleNamespace(
        result=tmp_path / "annotate_ray.json", repeats=3, pipeline="p", n_docs=100
    )
    write_result(
        args, {"local, --n-process 2": runs([100, 100, 100]), "ray, 2 actors": runs([90, 105, 120])}
    )
    data = json.loads(args.result.read_text())
    assert (
        data["summary"][0]["claim"].endswith("parity") and data["summary"][0]["figure"] == "1.05x"
    )
    write_result(
        args,
        {"local, --n-process 2": runs([100, 100, 100]), "ray, 2 actors": runs([110, 115, 120])},
    )
    assert json.loads(args.result.read_text())["summary"][0]["claim"].endswith("ray faster")
