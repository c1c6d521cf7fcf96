"""Collects the rows an operation writes and sends them to PostgreSQL as one statement.

An operation computes everything in Python under the member's lock, stages its inserts, its balance updates and
its counter upserts here, and `flush` writes them all in a single round trip: one data-modifying CTE per table,
each fed by `unnest` over arrays so the statement text (and its prepared plan) stays the same whatever the row
count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import JSON, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import ARRAY

from loyalty_common.db import Tx
from loyalty_common.errors import Conflict

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


class StaleWrite(Conflict):
    """A guarded update found its row changed: somebody wrote without holding the lock."""

    title = "The record changed while this request was being processed; retry it"


def _qualified(table: Table) -> str:
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def _values(table: Table, column: str, values: tuple[Any, ...]) -> list[Any]:
    """JSON columns go to the driver as JSON text (the dialect's codec expects text)."""
    if isinstance(table.c[column].type, JSON):
        return [None if v is None else msgspec.json.encode(v).decode() for v in values]
    return list(values)


def _array_type(table: Table, column: str) -> str:
    col_type = table.c[column].type
    if isinstance(col_type, ARRAY):
        raise TypeError(f"{table.name}.{column}: array columns cannot be staged")
    return f"{col_type.compile(dialect=_DIALECT)}[]"


@dataclass
class _Update:
    table: Table
    keys: tuple[str, ...]
    deltas: tuple[str, ...]
    sets: tuple[str, ...]
    guards: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _Upsert:
    table: Table
    keys: tuple[str, ...]
    deltas: tuple[str, ...]
    sets: tuple[str, ...]
    maxima: tuple[str, ...]
    rows: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)

    def add(self, key: tuple[Any, ...], values: list[Any]) -> None:
        """Rows staged twice for one key merge here: deltas add up, maxima keep the greatest, sets the last."""
        staged = self.rows.get(key)
        if staged is None:
            self.rows[key] = values
            return
        n_deltas, n_sets = len(self.deltas), len(self.sets)
        for i in range(n_deltas):
            staged[i] += values[i]
        for i in range(n_deltas, n_deltas + n_sets):
            staged[i] = values[i]
        for i in range(n_deltas + n_sets, len(values)):
            staged[i] = max(staged[i], values[i])


