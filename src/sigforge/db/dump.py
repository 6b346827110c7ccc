"""A portable logical dump of every table, and loading it into a freshly migrated database (SQLite or PostgreSQL).

Format: one file per table, ``<table>.jsonl``, one JSON array per row holding the values in the column order the
dump reports, each by its codec: ``str``, ``int``, ``bool`` (JSON ``true``/``false``), ``float`` (Python's JSON,
so ``NaN``/``Infinity`` survive), ``bytes`` (standard base64), ``datetime`` (ISO 8601 with its UTC offset), ``json``
(the value itself); ``null`` is NULL. Rows come in primary-key order, tables in foreign-key dependency order.

Consistency: the whole dump is read in one transaction, a snapshot — PostgreSQL ``REPEATABLE READ READ ONLY``;
SQLite in WAL mode gives a deferred read transaction one snapshot from its first read to its end. Writers keep
writing meanwhile; what they commit after the snapshot is not in the dump.

Loading runs in one transaction on a database migrated to head and holding no rows; the columns of each table must
be exactly the ones the models have now (same names and codecs), and every table's row count must match. On
PostgreSQL, identity sequences are moved past the loaded ids. One normalisation: a JSON column's JSON ``null`` and
SQL ``NULL`` both read back as None, and are loaded as SQL ``NULL``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection

from sigforge.db.models import Base
from sigforge.db.session import Database
from sigforge.errors import Conflict, IntegrityError, SchemaMismatch

BATCH_ROWS = 500
BATCH_BYTES = 32 * 1024**2
ALEMBIC_TABLE = "alembic_version"


@dataclass(frozen=True, slots=True)
class TableDump:
    """One dumped table: its file (relative to the dump directory), columns with codecs, and row count."""

    name: str
    file: str
    columns: tuple[tuple[str, str], ...]
    rows: int


# Most specific first: the first matching type wins (a TypeDecorator counts by its ``impl`` for DateTime).
_CODECS: tuple[tuple[type[Any], str], ...] = (
    (JSON, "json"),
    (LargeBinary, "bytes"),
    (DateTime, "datetime"),
    (Boolean, "bool"),
    (Float, "float"),
    (Integer, "int"),
    (String, "str"),
)
# Codecs whose JSON value must have exactly this Python type (a bool is no int here).
_EXACT: dict[str, type[Any]] = {"int": int, "bool": bool, "str": str}


def codec_of(column: Column[Any]) -> str:
    """The codec a column's values are written with; an unknown type is refused rather than guessed."""
    kind = column.type
    impl = getattr(kind, "impl", None)
    for cls, codec in _CODECS:
        if isinstance(kind, cls) or (cls is DateTime and isinstance(impl, DateTime)):
            return codec
    raise IntegrityError(f"the dump does not know how to write column {column.table.name}.{column.name} ({kind!r})")


def tables() -> list[Table]:
    """Every table of the models, in foreign-key dependency order (parents first)."""
    return list(Base.metadata.sorted_tables)


def columns_of(table: Table) -> tuple[tuple[str, str], ...]:
    return tuple((str(c.name), codec_of(c)) for c in table.columns)


def _encode(value: Any, codec: str) -> Any:
    if value is None:
        return None
    if codec == "bytes":
        return base64.b64encode(value).decode("ascii")
    if codec == "datetime":
        assert isinstance(value, datetime)
        return value.isoformat()
    return value


def _decode(value: Any, codec: str, where: str) -> Any:
    if value is None or codec == "json":
        return value
    if codec == "bytes" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise IntegrityError(f"{where}: not base64: {exc}") from exc
    if codec == "datetime" and isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError as exc:
            raise IntegrityError(f"{where}: not an ISO 8601 time: {value!r}") from exc
        if stamp.tzinfo is None:
            raise IntegrityError(f"{where}: a time without its UTC offset: {value!r}")
        return stamp
    if codec == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if codec in _EXACT and type(value) is _EXACT[codec]:
        return value
    raise IntegrityError(f"{where}: expected a {codec} value, got {type(value).__name__}")


