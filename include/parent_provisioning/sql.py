"""Small DB-API helpers shared by the modules that own SQL (moodle_db, wordpress, own_tables, cycle_lock)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

# MySQL/MariaDB error numbers this project reacts to, by their server names.
ER_TABLEACCESS_DENIED = 1142
ER_COLUMNACCESS_DENIED = 1143
ER_BAD_FIELD = 1054
ER_NO_SUCH_TABLE = 1146
ACCESS_DENIED_OR_MISSING = (ER_TABLEACCESS_DENIED, ER_COLUMNACCESS_DENIED, ER_NO_SUCH_TABLE)


def error_code(exc: BaseException) -> int | None:
    """The server's error number of a DB-API error (mysqlclient puts it first in args)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


@contextmanager
def cursor(conn) -> Iterator:
    """A cursor closed afterwards, whatever happens; committing stays the caller's choice."""
    cur = conn.cursor()
    try:
        yield cur
    finally:
        cur.close()


CHUNK = 10_000  # ids or names per IN list: a handful of statements per task even at 50,000 requests


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


def streamed(conn, sql: str, params: Sequence = (), size: int = CHUNK) -> Iterator[list[tuple]]:
    """The rows of one statement, `size` at a time, read from the server as they are used, never all
    held (an unbuffered cursor: the connection runs nothing else until every row is read or the
    iterator is closed)."""
    from MySQLdb.cursors import SSCursor  # the MySQL provider's driver (mysqlclient)

    cur = conn.cursor(SSCursor)
    try:
        cur.execute(sql, params)
        while batch := cur.fetchmany(size):
            yield list(batch)
    finally:
        cur.close()


def dict_rows(cur, sql: str, params: Sequence = ()) -> list[dict]:
    cur.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def in_transaction(conn, work: Callable[..., T]) -> T:
    """work(cursor), committed; rolled back if it raises."""
    with cursor(conn) as cur:
        try:
            result = work(cur)
            conn.commit()
            return result
        except Exception:
            conn.rollback()
            raise
