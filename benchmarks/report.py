"""Tables for the terminal / BENCHMARKS.md, JSON output, machine description, memory sampling."""

import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine_info(device: str = "cpu") -> Dict[str, Any]:
    import torch

    info: Dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    from importlib.metadata import PackageNotFoundError, version

    for package in ("transformers", "spacy", "spacy-transformers"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    return info


def _rss_bytes() -> Optional[int]:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


class PeakMemory:
    """Peak memory of a block: on CUDA torch's peak allocation; on CPU the peak resident set
    size (sampled every 5 ms from /proc/self/statm) above the RSS just before the block."""

    def __init__(self, device: str = "cpu", interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.peak_mib: Optional[float] = None
        self.kind = "cuda_max_allocated" if device.startswith("cuda") else "rss_increase"

    def __enter__(self) -> "PeakMemory":
        import gc

        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        self._base = _rss_bytes()
        self._peak = self._base or 0
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                rss = _rss_bytes() or 0
                if rss > self._peak:
                    self._peak = rss
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        self._thread.join()
        rss = _rss_bytes() or 0
        self._peak = max(self._peak, rss)
        if self._base is not None:
            self.peak_mib = (self._peak - self._base) / 2**20


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [[str(h) for h in headers]] + [
        [fmt(c, 2) if isinstance(c, float) else str(c) for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_json(path: Optional[Path], data: Dict[str, Any]) -> None:
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n", encoding="utf8"
    )
    log(f"wrote {path}")


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    try:
        import numpy

        if isinstance(obj, numpy.generic):
            return obj.item()
    except ImportError:
        pass
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def speed_tables(result: Dict[str, Any]) -> List[str]:
    out = []
    rows = []
    for regime in result["inference"]:
        for system, m in regime["systems"].items():
            rows.append(
                [
                    regime["name"],
                    system,
                    fmt(m["words_per_s"]),
                    fmt(m["tokens_per_s"]),
                    fmt(m.get("flop_limit_fraction") and 100 * m["flop_limit_fraction"]) + "%",
                    fmt(m["peak_memory_mib"]),
                    fmt(m["seconds"], 2),
                ]
            )
    out.append(
        table(
            ["regime", "system", "words/s", "tokens/s", "of FLOP limit", "peak MiB", "seconds"],
            rows,
        )
    )
    rows = []
    for regime in result["inference"]:
        r = regime["ratios"]
        rows.append(
            [
                regime["name"],
                regime["n_docs"],
                regime["n_words"],
                regime["n_tokens"],
                fmt(r.get("ours/spacy_transformers_baseline"), 2) + "x",
                fmt(r.get("ours/hf_baseline"), 2) + "x",
            ]
        )
    out.append(
        table(
            [
                "regime",
                "docs",
                "words",
                "tokens",
                "ours/spacy_transformers_baseline",
                "ours/hf_baseline",
            ],
            rows,
        )
    )
    quantized = [
        k
        for k in ("ours_int8/ours", "ours_bf16/ours")
        if any(k in r["ratios"] for r in result["inference"])
    ]
    if quantized:
        rows = [
            [r["name"]] + [fmt(r["ratios"].get(k), 2) + "x" for k in quantized]
            for r in result["inference"]
        ]
        out.append(
            table(["regime (" + result["settings"].get("cpu_kernels", "") + ")"] + quantized, rows)
        )
    if result.get("training"):
        t = result["training"]
        rows = [
            [s, fmt(m["words_per_s"]), fmt(m["seconds"], 2), m["updates"]]
            for s, m in t["systems"].items()
        ]
        rows.append(
            [
                "ours/spacy_transformers_baseline",
                fmt(t["ratios"].get("ours/spacy_transformers_baseline"), 2) + "x",
                "",
                "",
            ]
        )
        out.append(
            table(["training (ner + anomaly_scorer)", "words/s", "seconds", "updates"], rows)
        )
    return out


def accuracy_tables(result: Dict[str, Any]) -> List[str]:
    out = []
    ner = result.get("ner")
    if ner:
        rows = [
            [
                s,
                (f"{m['lr']:g}" if m.get("lr") else "-"),
                fmt(100 * m["f1"], 2),
                fmt(100 * m["precision"], 2),
                fmt(100 * m["recall"], 2),
                fmt(m["train_seconds"], 1),
                fmt(m.get("train_words_per_s"), 1),
            ]
            for s, m in ner["systems"].items()
        ]
        out.append(
            table(
                ["NER (CoNLL-2003 valid)", "lr", "F1", "P", "R", "train s", "train words/s"], rows
            )
        )
        rows = [
            [s, f"{p['lr']:g}", fmt(100 * p["f1"], 2)]
            for s, m in ner["systems"].items()
            for p in m.get("sweep", [])
        ]
        if len(rows) > len(ner["systems"]):
            out.append(table(["NER sweep (dev split)", "lr", "F1"], rows))
    anomaly = result.get("anomaly")
    if anomaly:
        rows = [
            [
                s,
                (f"{m['lr']:g}" if m.get("lr") else "-"),
                fmt(m["roc_auc"], 4),
                fmt(m["average_precision"], 4),
                fmt(m.get("train_seconds"), 1),
            ]
            for s, m in anomaly["systems"].items()
        ]
        out.append(table(["anomaly (SMS spam, held-out)", "lr", "ROC AUC", "AP", "train s"], rows))
        rows = [
            [s, f"{p['lr']:g}", fmt(p["roc_auc"], 4), fmt(p["average_precision"], 4)]
            for s, m in anomaly["systems"].items()
            for p in m.get("sweep", [])
        ]
        if len(rows) > 2:
            out.append(table(["anomaly sweep (dev split)", "lr", "ROC AUC", "AP"], rows))
    return out
