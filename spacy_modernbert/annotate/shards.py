"""The run directory of `annotate`: a plan, one output file per shard, then one merged output.

`OUTPUT.shards/` holds `plan.json` (the input's identity, the settings, and where each shard's
rows lie in the input), `rejects` and `shard-000042.jsonl|parquet`. A shard file appears by an
atomic rename of a complete file, so a file that exists is finished: a crashed run resumes
by skipping them (`--resume`), and a worker that dies and is retried rewrites the same name
(exactly once, whatever the engine). The merge checks every shard's row count against the
plan before it writes OUTPUT, then removes the directory.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from .io import AnnotateInputError, InputSpec, Reject, Span, check_parquet_schema, dumps, iter_rows

PLAN_VERSION = 1


@dataclass
class Shard:
    index: int
    start: int
    end: int
    first_line: int
    n_rows: int
    n_valid: int

    @property
    def span(self) -> Span:
        return Span(self.start, self.end, self.first_line)


@dataclass
class Plan:
    settings: Dict[str, Any]
    shards: List[Shard]

    @property
    def n_rows(self) -> int:
        return sum(s.n_rows for s in self.shards)

    @property
    def n_valid(self) -> int:
        return sum(s.n_valid for s in self.shards)

    def to_json(self) -> Dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "settings": self.settings,
            "shards": [asdict(s) for s in self.shards],
        }

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Plan":
        return cls(data["settings"], [Shard(**s) for s in data["shards"]])


class RejectStop(AnnotateInputError):
    """A bad row with --on-error stop."""


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text, encoding="utf8")
    os.replace(tmp, path)


class RunDir:
    def __init__(self, output: Path, output_format: str):
        self.output = output
        self.format = output_format
        self.path = output.with_name(output.name + ".shards")

    @property
    def plan_path(self) -> Path:
        return self.path / "plan.json"

    def shard_path(self, index: int) -> Path:
        return self.path / f"shard-{index:06d}.{self.format}"

    def is_done(self, shard: Shard) -> bool:
        return self.shard_path(shard.index).exists()

    def load_plan(self) -> Optional[Plan]:
        if not self.plan_path.exists():
            return None
        data = json.loads(self.plan_path.read_text(encoding="utf8"))
        if data.get("version") != PLAN_VERSION:
            return None
        return Plan.from_json(data)

    def save_plan(self, plan: Plan) -> None:
        _atomic_write_text(self.plan_path, json.dumps(plan.to_json(), indent=1))

    def write_shard(self, index: int, rows: List[Dict[str, Any]]) -> Path:
        """Write a finished shard atomically (a retried worker overwrites the same name)."""
        path = self.shard_path(index)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        if self.format == "jsonl":
            with tmp.open("w", encoding="utf8") as f:
                for row in rows:
                    f.write(dumps(row) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            # pa.array over all rows unites their keys (Table.from_pylist keeps the first row's only)
            table = (
                pa.Table.from_batches([pa.RecordBatch.from_struct_array(pa.array(rows))])
                if rows
                else pa.table({})
            )
            pq.write_table(fixed_size_vectors(table), str(tmp))
        os.replace(tmp, path)
        return path

    def count_rows(self, index: int) -> int:
        path = self.shard_path(index)
        if self.format == "jsonl":
            with path.open("rb") as f:
                return sum(1 for _ in f)
        import pyarrow.parquet as pq

        return pq.ParquetFile(str(path)).metadata.num_rows

    def merge(self, plan: Plan) -> int:
        """Check every shard against the plan, write OUTPUT in shard order, remove the directory."""
        for shard in plan.shards:
            if not self.is_done(shard):
                raise RuntimeError(
                    f"shard {shard.index} (input lines from {shard.first_line}) has no output in {self.path}"
                )
            written = self.count_rows(shard.index)
            if written != shard.n_valid:
                raise RuntimeError(
                    f"shard {shard.index} (input lines from {shard.first_line}) has {written} output rows, "
                    f"expected {shard.n_valid}: delete {self.shard_path(shard.index)} and rerun with --resume"
                )
        tmp = self.output.with_name(f".tmp-{self.output.name}")
        if self.format == "jsonl":
            with tmp.open("wb") as out:
                for shard in plan.shards:
                    with self.shard_path(shard.index).open("rb") as f:
                        shutil.copyfileobj(f, out)
        else:
            self._merge_parquet(plan, tmp)
        os.replace(tmp, self.output)
        shutil.rmtree(self.path)
        return plan.n_valid

    def _merge_parquet(self, plan: Plan, tmp: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        paths = [str(self.shard_path(s.index)) for s in plan.shards if s.n_valid]
        # a field that is all null (or all []) in one shard has a null type there
        schemas = [pq.read_schema(p) for p in paths]
        schema = (
            pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
        )
        with pq.ParquetWriter(str(tmp), schema) as writer:
            for path in paths:
                writer.write_table(_conform(pq.read_table(path), schema))


def fixed_size_vectors(table):
    """`table` with each column of float32 lists of one length (--vectors) as a fixed-size list
    column, the layout vector indexes read."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if not (pa.types.is_list(field.type) and field.type.value_type == pa.float32()):
            continue
        column = table.column(i)
        lengths = pc.unique(pc.list_value_length(column)).to_pylist()
        if len(lengths) == 1 and lengths[0] and column.null_count == 0:
            fixed = column.cast(pa.list_(pa.float32(), lengths[0]))
            table = table.set_column(i, pa.field(field.name, fixed.type), fixed)
    return table


