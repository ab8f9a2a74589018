"""Load test of `python -m spacy_modernbert serve`: throughput and latency under concurrency.

Starts the server as its own process on 127.0.0.1 (a free port), sends a fixed number of
requests from 1, 8 and 64 concurrent clients (one text per request: CoNLL-2003 validation
sentences, then demo-corpus paragraphs), and reports requests/s, docs/s and p50/p95/p99
latency next to offline `nlp.pipe` docs/s on the same texts in this process (the anchor:
the same pipeline, batch size and torch threads, no HTTP; the best of three passes after a
warm-up pass). Then an overload run: many
clients against a server with a small `--max-queued-chars`, counting 503s and other
failures and reading the server's resident memory (VmRSS, VmHWM) before and after.
Every loop is bounded; the script stops by itself.

The clients are a minimal HTTP/1.1 keep-alive client on asyncio in this process (far lighter
than an HTTP library), but they still share the machine's cores with the server: on a
2-core machine that costs the server part of a core, which the ratio to offline includes.
Torch runs one thread in both (`--threads 1`): on a shared, oversubscribed 2-core VM, two
intra-op threads that wait for each other at every op ran the pipeline several times slower
in our checks; `--threads 2` measures that setting.

    python benchmarks/serve_load.py --pipeline training/model-best

`--base-shaped` runs the same test on the pipeline users serve, in shape: the shipped config
(`configs/cpu_tiny.cfg`: transformer + ner + anomaly_scorer) on a ModernBERT-base-shaped
checkpoint (hidden 768, 22 layers, 12 heads: `benchmarks/data.py` SHAPES["base"], as the speed
benchmark uses) with **random weights**, created offline once and cached under `--cache-dir`
(or `--base-checkpoint DIR`, an existing one); the ner and anomaly_scorer heads are
initialised on 32 demo reports and never trained. Nothing is downloaded. Throughput and
latency do not depend on what the weights learned (the same shapes run the same arithmetic),
only the entities and scores do, and those are not measured here. A base-shaped encoder
costs far more per document, so the run uses fewer requests (`--requests` defaults to 128
and `--overload-requests` to 512 with `--base-shaped`; both are reported):

    python benchmarks/serve_load.py --base-shaped --data-dir ../shared/data
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.data import DEFAULT_DATA_DIR, sentence_texts  # noqa: E402

HOST = "127.0.0.1"


def demo_paragraphs() -> List[str]:
    texts = []
    for split in ("dev", "test"):
        for line in (
            (ROOT / "assets" / "demo" / f"{split}.jsonl").read_text(encoding="utf8").splitlines()
        ):
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


def build_base_shaped_pipeline(
    cache_dir: Path, data_dir: Path, checkpoint: Optional[Path] = None
) -> Path:
    """configs/cpu_tiny.cfg on a random ModernBERT-base-shaped checkpoint, heads initialised (not trained).

    Built once and cached as `cache_dir/serve-base-shaped-pipeline`. No download: the
    checkpoint is `checkpoint` or one created by `benchmarks.data.ensure_checkpoint`.
    """
    out = Path(cache_dir) / "serve-base-shaped-pipeline"
    if (out / "config.cfg").exists():
        return out
    import spacy
    from spacy.training import Example

    from benchmarks.data import ensure_checkpoint

    if checkpoint is None:
        checkpoint = ensure_checkpoint(
            Path(cache_dir) / "modernbert-base-random-conll", "base", data_dir
        )
    config = spacy.util.load_config(
        ROOT / "configs" / "cpu_tiny.cfg", overrides={"paths.base_model": str(checkpoint)}
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    rows = [
        json.loads(line)
        for line in (ROOT / "assets" / "demo" / "train.jsonl")
        .read_text(encoding="utf8")
        .splitlines()
        if line.strip()
    ]
    rows = [r for r in rows if r["anomaly"]][:8] + [r for r in rows if not r["anomaly"]][:24]
    examples = [
        Example.from_dict(
            nlp.make_doc(r["text"]),
            {
                "entities": [tuple(e) for e in r["entities"]],
                "cats": {"ANOMALY": float(r["anomaly"])},
            },
        )
        for r in rows
    ]
    spacy.util.fix_random_seed(0)
    nlp.initialize(lambda: examples)
    nlp.meta.update(
        name="serve_base_shaped_random",
        version="0.0.0",
        description=f"Load-test pipeline: configs/cpu_tiny.cfg on the random base-shaped checkpoint {checkpoint}; heads untrained",
    )
    tmp = out.with_name(out.name + ".tmp")
    nlp.to_disk(tmp)
    tmp.rename(out)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def memory_kb(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB, from /proc (Linux)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class Server:
    """`python -m spacy_modernbert serve` in a subprocess on 127.0.0.1; SIGINT stops it gracefully."""

    def __init__(self, pipeline: Path, extra: Sequence[str] = (), log: Optional[Path] = None):
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [
            sys.executable,
            "-m",
            "spacy_modernbert",
            "serve",
            str(pipeline),
            "--host",
            HOST,
            "--port",
            str(self.port),
            *extra,
        ]
        self.log = open(log or os.devnull, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} (see its log)")
            try:
                status, _ = asyncio.run(_one_request(self.port, "GET", "/health", None))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
        finally:
            self.log.close()


class Connection:
    """One keep-alive HTTP/1.1 connection; `request` returns (status, body)."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.decode("latin1").partition(":")
            key = key.strip().lower()
            if key == "content-length":
                length = int(value)
            elif key == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def _one_request(
    port: int, method: str, path: str, body: Optional[bytes]
) -> Tuple[int, bytes]:
    conn = Connection(port)
    try:
        return await conn.request(method, path, body)
    finally:
        await conn.close()


