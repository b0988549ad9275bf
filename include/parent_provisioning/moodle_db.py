"""Everything the cycle reads from and writes to Moodle's database, batched.

Table names come from the validated prefix only; every value is a parameter, and a batch
insert's VALUES holds placeholders only, so that the driver sends it as one multi-row
statement (with a literal in it, mysqlclient sends one statement per row). Writes do
what Moodle's own role_assign() and context_user::instance() do, and check before they
insert: `role_assignments` and `cache_flags` have no unique index.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from include.parent_provisioning import sql
from include.parent_provisioning.matching import Pupil
from include.parent_provisioning.settings import Settings

CONTEXT_SYSTEM, CONTEXT_USER = 10, 30
DIRTY_USERS = "accesslib/dirtyusers"


class SiteError(RuntimeError):
    """Moodle is not set up the way the settings say; the message says what to fix."""


@dataclass(frozen=True)
class Site:
    role_id: int
    system_path: str
    mnethost_id: int
    session_timeout: int
    extended_usernames: bool
    static_context_ids: tuple[int, ...]

    @classmethod
    def from_dict(cls, site: dict) -> Site:
        """The Site `check` returned, back from XCom (where tuples become lists)."""
        return cls(**{**site, "static_context_ids": tuple(site["static_context_ids"])})


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    auth: str
    suspended: bool


def check_site(conn, s: Settings) -> Site:
    try:
        with sql.cursor(conn) as cur:
            return _check_site(cur, s)
    except Exception as exc:
        if sql.error_code(exc) in sql.ACCESS_DENIED_OR_MISSING:
            raise SiteError(
                f"Moodle's database refused a query ({exc.args[-1]}): is 'moodle_table_prefix' "
                f"({s.moodle_table_prefix!r}) right, the moodle_db connection on Moodle's database, and "
                "docs/grants.sql applied for its user?"
            ) from exc
        raise


COLLATION = "utf8mb4_unicode_ci"  # Moodle's default on MariaDB, and how matching and the sync's prediction compare
COMPARED_COLUMNS = ("username", "firstname", "lastname", "department", "email", "auth")


def _check_collation(cur, s: Settings) -> None:
    """The matching's database pre-filter and the user sync's prediction compare names and usernames
    as utf8mb4_unicode_ci does (case and accents ignored, trailing spaces too): another collation
    would make both wrong without a word, so the cycle stops and says what to change."""
    other = sql.rows(
        cur,
        "SELECT column_name, collation_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        f" AND table_name = %s AND column_name IN ({sql.marks(len(COMPARED_COLUMNS))})"
        " AND collation_name <> %s ORDER BY column_name",
        (s.mdl("user"), *COMPARED_COLUMNS, COLLATION),
    )
    if other:
        columns = ", ".join(f"{c} ({coll})" for c, coll in other)
        raise SiteError(
            f"Moodle's {s.mdl('user')} table compares {columns}, not as {COLLATION}: the cycle's matching and its "
            f"prediction of Moodle's user sync rely on {COLLATION}. Convert Moodle's database with Moodle's own "
            f"`php admin/cli/mysql_collation.php --collation={COLLATION}` (in maintenance mode, after a backup)"
        )


def _check_site(cur, s: Settings) -> Site:
    """Each setting that names something in Moodle, checked in turn: the first missing one stops the cycle."""
    _check_collation(cur, s)
    cfg = dict(
        sql.rows(
            cur,
            f"SELECT name, value FROM `{s.settings_view}` WHERE plugin = 'core' AND name IN "
            "('mnet_localhost_id', 'sessiontimeout', 'extendedusernamechars')",
        )
    )
    role_id = _parent_role_id(cur, s)
    system_path = _system_path(cur, s)
    _check_static_contexts(cur, s)
    _check_pupil_cohort(cur, s)
    return Site(
        role_id=role_id,
        system_path=system_path,
        mnethost_id=int(cfg.get("mnet_localhost_id", 1)),
        session_timeout=int(cfg.get("sessiontimeout", 28800)),
        extended_usernames=cfg.get("extendedusernamechars") == "1",
        static_context_ids=s.static_context_ids,
    )


def _parent_role_id(cur, s: Settings) -> int:
    """The Parent role's id, checked assignable in user contexts (where every child link lives)."""
    by = "id" if isinstance(s.parent_role, int) else "shortname"
    roles = sql.rows(cur, f"SELECT id FROM `{s.mdl('role')}` WHERE {by} = %s", (s.parent_role,))
    if not roles:
        raise SiteError(
            f"setting 'parent_role': no Moodle role {s.parent_role!r}; create the Parent role "
            "(Site administration > Users > Define roles) or correct the setting"
        )
    role_id = int(roles[0][0])
    if not sql.rows(
        cur,
        f"SELECT id FROM `{s.mdl('role_context_levels')}` WHERE roleid = %s AND contextlevel = %s",
        (role_id, CONTEXT_USER),
    ):
        raise SiteError(
            f"setting 'parent_role': role {s.parent_role!r} cannot be assigned in user contexts; tick "
            "'User' under 'Context types where this role may be assigned'"
        )
    return role_id


