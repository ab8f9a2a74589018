"""`spacy-modernbert.ConsoleLogger.v1`: spaCy's console logger, with "-" for a score that is None.

spaCy's training loop drops the scores that are None (e.g. `anomaly_auc` when the dev set
has no anomaly labels, or only one class), and `spacy.ConsoleLogger` then prints them as
`0.00`, which reads as a model that is always wrong. This logger is spaCy's ConsoleLogger.v3
(same settings, same table, same JSONL log file) with those cells shown as "-" instead.
It only rewrites the printed rows: the scores, the model selection and the log file are
spaCy's own.

It also sees both training lengths: `[training] max_steps` and the learning-rate schedule's
`total_steps`. When they disagree (e.g. `--training.max_steps 20` on a config whose schedule
runs 300 steps) it warns once, at the start: the run would end inside warm-up or long before
the rate decays (or, the other way round, train on at rate 0).

With `metrics_file` set it also writes one JSON line per evaluation (step, epoch, seconds
since the start, the losses since the previous evaluation, the weighted score and every
score), the file `plot-training` draws and `sweep` reads its trials' scores from.
"""

import json
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Tuple, Union

from spacy.util import registry


class _BlankCells:
    """A text stream that passes lines through, blanking the given columns of table rows.

    The columns' spans are read from the table's "----  ------ ..." rule line.
    """

    def __init__(self, stream: IO) -> None:
        self.stream = stream
        self.spans: Optional[List[Tuple[int, int]]] = None
        self.blank: List[int] = []
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self.stream.write(self._rewrite(line) + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def _rewrite(self, line: str) -> str:
        if self.spans is None and line.strip() and set(line.strip()) <= {"-", " "}:
            self.spans, start = [], None
            for i, char in enumerate(line + " "):
                if char == "-" and start is None:
                    start = i
                elif char != "-" and start is not None:
                    self.spans.append((start, i))
                    start = None
            return line
        if not self.blank or not self.spans:
            return line
        chars = list(line.ljust(self.spans[-1][1]))
        for column in self.blank:
            start, end = self.spans[column]
            chars[start:end] = "-".rjust(end - start)
        return "".join(chars).rstrip()


@registry.loggers("spacy-modernbert.ConsoleLogger.v1")
def console_logger(
    progress_bar: Optional[str] = None,
    console_output: bool = True,
    output_file: Optional[Union[str, Path]] = None,
    metrics_file: Optional[Union[str, Path]] = None,
) -> Callable:
    """spaCy's `ConsoleLogger.v3` printing "-" for scores that are None.

    progress_bar (Optional[str]): None, "eval" or "train", as in spaCy's ConsoleLogger.v3.
    console_output (bool): print the table to the console.
    output_file (Optional[Union[str, Path]]): also write the logs to this JSONL file.
    metrics_file (Optional[Union[str, Path]]): write one JSON line per evaluation to this file
        (replaced at the start of the run), flushed at once so a reader can follow the run.
    """
    from spacy.training.loggers import console_logger_v3

    spacy_setup = console_logger_v3(
        progress_bar=progress_bar, console_output=console_output, output_file=output_file
    )

    def setup_printer(
        nlp: Any, stdout: IO = sys.stdout, stderr: IO = sys.stderr
    ) -> Tuple[Callable, Callable]:
        warning = schedule_mismatch(nlp.config)
        if warning:
            stderr.write(f"\u26a0 {warning}\n")
        table = _BlankCells(stdout)
        log_step, spacy_finalize = spacy_setup(nlp, table, stderr)
        write_metrics = metrics_writer(metrics_file)
        # the columns as spaCy lays them out: epoch, step, one loss per trainable pipe, scores
        n_losses = sum(1 for _, proc in nlp.pipeline if getattr(proc, "is_trainable", False))
        weights = nlp.config["training"]["score_weights"]
        score_cols = [col for col, weight in weights.items() if weight is not None]

        def step(info: Optional[Dict[str, Any]]) -> None:
            if info is not None:
                scores = info.get("other_scores", {})
                table.blank = [
                    2 + n_losses + k for k, col in enumerate(score_cols) if scores.get(col) is None
                ]
                write_metrics(info)
            try:
                log_step(info)
            finally:
                table.blank = []

        def finalize() -> None:
            spacy_finalize()
            write_metrics(None)

        return step, finalize

    return setup_printer


def metrics_writer(path: Optional[Union[str, Path]]) -> Callable[[Optional[Dict[str, Any]]], None]:
    """A function writing an evaluation's info as one JSON line to `path` (None: to nowhere).

    Called with None, it closes the file.
    """
    if path is None:
        return lambda info: None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = path.open("w", encoding="utf8")
    start = time.perf_counter()

    def write(info: Optional[Dict[str, Any]]) -> None:
        if info is None:
            stream.close()
            return
        record = {
            "step": info.get("step"),
            "epoch": info.get("epoch"),
            "seconds": round(time.perf_counter() - start, 3),
            "losses": {name: float(loss) for name, loss in info.get("losses", {}).items()},
            "score": _number(info.get("score")),
            "scores": {
                name: _number(value)
                for name, value in info.get("other_scores", {}).items()
                if value is None or isinstance(value, (int, float))
            },
        }
        stream.write(json.dumps(record) + "\n")
        stream.flush()

    return write


def read_metrics(path: Union[str, Path]) -> List[Dict[str, Any]]:
    """The records of a metrics file, in order; a last line cut short (a run still writing) is skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def _number(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def schedule_mismatch(config: Any) -> Optional[str]:
    """A one-line warning when `[training] max_steps` and the rate schedule's total_steps differ."""
    training = config.get("training", {})
    max_steps = training.get("max_steps") or 0
    schedule = training.get("optimizer", {}).get("learn_rate")
    if not isinstance(schedule, dict) or not max_steps:
        return None
    total = schedule.get("total_steps")
    if not isinstance(total, int) or total == max_steps:
        return None
    warmup = schedule.get("warmup_steps")
    if isinstance(warmup, int) and max_steps <= warmup:
        effect = f"the run ends inside warm-up (warmup_steps {warmup})"
    elif max_steps < total:
        effect = f"the run ends before the rate has decayed ({100 * max_steps / total:.0f}% of the schedule)"
    else:
        effect = f"steps {total + 1}-{max_steps} train at the schedule's final rate"
    return (
        f"[training] max_steps = {max_steps} but the learning-rate schedule's total_steps = {total}: {effect}. "
        f"Set [training.optimizer.learn_rate] total_steps = {max_steps} too (e.g. "
        f"--training.optimizer.learn_rate.total_steps {max_steps})."
    )