async def load(port: int, texts: Sequence[str], n_requests: int, clients: int) -> Dict:
    """`clients` connections send `n_requests` requests in all (one text each), as fast as answered."""
    bodies = [json.dumps({"text": texts[i % len(texts)]}).encode("utf8") for i in range(n_requests)]
    next_index = 0
    latencies: List[float] = []
    statuses: Dict[str, int] = {}
    docs = 0

    async def client() -> None:
        nonlocal next_index, docs
        conn = Connection(port)
        try:
            while next_index < n_requests:
                body = bodies[next_index]
                next_index += 1
                start = time.perf_counter()
                try:
                    status, data = await conn.request("POST", "/annotate", body)
                except (OSError, ConnectionError, asyncio.IncompleteReadError) as err:
                    statuses[type(err).__name__] = statuses.get(type(err).__name__, 0) + 1
                    await conn.close()
                    continue
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - start)
                    docs += len(json.loads(data)["docs"])
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    ok = statuses.get("200", 0)
    result = {
        "clients": clients,
        "requests": n_requests,
        "statuses": statuses,
        "errors": n_requests - ok,
        "seconds": round(wall, 2),
        "requests_per_s": round(ok / wall, 1),
        "docs_per_s": round(docs / wall, 1),
    }
    if latencies:
        q = (
            statistics.quantiles(latencies, n=100, method="inclusive")
            if len(latencies) > 1
            else [latencies[0]] * 99
        )
        result.update(
            {
                "p50_ms": round(q[49] * 1000, 1),
                "p95_ms": round(q[94] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1),
            }
        )
    return result


