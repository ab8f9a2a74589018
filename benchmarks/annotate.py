"""Throughput and memory of `annotate`: local (1 process, --n-process 2), ray (2 actors) vs raw nlp.pipe.

Run from a checkout after `weasel run all` (the demo pipeline) with the ray extra installed:

    python benchmarks/annotate.py --pipeline training/model-calibrated

Corpus: synthetic demo incident reports (`generate_demo_records`, seed 1: not the training
documents), written as JSONL {"id", "text"}. Every system runs in its own fresh process with one
torch thread per process (OMP_NUM_THREADS=1), so "1 process" uses one core and the 2-process /
2-actor runs use both cores of the benchmark machine. Peak memory is the largest resident set of
one process (`wait4`'s ru_maxrss): for --n-process 2 the parent or a worker, for Ray the driver
only (actors are Ray workers, not its children), so Ray's row in that column is not comparable;
CPU seconds likewise (user + sys of the process and its workers; Ray: the driver only). The
machine is shared: the 1-minute load average before and after each run is printed with it.

Figures per run: end-to-end docs/s (the whole command: Python start, planning pass, pipeline
load, Ray start, merge), the engine's docs/s (pipeline load included, Python start excluded),
the steady docs/s after the first shard (loading excluded), and the first shard's time.
The anchor is raw `nlp.pipe` over the same texts in one process (load excluded).

Ray vs local (the claim): `--repeats` (default 3) rounds of `local, --n-process 2` and
`ray, 2 actors`, in alternating order (AB, BA, AB); the median and range of the per-round
ratio of end-to-end docs/s go to benchmarks/results/annotate_ray.json. The claim is parity
unless the range of the ratio lies wholly above or below 1.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import git_commit, round_order  # noqa: E402

RAW_PIPE = """
import json, sys, time, spacy
texts = [json.loads(line)["text"] for line in open(sys.argv[2], encoding="utf8")]
t0 = time.perf_counter(); nlp = spacy.load(sys.argv[1]); load = time.perf_counter() - t0
t0 = time.perf_counter()
n = sum(1 for _ in nlp.pipe(texts, batch_size=int(sys.argv[3])))
seconds = time.perf_counter() - t0
print("SUMMARY" + json.dumps({"annotated": n, "seconds": seconds, "load_seconds": load, "docs_per_second": n / seconds}))
"""

ANNOTATE = """
import json, sys
from spacy_modernbert.cli.annotate import annotate
summary = annotate(**json.loads(sys.argv[1]))
print("SUMMARY" + json.dumps(summary))
"""


def run(code: str, *args: str) -> dict:
    """Run `code` in a fresh Python; its summary, wall seconds and peak RSS (MiB)."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark run failed:\n{out[-3000:]}\n{err[-3000:]}")
    summary = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("SUMMARY")))
    cpu = (
        usage.ru_utime + usage.ru_stime
    )  # this process and its waited-for children (not Ray's actors)
    return {
        **summary,
        "wall_seconds": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_seconds": cpu,
        "load_avg_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def annotate(pipeline: Path, corpus: Path, output: Path, **settings) -> dict:
    args = {
        "pipeline": str(pipeline),
        "input_path": str(corpus),
        "output_path": str(output),
        "overwrite": True,
        "progress": False,
        **settings,
    }
    result = run(ANNOTATE, json.dumps(args))
    output.unlink()
    return result


def write_corpus(path: Path, n_docs: int, seed: int) -> Path:
    from spacy_modernbert.data.demo import generate_demo_records

    if not path.exists():
        with path.open("w", encoding="utf8") as f:
            for i, record in enumerate(generate_demo_records(n_docs, 0.1, seed)):
                f.write(json.dumps({"id": i, "text": record["text"]}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", type=Path, default=ROOT / "training" / "model-calibrated")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".benchmark_cache" / "annotate")
    parser.add_argument("--n-docs", type=int, default=20000)
    parser.add_argument(
        "--n-docs-memory",
        type=int,
        default=100000,
        help="Second corpus size for the memory comparison (local, 1 process)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "annotate.json")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Alternating rounds of local --n-process 2 and ray 2 actors (>= 3 for the page)",
    )
    parser.add_argument(
        "--result",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "annotate_ray.json",
        help="The page's result file",
    )
    args = parser.parse_args()
    if not (args.pipeline / "config.cfg").exists():
        sys.exit(f"No pipeline at {args.pipeline}: run `weasel run all` first, or pass --pipeline")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    git_commit()  # the code that runs: read now, not when the result is written
    small = write_corpus(args.work_dir / f"demo-{args.n_docs}.jsonl", args.n_docs, seed=1)
    big = write_corpus(
        args.work_dir / f"demo-{args.n_docs_memory}.jsonl", args.n_docs_memory, seed=1
    )
    out = args.work_dir / "out.jsonl"
    common = {"batch_size": args.batch_size, "shard_size": args.shard_size}
    results = {}
    steps = [
        (
            "raw nlp.pipe, 1 process",
            lambda: run(RAW_PIPE, str(args.pipeline), str(small), str(args.batch_size)),
        ),
        ("local, 1 process", lambda: annotate(args.pipeline, small, out, **common)),
        (
            f"local, 1 process, {args.n_docs_memory} docs",
            lambda: annotate(args.pipeline, big, out, **common),
        ),
    ]
    for name, step in steps:
        print(f"running: {name}", flush=True)
        results[name] = step()
        print(json.dumps(results[name]), flush=True)
    engines = {
        "local, --n-process 2": dict(n_process=2),
        "ray, 2 actors": dict(engine="ray", num_actors=2),
    }
    rounds = {name: [] for name in engines}
    for r in range(args.repeats):
        for name in round_order(list(engines), r):
            print(f"running: {name} (round {r + 1}/{args.repeats})", flush=True)
            rounds[name].append(annotate(args.pipeline, small, out, **engines[name], **common))
            print(json.dumps(rounds[name][-1]), flush=True)
    for name, runs in rounds.items():  # the table's row: the run with the median end-to-end rate
        results[name] = sorted(runs, key=lambda x: x["annotated"] / x["wall_seconds"])[
            len(runs) // 2
        ]
    n = args.n_docs
    print(
        f"\n{n} demo docs, pipeline {args.pipeline}, batch {args.batch_size}, shard {args.shard_size}, one torch thread per process\n"
    )
    print(
        "| system | docs/s end to end | docs/s engine (load incl.) | docs/s steady | first shard s | peak RSS MiB | CPU ms/doc | load avg before/after |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in results.items():
        docs = r["annotated"]
        if name.startswith("raw"):
            print(
                f"| {name} | - | - | {r['docs_per_second']:.0f} | (load {r['load_seconds']:.1f}) | {r['peak_rss_mib']:.0f} | "
                f"{1000 * r['cpu_seconds'] / docs:.1f} | {r['load_avg_1min']} |"
            )
            continue
        steady = r.get("steady_docs_per_second")
        cpu = "-" if name.startswith("ray") else f"{1000 * r['cpu_seconds'] / docs:.1f}"
        print(
            f"| {name} | {docs / r['wall_seconds']:.0f} | {r['docs_per_second']:.0f} | {steady if steady is not None else '-'} | "
            f"{r['first_shard_seconds']:.1f} | {r['peak_rss_mib']:.0f} | "
            f"{cpu} | {r['load_avg_1min']} |"
        )
    write_result(args, rounds)
    local2, ray2 = results["local, --n-process 2"], results["ray, 2 actors"]
    print(
        f"\nray 2 actors / local --n-process 2: {ray2['annotated'] / ray2['wall_seconds'] / (local2['annotated'] / local2['wall_seconds']):.2f}x end to end, "
        f"{ray2['docs_per_second'] / local2['docs_per_second']:.2f}x engine, "
        f"{(ray2['steady_docs_per_second'] or 0) / (local2['steady_docs_per_second'] or 1):.2f}x steady (target >= 0.9x)"
    )
    big_run, small_run = (
        results[f"local, 1 process, {args.n_docs_memory} docs"],
        results["local, 1 process"],
    )
    print(
        f"peak RSS, local 1 process: {small_run['peak_rss_mib']:.0f} MiB ({n} docs) vs {big_run['peak_rss_mib']:.0f} MiB ({args.n_docs_memory} docs)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "n_docs": n,
                "settings": vars(args) | {"pipeline": str(args.pipeline)},
                "results": results,
            },
            indent=1,
            default=str,
        )
    )


def write_result(args, rounds) -> None:
    """benchmarks/results/annotate_ray.json: per-round ratio ray / local, median and range."""
    from benchmarks.report import write_json
    from benchmarks.results import median_range, record

    rate = {
        name: [r["annotated"] / r["wall_seconds"] for r in runs] for name, runs in rounds.items()
    }
    ratio = median_range(
        [a / b for a, b in zip(rate["ray, 2 actors"], rate["local, --n-process 2"])]
    )
    lo, hi = ratio["range"]
    verdict = "parity" if lo <= 1.0 <= hi else ("ray faster" if lo > 1.0 else "local faster")
    rows = [
        {
            "engine": name,
            "docs/s end to end (median)": round(median_range(v)["median"], 1),
            "range": f"{min(v):.1f}-{max(v):.1f}",
            "load avg before/after": "; ".join(str(r["load_avg_1min"]) for r in rounds[name]),
        }
        for name, v in rate.items()
    ]
    write_json(
        args.result,
        record(
            "annotate_ray",
            "python benchmarks/annotate.py " + " ".join(sys.argv[1:]),
            {
                "chooses": "nothing is tuned (the same pipeline, batch and shard sizes for both engines)",
                "reports": f"{args.repeats} rounds in alternating order, median and range",
                "seeds": args.repeats,
                "checkpoint": f"the pipeline {args.pipeline} (weasel run all: tiny random-init encoder; throughput only)",
            },
            ["engine", "docs/s end to end (median)", "range", "load avg before/after"],
            rows,
            [
                {
                    "claim": f"annotate: ray (2 actors) vs local --n-process 2: {verdict}",
                    "figure": f"{ratio['median']:.2f}x",
                    "range": f"{lo:.2f}-{hi:.2f}x",
                    "baseline": "local --n-process 2",
                    "split": f"{args.repeats} alternating rounds",
                    "caveat": f"{args.n_docs} demo docs, 2 shared CPU cores, one torch thread per process",
                }
            ],
            n_docs=args.n_docs,
            rounds=rounds,
        ),
    )


if __name__ == "__main__":
    main()