@dataclass
class WriteSet:
    _inserts: dict[tuple[Table, tuple[str, ...]], list[tuple[Any, ...]]] = field(default_factory=dict)
    _updates: dict[tuple[Table, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]], _Update] = field(
        default_factory=dict
    )
    _upserts: dict[tuple[Table, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]], _Upsert] = field(
        default_factory=dict
    )

    def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        columns = tuple(row)
        self._inserts.setdefault((table, columns), []).append(tuple(row[c] for c in columns))

    def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self.insert(table, row)

    def update(
        self,
        table: Table,
        *,
        keys: Mapping[str, Any],
        deltas: Mapping[str, int] | None = None,
        sets: Mapping[str, Any] | None = None,
        guards: Mapping[str, Any] | None = None,
    ) -> None:
        """`UPDATE table SET d = d + delta, s = value WHERE keys AND guards`; the flush fails with StaleWrite
        unless every staged update finds its row."""
        deltas, sets, guards = deltas or {}, sets or {}, guards or {}
        shape = (table, tuple(keys), tuple(deltas), tuple(sets), tuple(guards))
        update = self._updates.get(shape)
        if update is None:
            update = self._updates[shape] = _Update(*shape)
        update.rows.append((*keys.values(), *deltas.values(), *sets.values(), *guards.values()))

    def upsert(
        self,
        table: Table,
        *,
        keys: Mapping[str, Any],
        deltas: Mapping[str, int] | None = None,
        sets: Mapping[str, Any] | None = None,
        maxima: Mapping[str, Any] | None = None,
    ) -> None:
        """`INSERT ... ON CONFLICT (keys) DO UPDATE SET d = d + delta, s = value, m = GREATEST(m, value)`: for
        running totals. `keys` must be the table's primary key. Rows are written in key order, so two
        transactions upserting the same rows take their locks in the same order and never deadlock."""
        deltas, sets, maxima = deltas or {}, sets or {}, maxima or {}
        shape = (table, tuple(keys), tuple(deltas), tuple(sets), tuple(maxima))
        upsert = self._upserts.get(shape)
        if upsert is None:
            upsert = self._upserts[shape] = _Upsert(*shape)
        upsert.add(tuple(keys.values()), [*deltas.values(), *sets.values(), *maxima.values()])

    @property
    def empty(self) -> bool:
        return not self._inserts and not self._updates and not self._upserts

    def statement(self) -> tuple[str, dict[str, Any], list[tuple[str, int]]]:
        """The SQL, its parameters, and the row count each update CTE must report."""
        ctes: list[str] = []
        params: dict[str, Any] = {}
        expected: list[tuple[str, int]] = []
        for u_index, update in enumerate(self._updates.values()):
            name = f"u{u_index}"
            table = update.table
            columns: list[str] = [*update.keys, *update.deltas, *update.sets, *update.guards]
            aliases = [*update.keys, *update.deltas, *update.sets, *(f"g_{g}" for g in update.guards)]
            arrays = []
            for c_index, (column, values) in enumerate(zip(columns, zip(*update.rows, strict=True), strict=True)):
                param = f"{name}_{c_index}"
                params[param] = _values(table, column, values)
                arrays.append(f"CAST(:{param} AS {_array_type(table, column)})")
            assignments = [f'"{c}" = t."{c}" + d."{c}"' for c in update.deltas]
            assignments += [f'"{c}" = d."{c}"' for c in update.sets]
            conditions = [f't."{c}" = d."{c}"' for c in update.keys]
            conditions += [f't."{g}" = d."g_{g}"' for g in update.guards]
            alias_list = ", ".join(f'"{a}"' for a in aliases)
            ctes.append(
                f"{name} AS (UPDATE {_qualified(table)} AS t SET {', '.join(assignments)} "
                f"FROM unnest({', '.join(arrays)}) AS d({alias_list}) "
                f"WHERE {' AND '.join(conditions)} RETURNING 1)"
            )
            expected.append((name, len(update.rows)))
        for i_index, ((table, insert_columns), rows) in enumerate(self._inserts.items()):
            name = f"i{i_index}"
            arrays = []
            for c_index, (column, values) in enumerate(zip(insert_columns, zip(*rows, strict=True), strict=True)):
                param = f"{name}_{c_index}"
                params[param] = _values(table, column, values)
                arrays.append(f"CAST(:{param} AS {_array_type(table, column)})")
            column_list = ", ".join(f'"{c}"' for c in insert_columns)
            ctes.append(
                f"{name} AS (INSERT INTO {_qualified(table)} ({column_list}) SELECT * FROM unnest({', '.join(arrays)}))"
            )
        for s_index, upsert in enumerate(self._upserts.values()):
            name = f"s{s_index}"
            table = upsert.table
            columns = [*upsert.keys, *upsert.deltas, *upsert.sets, *upsert.maxima]
            rows = [(*key, *values) for key, values in sorted(upsert.rows.items(), key=lambda item: item[0])]
            arrays = []
            for c_index, (column, values) in enumerate(zip(columns, zip(*rows, strict=True), strict=True)):
                param = f"{name}_{c_index}"
                params[param] = _values(table, column, values)
                arrays.append(f"CAST(:{param} AS {_array_type(table, column)})")
            column_list = ", ".join(f'"{c}"' for c in columns)
            key_list = ", ".join(f'"{c}"' for c in upsert.keys)
            assignments = [f'"{c}" = t."{c}" + EXCLUDED."{c}"' for c in upsert.deltas]
            assignments += [f'"{c}" = EXCLUDED."{c}"' for c in upsert.sets]
            assignments += [f'"{c}" = GREATEST(t."{c}", EXCLUDED."{c}")' for c in upsert.maxima]
            select_list = ", ".join(f'd."{c}"' for c in columns)
            action = f"DO UPDATE SET {', '.join(assignments)}" if assignments else "DO NOTHING"
            ctes.append(
                f"{name} AS (INSERT INTO {_qualified(table)} AS t ({column_list}) "
                f"SELECT {select_list} "
                f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS d({column_list}, _n) ORDER BY d._n "
                f"ON CONFLICT ({key_list}) {action})"
            )
        select = ", ".join(f"(SELECT count(*) FROM {name}) AS {name}" for name, _ in expected) or "1 AS done"
        return f"WITH {', '.join(ctes)} SELECT {select}", params, expected

    async def flush(self, tx: Tx) -> None:
        if self.empty:
            return
        sql, params, expected = self.statement()
        row = (await tx.execute(text(sql), params)).one()
        for name, count in expected:
            if getattr(row, name) != count:
                raise StaleWrite()
        self._inserts.clear()
        self._updates.clear()
        self._upserts.clear()