def offline_docs_per_s(
    pipeline: Path, texts: Sequence[str], batch_size: int, threads: int, passes: int = 3
) -> float:
    """The anchor: the best of `passes` timed `nlp.pipe` passes after a warm-up pass (same texts)."""
    import spacy
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.load(pipeline)
    list(
        nlp.pipe(texts, batch_size=batch_size)
    )  # warm-up: tokenizer caches, kernels for these shapes
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        n = sum(1 for _ in nlp.pipe(texts, batch_size=batch_size))
        best = max(best, n / (time.perf_counter() - start))
    return best


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pipeline",
        type=Path,
        default=ROOT / "training" / "model-best",
        help="Trained pipeline (default: weasel run all's training/model-best)",
    )
    parser.add_argument(
        "--base-shaped",
        action="store_true",
        help="Instead of --pipeline: configs/cpu_tiny.cfg on a random ModernBERT-base-shaped checkpoint (built once under --cache-dir; see the module docstring)",
    )
    parser.add_argument(
        "--base-checkpoint",
        type=Path,
        default=None,
        help="With --base-shaped: an existing base-shaped checkpoint directory (default: create one under --cache-dir)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=ROOT / ".benchmark_cache",
        help="Where --base-shaped caches its checkpoint and pipeline",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="Directory with conll2003/valid.iob (default ../shared/data)",
    )
    parser.add_argument(
        "--clients", default="1,8,64", help="Concurrent clients per run, comma-separated"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="Requests per run (one text each; default 1024, 128 with --base-shaped)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="serve --max-batch-docs and the offline nlp.pipe batch size",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the server and of offline nlp.pipe (the clients need a core too)",
    )
    parser.add_argument(
        "--overload-clients", type=int, default=256, help="Clients of the overload run (0: skip it)"
    )
    parser.add_argument(
        "--overload-requests",
        type=int,
        default=None,
        help="Requests of the overload run (default 2048, 512 with --base-shaped)",
    )
    parser.add_argument(
        "--overload-queue",
        type=int,
        default=20000,
        help="serve --max-queued-chars in the overload run",
    )
    parser.add_argument("--output", type=Path, default=None, help="Write the results as JSON here")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 128 if args.base_shaped else 1024
    if args.overload_requests is None:
        args.overload_requests = 512 if args.base_shaped else 2048
    if args.base_shaped:
        args.pipeline = build_base_shaped_pipeline(
            args.cache_dir, args.data_dir, args.base_checkpoint
        )
        print(f"base-shaped pipeline (random weights): {args.pipeline}", flush=True)
    if not (args.pipeline / "config.cfg").exists():
        sys.exit(f"No pipeline at {args.pipeline}: run `weasel run all` first, or pass --pipeline")
    clients = [int(c) for c in args.clients.split(",")]
    workloads = {
        "CoNLL valid sentences": sentence_texts(args.data_dir, limit=args.requests),
        "demo paragraphs": demo_paragraphs(),
    }
    results: Dict = {
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "loadavg_start": _loadavg(),
        "commit": _commit(),
        "pipeline": str(args.pipeline),
        "base_shaped": args.base_shaped,
        "requests_per_run": args.requests,
        "overload_requests": args.overload_requests,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "runs": [],
        "offline": {},
    }

    for name, texts in workloads.items():
        n_texts = min(len(texts), args.requests)
        results["offline"][name] = round(
            offline_docs_per_s(args.pipeline, texts[:n_texts], args.batch_size, args.threads), 1
        )
        print(f"offline nlp.pipe, {name}: {results['offline'][name]} docs/s", flush=True)

    serve_args = ["--max-batch-docs", str(args.batch_size), "--threads", str(args.threads)]
    server = Server(args.pipeline, serve_args)
    try:
        server.wait_ready()
        for name, texts in workloads.items():
            asyncio.run(load(server.port, texts, 64, 8))  # warm-up
            for n_clients in clients:
                run = asyncio.run(load(server.port, texts, args.requests, n_clients))
                run.update(
                    workload=name, vs_offline=round(run["docs_per_s"] / results["offline"][name], 2)
                )
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
        results["server_memory_kb"] = memory_kb(server.proc.pid)
    finally:
        results["exit_code"] = server.stop()

    if args.overload_clients:
        paragraphs = workloads["demo paragraphs"]
        server = Server(
            args.pipeline, [*serve_args, "--max-queued-chars", str(args.overload_queue)]
        )
        try:
            server.wait_ready()
            asyncio.run(load(server.port, paragraphs, 64, 8))
            before = memory_kb(server.proc.pid)
            run = asyncio.run(
                load(server.port, paragraphs, args.overload_requests, args.overload_clients)
            )
            after = memory_kb(server.proc.pid)
            health, _ = asyncio.run(_one_request(server.port, "GET", "/health", None))
            run.update(
                workload="overload: demo paragraphs",
                max_queued_chars=args.overload_queue,
                memory_before_kb=before,
                memory_after_kb=after,
                health_after=health,
            )
            results["overload"] = run
            print(json.dumps(run), flush=True)
        finally:
            results["overload_exit_code"] = server.stop()

    results["loadavg_end"] = _loadavg()
    print_table(results)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))
    return results


def _loadavg() -> Optional[List[float]]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def _commit() -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return (
            out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            if out.returncode == 0
            else None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def print_table(results: Dict) -> None:
    print(
        f"\n{results['pipeline']}{' (base-shaped, random weights)' if results.get('base_shaped') else ''}; commit {results.get('commit')}, "
        f"started {results.get('started_utc')} UTC, load average at start {results.get('loadavg_start')}, at end {results.get('loadavg_end')}"
    )
    print(
        "\n| workload | clients | requests | errors | requests/s | docs/s | offline nlp.pipe docs/s | vs offline | p50 ms | p95 ms | p99 ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in results["runs"]:
        print(
            f"| {run['workload']} | {run['clients']} | {run['requests']} | {run['errors']} | {run['requests_per_s']} | {run['docs_per_s']} | "
            f"{results['offline'][run['workload']]} | {run['vs_offline']}x | {run.get('p50_ms')} | {run.get('p95_ms')} | {run.get('p99_ms')} |"
        )
    over = results.get("overload")
    if over:
        print(
            f"\nOverload: {over['clients']} clients, {over['requests']} requests, --max-queued-chars {over['max_queued_chars']}: "
            f"statuses {over['statuses']}; server RSS {over['memory_before_kb'].get('VmRSS')} kB before, "
            f"{over['memory_after_kb'].get('VmRSS')} kB after (peak {over['memory_after_kb'].get('VmHWM')} kB); /health after: {over['health_after']}"
        )


if __name__ == "__main__":
    main()