def _snapshot(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def dump(db: Database, out_dir: Path) -> list[TableDump]:
    """Write every table to ``out_dir/<table>.jsonl`` from one consistent snapshot; return what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[TableDump] = []
    with db.engine.connect() as conn, conn.begin():
        _snapshot(conn)
        for table in tables():
            cols = columns_of(table)
            query = select(table).order_by(*table.primary_key.columns).execution_options(yield_per=BATCH_ROWS)
            count = 0
            with (out_dir / f"{table.name}.jsonl").open("x", encoding="utf-8") as fh:
                for row in conn.execute(query):
                    values = [_encode(v, codec) for v, (_, codec) in zip(row, cols, strict=True)]
                    fh.write(json.dumps(values, separators=(",", ":"), allow_nan=True))
                    fh.write("\n")
                    count += 1
            written.append(TableDump(str(table.name), f"{table.name}.jsonl", cols, count))
    return written


def table_names(db: Database) -> list[str]:
    """The tables the database holds now (any, not just sigforge's)."""
    return sorted(sa_inspect(db.engine).get_table_names())


def has_rows(db: Database) -> bool:
    """Whether any sigforge table holds a row."""
    present = set(table_names(db))
    with db.engine.connect() as conn:
        for table in tables():
            if table.name in present and conn.execute(select(func.count()).select_from(table)).scalar_one():
                return True
    return False


def drop_everything(db: Database) -> None:
    """Drop sigforge's tables and the migration record (for a restore with ``--force``).

    Raises:
        Conflict: the database also holds tables sigforge does not know (nothing is dropped then).
    """
    ours = {str(t.name) for t in tables()} | {ALEMBIC_TABLE}
    foreign = [name for name in table_names(db) if name not in ours]
    if foreign:
        raise Conflict(f"the database holds tables sigforge does not know ({', '.join(foreign)}): restore into an "
                       "empty database")  # fmt: skip
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text(f"DROP TABLE IF EXISTS {ALEMBIC_TABLE}"))


def read_rows(in_dir: Path, spec: TableDump) -> Iterator[dict[str, Any]]:
    """The rows of one dumped table, decoded (for reading a dump without loading it)."""
    for row, _ in _rows(in_dir / spec.file, spec.name, spec.columns):
        yield row


def _rows(path: Path, table: str, cols: Sequence[tuple[str, str]]) -> Iterator[tuple[dict[str, Any], int]]:
    names = [name for name, _ in cols]
    with path.open("r", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            where = f"{table}.jsonl line {number}"
            try:
                values = json.loads(line)
            except ValueError as exc:
                raise IntegrityError(f"{where}: not JSON: {exc}") from exc
            if not isinstance(values, list) or len(values) != len(cols):
                raise IntegrityError(f"{where}: expected {len(cols)} values")
            row = {n: _decode(v, c, f"{where}, column {n}") for n, v, (_, c) in zip(names, values, cols, strict=True)}
            yield row, len(line)


def _loading_table(table: Table) -> Table:
    """A copy of ``table`` whose JSON columns store None as SQL NULL (see the module docstring)."""
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if isinstance(column.type, JSON):
            column.type = JSON(none_as_null=True)
    return copy


def load(db: Database, in_dir: Path, dumped: Sequence[TableDump]) -> dict[str, int]:
    """Insert a dump into ``db`` (migrated to head, no rows) in one transaction; return the rows per table.

    Raises:
        SchemaMismatch: the dump's tables or columns are not the models' (another schema).
        Conflict: the database already holds rows.
        IntegrityError: a malformed row, or a row count that differs from the dump's.
    """
    by_name = {d.name: d for d in dumped}
    models = tables()
    if set(by_name) != {t.name for t in models}:
        raise SchemaMismatch(f"the dump holds tables {sorted(by_name)}, this schema has {[t.name for t in models]}")
    for table in models:
        if by_name[table.name].columns != columns_of(table):
            raise SchemaMismatch(f"the dump's columns of {table.name} differ from this schema's")
    if has_rows(db):
        raise Conflict("the target database already holds rows: restore into an empty database")
    counts: dict[str, int] = {}
    with db.engine.connect() as conn, conn.begin():
        for table in models:
            spec = by_name[table.name]
            target = _loading_table(table)
            batch: list[dict[str, Any]] = []
            size = count = 0
            for row, length in _rows(in_dir / spec.file, table.name, spec.columns):
                batch.append(row)
                size += length
                count += 1
                if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
                    conn.execute(sa_insert(target), batch)
                    batch, size = [], 0
            if batch:
                conn.execute(sa_insert(target), batch)
            if count != spec.rows:
                raise IntegrityError(f"{spec.file} holds {count} rows, the dump says {spec.rows}")
            counts[table.name] = count
        if conn.dialect.name == "postgresql":
            _advance_sequences(conn, models)
    return counts


def _advance_sequences(conn: Connection, models: Sequence[Table]) -> None:
    for table in models:
        for column in table.primary_key.columns:
            if column.autoincrement is True or (column.autoincrement == "auto" and isinstance(column.type, Integer)):
                sequence = conn.execute(
                    text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
                ).scalar_one_or_none()
                if sequence is None:
                    continue
                top = conn.execute(select(func.max(column))).scalar_one()
                conn.execute(text("SELECT setval(:s, :v, :called)"),
                             {"s": sequence, "v": top or 1, "called": top is not None})  # fmt: skip