def _system_path(cur, s: Settings) -> str:
    """The system context's path, which every user context's path starts with."""
    system = sql.rows(cur, f"SELECT id, path FROM `{s.mdl('context')}` WHERE contextlevel = %s", (CONTEXT_SYSTEM,))
    if not system:
        raise SiteError("Moodle has no system context: is 'moodle_table_prefix' right?")
    return system[0][1] or f"/{system[0][0]}"


def _check_static_contexts(cur, s: Settings) -> None:
    """Each static context exists and is not a user's: every parent is linked to each of them."""
    if not s.static_context_ids:
        return
    found = dict(
        sql.rows(
            cur,
            f"SELECT id, contextlevel FROM `{s.mdl('context')}` WHERE id IN ({sql.marks(len(s.static_context_ids))})",
            s.static_context_ids,
        )
    )
    missing = [c for c in s.static_context_ids if c not in found]
    if missing:
        raise SiteError(f"setting 'static_context_ids': no Moodle context with id {missing}")
    users = [c for c in s.static_context_ids if found[c] == CONTEXT_USER]
    if users:
        raise SiteError(
            f"setting 'static_context_ids': context(s) {users} belong to a user: every parent would be "
            "linked to that person; give the system, category or course contexts parents share"
        )


def _check_pupil_cohort(cur, s: Settings) -> None:
    """A cohort pupil filter names a cohort that exists: otherwise no child would ever match."""
    pf = s.pupil_filter
    if pf.by != "cohort":
        return
    if not sql.rows(
        cur,
        f"SELECT id FROM `{s.mdl('cohort')}` WHERE idnumber IN ({sql.marks(len(pf.values))})"
        f" OR name IN ({sql.marks(len(pf.values))})",
        pf.values + pf.values,
    ):
        raise SiteError(f"setting 'pupil_filter': no cohort with idnumber or name {', '.join(pf.values)}")


def _rows_in(cur, query: str, values: Sequence, params: Sequence = (), then: str = "") -> Iterator[tuple]:
    """The rows of `query` ending in `IN`, completed with the list of `values` (after `params`) and
    `then`: one statement per chunk of values, none for no values."""
    for part in sql.chunks(values):
        yield from sql.rows(cur, f"{query} ({sql.marks(len(part))}){then}", (*params, *part))


def _streamed_in(conn, query: str, values: Sequence, params: Sequence = ()) -> Iterator[tuple]:
    """_rows_in for results too big to hold: each chunk's rows streamed (sql.streamed), one statement per
    chunk of values; the connection runs nothing else until they are read."""
    for part in sql.chunks(values):
        for rows in sql.streamed(conn, f"{query} ({sql.marks(len(part))})", (*params, *part)):
            yield from rows


Keep = Callable[[Pupil], bool] | None  # which accounts to keep of those read (find_named)


def find_accounts(conn, s: Settings, site: Site, usernames: Iterable[str]) -> dict[str, Account]:
    """Not-deleted accounts on the local host whose username is one of these."""
    with sql.cursor(conn) as cur:
        return {
            username.lower(): Account(int(uid), username, auth, bool(suspended))
            for uid, username, auth, suspended in _rows_in(
                cur,
                f"SELECT id, username, auth, suspended FROM `{s.mdl('user')}` WHERE mnethostid = %s AND deleted = 0"
                " AND username IN",
                sorted(set(usernames)),
                (site.mnethost_id,),
            )
        }


