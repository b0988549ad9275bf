"""Small DB-API helpers shared by the modules that own SQL (moodle_db, wordpress, management)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

CHUNK = 5000  # ids or names per IN list: a handful of statements even at 10,000 requests


def chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


MAX_STATEMENT_BYTES = 1 << 20  # well inside MariaDB's max_allowed_packet (16 MiB by default)


def insert_many(cur, sql: str, rows: Sequence[Sequence]) -> None:
    """One multi-row INSERT per MAX_STATEMENT_BYTES of rows. mysqlclient splits an executemany
    into 64 KiB statements by default, which made the statement count grow with the rows."""
    cur.max_stmt_length = MAX_STATEMENT_BYTES
    cur.executemany(sql, rows)


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
