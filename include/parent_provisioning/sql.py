"""Small DB-API helpers shared by the modules that own SQL (moodle_db, wordpress, management)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

CHUNK = 1000


def chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(n: int) -> str:
    """`%s, %s, ...`: placeholders for an IN list of n parameters."""
    return ", ".join(["%s"] * n)


def rows(cur, sql: str, params: Sequence = ()) -> list[tuple]:
    cur.execute(sql, params)
    return list(cur.fetchall())


def dict_rows(cur, sql: str, params: Sequence = ()) -> list[dict]:
    cur.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
