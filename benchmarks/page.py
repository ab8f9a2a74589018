"""`python -m benchmarks report`: the tables of BENCHMARKS.md, generated from `benchmarks/results/*.json`.

Why: a figure typed by hand drifts from the run that produced it. The page keeps its prose
hand-written; every table sits in a generated region

    <!-- report:NAME -->  ...  <!-- /report:NAME -->

that `report` rewrites from the result files (`NAME` is a file stem or a glob such as
`ner*`; `summary` collects the summary rows of every current result, `summary:GLOB` those of
the current results whose stem matches GLOB). A region whose file does not exist yet says
which command writes it.

A result that is no longer a current claim (a later run answers it on newer code: the same
protocol rerun, the same claim measured again; or a candidate study whose choice was not
adopted) stays in its file and its section, as the record of that run, but the page does not
present it as current: its key `"superseded"` says why and names the current file in backticks
(`` "rerun on newer code: `ner_pretrained_r6`" ``). The summaries leave it out and its
provenance line says so; a pointer to a missing file, to itself or to another superseded
file is refused, so the page never leads to a dead end.

Invariant: `update_page(text, results)` changes only the inside of the regions, and is
idempotent; `report --check` exits 1 when the page differs from what the results give
(the test suite runs that check on the committed page).
"""

import fnmatch
import json
import re
from pathlib import Path
from typing import Any, Dict, Sequence

import typer

from ._app import app
from .results import RESULTS_DIR, SUMMARY_KEYS

PAGE = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
# A marker is a line of its own (a marker quoted inside prose or code is not one).
REGION = re.compile(
    r"^<!-- report:(?P<name>[\w*?.:-]+) -->\n(?P<body>.*?)^<!-- /report:(?P=name) -->$",
    re.DOTALL | re.MULTILINE,
)
OPEN = re.compile(r"^<!-- report:([\w*?.:-]+) -->$", re.MULTILINE)
# The key of a result that is no longer a current claim (module docstring).
SUPERSEDED = "superseded"
_STEM = re.compile(r"`([\w.-]+)`")


def cell(value: Any) -> str:
    """One table cell: floats to 3 decimals below 1, 2 below 100, thousands separators above;
    a {mean, std, min, max} summary as `mean ± std (min-max)`, other dicts as `key=value` pairs."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) < 1:
            return f"{value:.3f}"
        return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict) and {"mean", "min", "max"} <= set(value):
        spread = f" ± {cell(value['std'])}" if value.get("std") is not None else ""
        return f"{cell(value['mean'])}{spread} ({cell(value['min'])}-{cell(value['max'])})"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def load_results(results_dir: Path) -> Dict[str, Dict[str, Any]]:
    """{file stem: result} of every `*.json` in `results_dir` (sorted by name)."""
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf8"))
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path} is not valid JSON ({err}): rerun its benchmark command"
            ) from None
    return out


def check_superseded(results: Dict[str, Dict[str, Any]]) -> None:
    """Refuse a `superseded` note that does not lead to a current result file."""
    for stem, result in results.items():
        note = result.get(SUPERSEDED)
        if note is None:
            continue
        named = _STEM.findall(note) if isinstance(note, str) else []
        current = [n for n in named if n in results and n != stem and SUPERSEDED not in results[n]]
        if not current:
            raise ValueError(
                f"benchmarks/results/{stem}.json: its {SUPERSEDED!r} note ({note!r}) must name the "
                "current result file in backticks (an existing stem, not itself, not superseded "
                "itself): fix the note or remove the key"
            )


def current_results(results: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The results that are current claims (no `superseded` note)."""
    return {stem: r for stem, r in results.items() if SUPERSEDED not in r}