@dataclass(frozen=True)
class AuthDbConfig:
    """What Moodle's auth_db plugin is set to: which column of which table it reads, and what
    it does to accounts missing from it (`removeuser`: 0 keep, 1 suspend, 2 full delete)."""

    removeuser: int
    fielduser: str
    table: str

    @classmethod
    def from_settings(cls, cfg: dict[str, str | None]) -> AuthDbConfig:
        """From auth_db's rows of the settings view, as Moodle reads them: unset or unreadable is 'keep'."""
        removeuser = str(cfg.get("removeuser") or "0").strip()
        return cls(
            removeuser=int(removeuser) if removeuser.isdigit() else 0,
            fielduser=(cfg.get("fielduser") or "").strip(),
            table=(cfg.get("table") or "").strip(),
        )


def auth_db_config(conn, s: Settings) -> AuthDbConfig:
    with sql.cursor(conn) as cur:
        rows = sql.rows(
            cur,
            f"SELECT name, value FROM `{s.settings_view}` WHERE plugin = 'auth_db'"
            " AND name IN ('removeuser', 'fielduser', 'table')",
        )
    return AuthDbConfig.from_settings(dict(rows))


def parent_accounts(conn, s: Settings, site: Site) -> list[Account]:
    """Every 'db' account Moodle's user sync looks at: not deleted, on the local host."""
    with sql.cursor(conn) as cur:
        return [
            Account(int(uid), username, "db", bool(suspended))
            for uid, username, suspended in sql.rows(
                cur,
                f"SELECT id, username, suspended FROM `{s.mdl('user')}` WHERE auth = 'db' AND deleted = 0"
                " AND mnethostid = %s",
                (site.mnethost_id,),
            )
        ]


def usernames_taken(conn, s: Settings, site: Site, usernames: Iterable[str]) -> list[str]:
    """The usernames of every account on the local host, deleted or not, whatever its auth, that
    the database finds equal to one of these: Moodle cannot create another account with them."""
    with sql.cursor(conn) as cur:
        return [
            r[0]
            for r in _rows_in(
                cur,
                f"SELECT username FROM `{s.mdl('user')}` WHERE mnethostid = %s AND username IN",
                sorted(set(usernames)),
                (site.mnethost_id,),
            )
        ]


def find_named(
    conn, s: Settings, site: Site, surnames: Iterable[str], keep: Keep = None
) -> tuple[list[Pupil], list[Pupil]]:
    """The not-deleted accounts, on any host, with one of these surnames (the collation ignores case
    and accents), one statement per chunk of surnames, streamed: the active pupils (the candidates,
    as _is_pupil_sql says) and every other account (suspended pupils, staff, parents, accounts outside
    the pupil filter: not candidates, but each may be the child a request means, which makes its only
    candidate namesake a guess; see matching). keep: only the accounts it keeps, the others never held."""
    names = sorted({n.strip() for n in surnames if n.strip()})
    is_pupil, params = _is_pupil_sql(s, site, "u")
    query = (
        f"SELECT u.id, u.firstname, u.lastname, u.department, {is_pupil} FROM `{s.mdl('user')}` u"
        " WHERE u.deleted = 0 AND u.lastname IN"
    )
    pupils: list[Pupil] = []
    others: list[Pupil] = []
    for uid, first, last, dept, pupil in _streamed_in(conn, query, names, params):
        account = Pupil(int(uid), first, last, dept or "")
        if keep is None or keep(account):
            (pupils if pupil else others).append(account)
    return pupils, others


def ensure_user_contexts(
    conn, s: Settings, site: Site, user_ids: Iterable[int], dry_run: bool
) -> dict[int, int | None]:
    """{user id: its user context id}, creating missing contexts and mending a missing
    path or wrong depth (as left by the WordPress plugin). None: would be created (dry run)."""
    result: dict[int, int | None] = {}
    with sql.cursor(conn) as cur:
        for part in sql.chunks(sorted(set(user_ids))):
            result.update(_ensure_contexts_of(cur, s.mdl("context"), site, part, dry_run))
    return result