def _conform(table, schema):
    """`table` with `schema`'s columns in its order (missing columns as nulls)."""
    import pyarrow as pa

    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def plan_run(
    spec: InputSpec,
    shard_size: int,
    rejects_path: Path,
    on_error: str,
    settings: Dict[str, Any],
) -> Plan:
    """One cheap pass over the input: shard boundaries, row counts, rejects written.

    With on_error == "stop" the first bad row raises before any document is annotated.
    """
    if spec.format == "parquet":
        check_parquet_schema(spec)
    tmp = rejects_path.with_name(f".tmp-{rejects_path.name}")
    try:
        shards = _plan_shards(spec, shard_size, rejects_path, on_error, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if tmp.stat().st_size:
        os.replace(tmp, rejects_path)
    else:  # a clean input leaves no rejects file
        tmp.unlink()
    if spec.format == "parquet":
        # Parquet spans are row indices: start/end of each shard in rows, not bytes
        for shard in shards:
            shard.start, shard.end = shard.first_line - 1, shard.first_line - 1 + shard.n_rows
    return Plan(settings, shards)


def _plan_shards(spec, shard_size, rejects_path, on_error, tmp) -> List[Shard]:
    shards: List[Shard] = []
    start, first_line, n_rows, n_valid, position = 0, 1, 0, 0, 0
    with tmp.open("w", encoding="utf8") as rejects:
        for line, item, position in iter_rows(spec):
            if item is None:
                continue
            if n_rows == 0:
                first_line = line
            n_rows += 1
            if isinstance(item, Reject):
                if on_error == "stop":
                    raise RejectStop(
                        f"{spec.path}, line {item.line}: {item.reason}. Fix the row, or rerun with "
                        f"--on-error skip to write such rows to {rejects_path} and go on"
                    )
                rejects.write(dumps(item.to_json()) + "\n")
            else:
                n_valid += 1
            if n_rows == shard_size:
                shards.append(Shard(len(shards), start, position, first_line, n_rows, n_valid))
                start, n_rows, n_valid = position, 0, 0
        if n_rows:
            shards.append(Shard(len(shards), start, position, first_line, n_rows, n_valid))
    return shards


def input_identity(path: Path) -> Dict[str, Any]:
    stat = path.stat()
    return {
        "input": str(path.resolve()),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
    }


def changed_settings(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    return [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def pending(plan: Plan, run_dir: RunDir) -> List[Shard]:
    return [s for s in plan.shards if not run_dir.is_done(s)]


def write_empty_shards(plan: Plan, run_dir: RunDir, shards: Iterable[Shard]) -> None:
    """Shards whose rows were all rejected still get their (empty) file."""
    for shard in shards:
        if shard.n_valid == 0 and not run_dir.is_done(shard):
            run_dir.write_shard(shard.index, [])