def provenance(stem: str, result: Dict[str, Any]) -> str:
    """The protocol and run lines under a table."""
    p = result.get("protocol", {})
    m = result.get("machine", {})
    load = "/".join(f"{x:.1f}" for x in result.get("load_avg", [])) or "-"
    machine = f"{m.get('cpu', m.get('platform', '?'))}, {m.get('cpu_count', '?')} cores, torch threads {m.get('torch_threads', '?')}"
    if m.get("gpu"):
        machine += f", {m['gpu']}"
    commit = str(result.get("commit", "?"))
    note = f"Not a current claim: {result[SUPERSEDED]}.\n" if SUPERSEDED in result else ""
    return note + (
        f"Protocol: settings chosen on {p.get('chooses', '?')}; reported on {p.get('reports', '?')}; "
        f"checkpoint: {p.get('checkpoint', '?')}; seeds/repeats: {p.get('seeds', '?')}.\n"
        f"Run: `{result.get('command', '?')}` on {result.get('date', '?')}, commit {commit[:7] + commit[40:]}, "
        f"{machine}, load average {load}; result file [`benchmarks/results/{stem}.json`](benchmarks/results/{stem}.json)."
    )


def render(name: str, results: Dict[str, Dict[str, Any]]) -> str:
    """The body of region `name`."""
    if name == "summary" or name.startswith("summary:"):
        pattern = name.partition(":")[2] or "*"
        rows = [
            {**s, "result": f"[{stem}](benchmarks/results/{stem}.json)"}
            for stem, r in current_results(results).items()
            if fnmatch.fnmatchcase(stem, pattern)
            for s in r.get("summary", [])
        ]
        if not rows:
            return "_No result files yet: run the benchmark commands below, then `python -m benchmarks report`._"
        return markdown_table(list(SUMMARY_KEYS) + ["result"], rows)
    stems = [stem for stem in results if fnmatch.fnmatchcase(stem, name)]
    if not stems:
        return (
            f"_Not measured yet: no `benchmarks/results/{name}.json` in this checkout. Its benchmark command writes it; "
            "`python -m benchmarks report` then fills this section._"
        )
    parts = []
    for stem in stems:
        r = results[stem]
        if len(stems) > 1:
            parts.append(f"**{stem}**")
        parts.append(markdown_table(r.get("columns", []), r.get("rows", [])))
        parts.append(provenance(stem, r))
    return "\n\n".join(parts)


def update_page(text: str, results: Dict[str, Dict[str, Any]]) -> str:
    """`text` with every generated region rewritten from `results`."""
    check_superseded(results)
    opened = OPEN.findall(text)
    closed = [m.group("name") for m in REGION.finditer(text)]
    unclosed = [n for n in opened if n not in closed]
    if unclosed:
        raise ValueError(
            f"BENCHMARKS.md: region 'report:{unclosed[0]}' has no closing '<!-- /report:{unclosed[0]} -->'"
        )
    return REGION.sub(
        lambda m: (
            f"<!-- report:{m.group('name')} -->\n{render(m.group('name'), results)}\n<!-- /report:{m.group('name')} -->"
        ),
        text,
    )


def run_report(page: Path = PAGE, results_dir: Path = RESULTS_DIR, check: bool = False) -> bool:
    """Rewrite the page's generated regions (or, with `check`, only compare); True when the page was current."""
    page = Path(page)
    text = page.read_text(encoding="utf8")
    new = update_page(text, load_results(results_dir))
    if new == text:
        print(f"{page}: generated regions are current ({len(REGION.findall(text))} regions)")
        return True
    if check:
        print(
            f"{page}: generated regions differ from {results_dir}: run `python -m benchmarks report`"
        )
        return False
    page.write_text(new, encoding="utf8")
    print(f"{page}: regenerated {len(REGION.findall(text))} regions from {results_dir}")
    return False


@app.command("report")
def report_cli(
    page: Path = typer.Option(
        PAGE, "--page", help="The Markdown page with <!-- report:NAME --> regions"
    ),
    results_dir: Path = typer.Option(
        RESULTS_DIR, "--results", help="Directory of result JSON files"
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Only compare: exit 1 if the page's regions are not what the results give",
    ),
) -> None:
    """Regenerate the tables of BENCHMARKS.md from benchmarks/results/*.json (prose stays as written)."""
    current = run_report(page, results_dir, check)
    if check and not current:
        raise typer.Exit(1)