def _ensure_contexts_of(cur, ctx: str, site: Site, ids: Sequence[int], dry_run: bool) -> dict[int, int | None]:
    """ensure_user_contexts for one chunk of users: a handful of statements whatever its size."""
    rows = sql.rows(
        cur,
        f"SELECT instanceid, id, path, depth FROM `{ctx}` WHERE contextlevel = %s"
        f" AND instanceid IN ({sql.marks(len(ids))})",
        (CONTEXT_USER, *ids),
    )
    existing = {int(r[0]): r for r in rows}
    missing = [uid for uid in ids if uid not in existing]
    broken = [int(r[0]) for r in rows if r[2] != f"{site.system_path}/{r[1]}" or r[3] != 2]
    result: dict[int, int | None] = {uid: int(r[1]) for uid, r in existing.items()}
    if dry_run:
        return {**result, **dict.fromkeys(missing)}
    if missing:
        sql.insert_many(
            cur,
            f"INSERT IGNORE INTO `{ctx}` (contextlevel, instanceid, depth, path, locked) VALUES (%s, %s, %s, %s, %s)",
            [(CONTEXT_USER, uid, 0, None, 0) for uid in missing],
        )
    fix = missing + broken
    if fix:
        cur.execute(
            f"UPDATE `{ctx}` SET path = CONCAT(%s, '/', id), depth = %s WHERE contextlevel = %s"
            f" AND instanceid IN ({sql.marks(len(fix))})",
            (site.system_path, site.system_path.count("/") + 1, CONTEXT_USER, *fix),
        )
    if missing:
        for uid, cid in sql.rows(
            cur,
            f"SELECT instanceid, id FROM `{ctx}` WHERE contextlevel = %s AND instanceid IN ({sql.marks(len(missing))})",
            (CONTEXT_USER, *missing),
        ):
            result[int(uid)] = int(cid)
    return result


def ensure_role_assignments(
    conn, s: Settings, site: Site, wanted: set[tuple[int | None, int]], dry_run: bool
) -> list[tuple[int | None, int]]:
    """Assign the parent role for each (context id, parent user id) not already assigned.
    Returns the pairs that were (or, in a dry run, would be) added."""
    ra = s.mdl("role_assignments")
    with sql.cursor(conn) as cur:
        have = {
            (int(cid), int(uid))
            for cid, uid in _rows_in(
                cur,
                f"SELECT contextid, userid FROM `{ra}` WHERE roleid = %s AND userid IN",
                sorted({uid for _, uid in wanted}),
                (site.role_id,),
            )
        }
        todo = sorted(((c, u) for c, u in wanted if c is None or (c, u) not in have), key=lambda x: (x[0] or 0, x[1]))
        if dry_run or not todo:
            return todo
        now = int(time.time())
        sql.insert_many(
            cur,
            f"INSERT INTO `{ra}` (roleid, contextid, userid, timemodified, modifierid, component, itemid,"
            " sortorder) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(site.role_id, c, u, now, s.modifier_user_id, "", 0, 0) for c, u in todo],
        )
        return todo


LINKS_TABLE_SQL = """CREATE TABLE IF NOT EXISTS `{table}` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `request_id` bigint(20) NOT NULL,
  `parent_userid` bigint(20) NOT NULL,
  `child_userid` bigint(20) NULL COMMENT 'NULL: a static context',
  `contextid` bigint(20) NOT NULL,
  `roleid` bigint(20) NOT NULL,
  `ra_id` bigint(20) NOT NULL COMMENT 'role_assignments.id',
  `origin` varchar(16) NOT NULL COMMENT 'made: this project inserted it; found: it was there already',
  `run_id` varchar(250) NOT NULL COMMENT 'the run that made or first found it',
  `created_at` datetime NOT NULL,
  `removed_at` datetime NULL,
  `removed_by_run` varchar(250) NULL,
  `removed_reason` varchar(64) NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `request_ra` (`request_id`, `ra_id`),
  KEY `parent` (`parent_userid`),
  KEY `ra` (`ra_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"""


def links_table_exists(conn, s: Settings) -> bool:
    """Whether the ledger of links is there (the first real run makes it; a dry run does not)."""
    with sql.cursor(conn) as cur:
        return bool(
            sql.rows(
                cur,
                "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
                (s.links_table,),
            )
        )


def ensure_links_table(conn, s: Settings) -> bool:
    """Create the ledger of links on the first run; True when it was created."""
    if links_table_exists(conn, s):
        return False
    with sql.cursor(conn) as cur:
        cur.execute(LINKS_TABLE_SQL.format(table=s.links_table))
        conn.commit()
        return True


@dataclass(frozen=True, slots=True)
class Link:
    """One link a request justifies: the Parent role of `parent` in `context` (a child's user
    context, child = that pupil; or a static context, child = None)."""

    request_id: int
    parent: int
    child: int | None
    context: int


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A link the ledger holds (not removed), as it stands in Moodle now."""

    id: int
    request_id: int
    parent: int
    child: int | None  # None: a static context
    context: int
    ra_id: int
    origin: str  # made | found | adopted
    present: bool  # its role_assignments row is still there, for this parent, context and role
    child_is_pupil: bool = True  # a static context's: True


def record_links(
    conn,
    s: Settings,
    site: Site,
    links: Iterable[Link],
    made: Iterable[tuple[int | None, int]],
    run_id: str,
    origin: str | None = None,
) -> int:
    """Write each link into the ledger with the role_assignments row that carries it, in the
    caller's transaction (the one that inserted the rows): a link is never without its record.
    Its origin: 'made' when its (context, parent) is in `made`, else 'found'; or `origin` for all.
    A link already recorded for its request stays as it was. Returns the rows added."""
    links = list(links)
    if not links:
        return 0
    made = set(made)
    with sql.cursor(conn) as cur:
        ra_id = _assignment_ids(cur, s, site, {link.parent for link in links})
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        rows = [
            (
                link.request_id,
                link.parent,
                link.child,
                link.context,
                site.role_id,
                ra_id[(link.context, link.parent)],
                origin or ("made" if (link.context, link.parent) in made else "found"),
                run_id,
                now,
            )
            for link in sorted(links, key=lambda x: (x.request_id, x.context, x.parent))
        ]
        sql.insert_many(
            cur,
            f"INSERT IGNORE INTO `{s.links_table}` (request_id, parent_userid, child_userid, contextid, roleid,"
            " ra_id, origin, run_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        return max(cur.rowcount, 0)  # mysqlclient sums the rows of a split executemany


def _assignment_ids(cur, s: Settings, site: Site, parents: Iterable[int]) -> dict[tuple[int, int], int]:
    """{(context, parent): its Parent-role assignment's id}, the oldest if Moodle holds two."""
    found: dict[tuple[int, int], int] = {}
    for rid, cid, uid in _rows_in(
        cur,
        f"SELECT id, contextid, userid FROM `{s.mdl('role_assignments')}` WHERE roleid = %s AND userid IN",
        sorted(set(parents)),
        (site.role_id,),
        then=" ORDER BY id",
    ):
        found.setdefault((int(cid), int(uid)), int(rid))
    return found


@dataclass(frozen=True, slots=True)
class Assignment:
    """A Parent-role assignment found in Moodle: in a user context (child: that user) or another."""

    ra_id: int
    parent: int
    context: int
    child: int | None


def unrecorded_parent_links(conn, s: Settings, site: Site) -> list[Assignment]:
    """The manual (component '') Parent-role assignments in user contexts and in the static
    contexts that no open ledger row holds, and that the cycle never found already there (made
    by hand): the ones adoption looks at."""
    ra, ctx = s.mdl("role_assignments"), s.mdl("context")
    where, params = "c.contextlevel = %s", [CONTEXT_USER]
    if site.static_context_ids:
        where = f"({where} OR c.id IN ({sql.marks(len(site.static_context_ids))}))"
        params += list(site.static_context_ids)
    unrecorded = ""
    if links_table_exists(conn, s):
        unrecorded = (
            f" AND NOT EXISTS (SELECT 1 FROM `{s.links_table}` l WHERE l.ra_id = ra.id"
            " AND (l.removed_at IS NULL OR l.origin = 'found'))"  # a link once found there is someone's own
        )
    with sql.cursor(conn) as cur:
        return [
            Assignment(int(rid), int(uid), int(cid), int(instance) if level == CONTEXT_USER else None)
            for rid, uid, cid, level, instance in sql.rows(
                cur,
                f"SELECT ra.id, ra.userid, ra.contextid, c.contextlevel, c.instanceid FROM `{ra}` ra"
                f" JOIN `{ctx}` c ON c.id = ra.contextid WHERE ra.roleid = %s AND ra.component = '' AND {where}"
                f"{unrecorded} ORDER BY ra.id",
                (site.role_id, *params),
            )
        ]


def ledger_requests(conn, s: Settings, request_ids: Iterable[int]) -> set[int]:
    """Which of these requests hold a link in the ledger (not removed)."""
    ids = sorted(set(request_ids))
    if not ids or not links_table_exists(conn, s):
        return set()
    with sql.cursor(conn) as cur:
        return {
            int(r[0])
            for r in _rows_in(
                cur,
                f"SELECT DISTINCT request_id FROM `{s.links_table}` WHERE removed_at IS NULL AND request_id IN",
                ids,
            )
        }


def mark_access_dirty(conn, s: Settings, site: Site, user_ids: Iterable[int]) -> None:
    """What role_assign() does so a logged-in parent sees a new child without logging out."""
    ids = sorted({str(u) for u in user_ids})
    if not ids:
        return
    cf = s.mdl("cache_flags")
    now = int(time.time())
    with sql.cursor(conn) as cur:
        for part in sql.chunks(ids):
            have = {
                r[0]
                for r in sql.rows(
                    cur,
                    f"SELECT name FROM `{cf}` WHERE flagtype = '{DIRTY_USERS}' AND name IN ({sql.marks(len(part))})",
                    part,
                )
            }
            if have:
                cur.execute(
                    f"UPDATE `{cf}` SET value = '1', timemodified = %s, expiry = %s"
                    f" WHERE flagtype = '{DIRTY_USERS}' AND name IN ({sql.marks(len(have))})",
                    (now, now + site.session_timeout, *sorted(have)),
                )
            new = [n for n in part if n not in have]
            if new:
                sql.insert_many(
                    cur,
                    f"INSERT INTO `{cf}` (flagtype, name, timemodified, value, expiry) VALUES (%s, %s, %s, %s, %s)",
                    [(DIRTY_USERS, n, now, "1", now + site.session_timeout) for n in new],
                )


def _email_domain_patterns(domains: Iterable[str]) -> tuple[str, ...]:
    """LIKE patterns for an email at each of these domains, their wildcards taken literally."""
    return tuple("%@" + d.replace("%", r"\%").replace("_", r"\_") for d in domains)


def _is_pupil_sql(s: Settings, site: Site, alias: str) -> tuple[str, tuple]:
    """An SQL condition on the user row `alias`: an active pupil, a candidate for a child (find_named)."""
    pf = s.pupil_filter
    if pf.by == "cohort":
        marks = sql.marks(len(pf.values))
        where = (
            f"EXISTS (SELECT 1 FROM `{s.mdl('cohort_members')}` cm JOIN `{s.mdl('cohort')}` c ON c.id = cm.cohortid"
            f" WHERE cm.userid = {alias}.id AND (c.idnumber IN ({marks}) OR c.name IN ({marks})))"
        )
        params: tuple = pf.values + pf.values
    elif pf.by == "auth":
        where, params = f"{alias}.auth IN ({sql.marks(len(pf.values))})", pf.values
    else:
        where = "(" + " OR ".join([f"{alias}.email LIKE %s"] * len(pf.values)) + ")"
        params = _email_domain_patterns(pf.values)
    return (
        f"({alias}.deleted = 0 AND {alias}.suspended = 0 AND {alias}.auth NOT IN ('db', 'nologin')"
        f" AND {alias}.mnethostid = %s AND {where})",
        (site.mnethost_id, *params),
    )


def active_links(conn, s: Settings, site: Site, batch: int) -> Iterator[list[LedgerRow]]:
    """Every link the ledger holds (not removed), with whether its role assignment is still there
    exactly as recorded and whether its child is still a pupil: one statement, streamed in batches
    of about `batch` rows by parent, each parent's rows (and so each role assignment's) in one batch."""
    is_pupil, params = _is_pupil_sql(s, site, "u")
    rows: list[LedgerRow] = []
    for part in sql.streamed(
        conn,
        f"SELECT l.id, l.request_id, l.parent_userid, l.child_userid, l.contextid, l.ra_id, l.origin,"
        f" ra.id IS NOT NULL, l.child_userid IS NULL OR COALESCE({is_pupil}, 0)"
        f" FROM `{s.links_table}` l LEFT JOIN `{s.mdl('role_assignments')}` ra ON ra.id = l.ra_id"
        " AND ra.userid = l.parent_userid AND ra.contextid = l.contextid AND ra.roleid = l.roleid"
        f" LEFT JOIN `{s.mdl('user')}` u ON u.id = l.child_userid WHERE l.removed_at IS NULL"
        " ORDER BY l.parent_userid, l.id",
        params,
    ):
        for i, rid, parent, child, ctx, ra, origin, present, pupil in part:
            if len(rows) >= batch and int(parent) != rows[-1].parent:
                yield rows
                rows = []
            rows.append(
                LedgerRow(
                    int(i), int(rid), int(parent), None if child is None else int(child), int(ctx), int(ra),
                    origin, bool(present), bool(pupil),
                )
            )  # fmt: skip
    if rows:
        yield rows


def remove_links(conn, s: Settings, site: Site, removals, run_id: str) -> int:
    """What Moodle's role_unassign() does to the database, for each removal that deletes: the role
    assignment deleted by id (and only while the ledger holds it as made or adopted by this project,
    for this parent, context and role), the parent's access marked dirty. Each removal's ledger row is
    closed with its reason, in the same transaction: a deleted link is never without its record.
    Returns the role assignments deleted."""
    removals = list(removals)
    if not removals:
        return 0
    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with sql.cursor(conn) as cur:
        try:
            deleted = _delete_assignments(cur, s, sorted({r.ra_id for r in removals if r.delete}))
            mark_access_dirty(conn, s, site, {r.parent for r in removals if r.delete})
            by_reason: dict[str, list[int]] = {}
            for r in removals:
                by_reason.setdefault(r.reason, []).append(r.ledger_id)
            for reason, ids in sorted(by_reason.items()):
                for part in sql.chunks(sorted(ids)):
                    cur.execute(
                        f"UPDATE `{s.links_table}` SET removed_at = %s, removed_by_run = %s, removed_reason = %s"
                        f" WHERE removed_at IS NULL AND id IN ({sql.marks(len(part))})",
                        (now, run_id, reason, *part),
                    )
            conn.commit()
            return deleted
        except Exception:
            conn.rollback()
            raise


def _delete_assignments(cur, s: Settings, ra_ids: Sequence[int]) -> int:
    """Delete these role assignments, each only while an open ledger row holds it as this project's."""
    deleted = 0
    for part in sql.chunks(ra_ids):
        cur.execute(
            f"DELETE ra FROM `{s.mdl('role_assignments')}` ra JOIN `{s.links_table}` l ON l.ra_id = ra.id"
            " AND l.parent_userid = ra.userid AND l.contextid = ra.contextid AND l.roleid = ra.roleid"
            f" AND l.removed_at IS NULL AND l.origin IN ('made', 'adopted') WHERE ra.id IN ({sql.marks(len(part))})",
            part,
        )
        deleted += max(cur.rowcount, 0)
    return deleted


def request_links(conn, s: Settings, request_id: int) -> list[dict]:
    """The ledger's links of one request, for its screen: each child (name and tutor group as
    Moodle has them; none for a static context), who made it and when, and whether and why it ended."""
    if not links_table_exists(conn, s):
        return []
    with sql.cursor(conn) as cur:
        return sql.dict_rows(
            cur,
            "SELECT l.child_userid, u.firstname, u.lastname, u.department, l.contextid, l.origin, l.run_id,"
            " l.created_at, l.removed_at, l.removed_by_run, l.removed_reason, ra.id IS NOT NULL AS present"
            f" FROM `{s.links_table}` l LEFT JOIN `{s.mdl('user')}` u ON u.id = l.child_userid"
            f" LEFT JOIN `{s.mdl('role_assignments')}` ra ON ra.id = l.ra_id AND ra.userid = l.parent_userid"
            " AND ra.contextid = l.contextid AND ra.roleid = l.roleid WHERE l.request_id = %s ORDER BY l.id",
            (request_id,),
        )


def linked_children(conn, s: Settings, parent_ids: Iterable[int]) -> dict[int, list[dict]]:
    """The children each parent holds the Parent role over through the project's open ledger rows
    (name and tutor group as Moodle has them), for the auth rows page."""
    ids = sorted(set(parent_ids))
    out: dict[int, list[dict]] = {}
    if not ids or not links_table_exists(conn, s):
        return out
    with sql.cursor(conn) as cur:
        for part in sql.chunks(ids):
            for row in sql.dict_rows(
                cur,
                "SELECT DISTINCT l.parent_userid, l.child_userid, u.firstname, u.lastname, u.department"
                f" FROM `{s.links_table}` l JOIN `{s.mdl('user')}` u ON u.id = l.child_userid"
                f" WHERE l.removed_at IS NULL AND l.parent_userid IN ({sql.marks(len(part))})"
                " ORDER BY u.lastname, u.firstname",
                part,
            ):
                out.setdefault(int(row["parent_userid"]), []).append(row)
    return out
