"""What Moodle's auth_db user sync will do, predicted from the two databases before the cycle
runs it, and the guard that refuses to run it when it would suspend too many parents.

With `removeuser` set to suspend, the sync suspends every 'db' account whose auth row is
missing: an auth table emptied by a bad restore, a plugin reinstall or a wrong bulk action
would lock every parent out at the next cycle. The cycle must never be what triggers that.

The prediction follows Moodle's sync_users() step by step, comparing usernames the way it
does: exactly (PHP array keys) when it decides whom to remove and whom to add, and as the
database compares them (case, accents and trailing spaces ignored) when it looks for a
suspended account to revive or when a username is already taken.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

from include.parent_provisioning import moodle_db, own_tables, sql, wordpress
from include.parent_provisioning.moodle_db import Account, AuthDbConfig
from include.parent_provisioning.names import ALLOW_MASS_SUSPENSION
from include.parent_provisioning.settings import Settings

log = logging.getLogger(__name__)

REMOVE_MODES = {0: "keep", 1: "suspend", 2: "delete"}
_NOT_USERNAME_CHARS = re.compile(r"[^-.@_a-z0-9]")
PLAN_IDS = 200  # account ids a dry run lists (ids only; the counts are whole)


class CannotPredict(RuntimeError):
    """Moodle's auth_db settings do not say what it reads: the message says what to fix."""


class Refused(RuntimeError):
    """The sync would suspend more parents than the limits allow; the message gives the figures."""


@dataclass(frozen=True)
class Prediction:
    removeuser: str  # keep | suspend | delete
    auth_rows: int
    accounts: int  # the accounts the sync may remove: active ones (suspend), every one (delete)
    created: int
    suspended: int  # deleted, when removeuser is delete
    revived: int
    refused: int  # auth rows Moodle will not make an account of (capitals, '+', taken by another auth)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def has_work(self) -> bool:
        """Whether running the sync would change any account: a night with none opens no SSH session."""
        return bool(self.created or self.suspended or self.revived)

    def refusal(self, s: Settings) -> str | None:
        """Why the sync must not run, or None when it stays within both limits."""
        limit, fraction = s.max_suspensions_per_cycle, s.max_suspension_fraction
        if not self.suspended or (self.suspended <= limit and self.suspended <= fraction * self.accounts):
            return None
        verb, which = ("delete", "") if self.removeuser == "delete" else ("suspend", "active ")
        share = round(100 * self.suspended / self.accounts) if self.accounts else 100
        return (
            f"Moodle's user sync would {verb} {self.suspended} of {self.accounts} {which}parent accounts "
            f"({share} %; limits: {limit} accounts or {fraction * 100:g} %). Is the auth table `{s.auth_table}` "
            f"complete? It has {self.auth_rows} rows. If this is intended, trigger the DAG with "
            f"{ALLOW_MASS_SUSPENSION}=true (or raise max_suspensions_per_cycle / max_suspension_fraction)."
        )


def collation_key(username: str) -> str:
    """A username as MariaDB's utf8mb4_unicode_ci compares it: case, accents and trailing spaces ignored."""
    text = unicodedata.normalize("NFKD", username.rstrip(" "))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


def moodle_would_create(username: str, extended: bool) -> bool:
    """Moodle's user_create_user() accepts only a username that clean_param(PARAM_USERNAME) keeps as it is."""
    clean = username.strip().lower()
    if not extended:
        clean = _NOT_USERNAME_CHARS.sub("", clean.replace(" ", ""))
    return username == clean and 0 < len(username) <= 100


@dataclass(frozen=True)
class Simulation:
    """Moodle's sync_users() run on paper: who it creates, removes and revives (net: an account
    suspended and revived by the same sync, its auth row differing only in case, is in neither)."""

    mode: str
    auth_rows: int
    accounts: int
    created: frozenset[str]  # usernames
    removed: frozenset[int]  # account ids suspended (or deleted)
    revived: frozenset[int]  # account ids
    refused: int

    def prediction(self) -> Prediction:
        return Prediction(
            removeuser=self.mode,
            auth_rows=self.auth_rows,
            accounts=self.accounts,
            created=len(self.created),
            suspended=len(self.removed),
            revived=len(self.revived),
            refused=self.refused,
        )


def simulate(
    usernames: Sequence[str], accounts: Sequence[Account], removeuser: int, extended: bool, taken: Iterable[str] = ()
) -> Simulation:
    """Moodle's sync_users() on these inputs, touching nothing.

    usernames: the auth table's `fielduser` values as stored; accounts: the 'db' accounts (not
    deleted, local host); taken: the usernames of every account on the local host that the
    database finds equal to an auth row's username."""
    mode = REMOVE_MODES.get(removeuser, "keep")
    present = set(usernames)
    removable = [a for a in accounts if mode == "delete" or (mode == "suspend" and not a.suspended)]
    removed = {a.id for a in removable if a.username not in present} if mode != "keep" else set()
    existing = {a.username for a in accounts if a.id not in removed and not (mode == "suspend" and a.suspended)}
    to_revive: dict[str, list[int]] = {}
    if mode == "suspend":
        for a in sorted(accounts, key=lambda a: a.id):
            if a.suspended or a.id in removed:
                to_revive.setdefault(collation_key(a.username), []).append(a.id)
    in_use = {collation_key(a.username) for a in accounts} | {collation_key(u) for u in taken}
    revived: set[int] = set()
    created: set[str] = set()
    refused = 0
    for username in usernames:
        if username in existing:
            continue
        key = collation_key(username)
        if to_revive.get(key):
            revived.add(to_revive[key].pop(0))
        elif key in in_use or not moodle_would_create(username, extended):
            refused += 1
        else:
            in_use.add(key)
            created.add(username)
    return Simulation(
        mode=mode,
        auth_rows=len(usernames),
        accounts=len(removable) if mode == "delete" else sum(1 for a in accounts if not a.suspended),
        created=frozenset(created),
        removed=frozenset(removed - revived),
        revived=frozenset(revived - removed),
        refused=refused,
    )


def predict(
    usernames: Sequence[str], accounts: Sequence[Account], removeuser: int, extended: bool, taken: Iterable[str] = ()
) -> Prediction:
    """The counts of simulate()."""
    return simulate(usernames, accounts, removeuser, extended, taken).prediction()


def what_moodle_did(before: Sequence[Account], after: Sequence[Account]) -> dict[str, int]:
    """Accounts created, suspended (or deleted) and revived between two reads of the 'db' accounts."""
    was = {a.id: a.suspended for a in before}
    now = {a.id: a.suspended for a in after}
    return {
        "created": sum(1 for uid in now if uid not in was),
        "suspended": sum(1 for uid, s in was.items() if uid not in now or (not s and now[uid])),
        "revived": sum(1 for uid, s in was.items() if s and now.get(uid) is False),
    }


def differences(prediction: Prediction, done: dict[str, int]) -> list[str]:
    return [
        f"Moodle's user sync {key} {done[key]} account(s) where {getattr(prediction, key)} were predicted: "
        "the auth table or Moodle's users changed during the sync, or the prediction is wrong"
        for key in ("created", "suspended", "revived")
        if done[key] != getattr(prediction, key)
    ]


class Forecast(NamedTuple):
    simulation: Simulation
    accounts: list[Account]  # the 'db' accounts it started from, to compare with after the sync
    warnings: list[str]  # about the prediction itself


SETTINGS_PAGE = "Site administration > Plugins > Authentication > External database"


def config_warnings(config: AuthDbConfig, auth_table: str) -> list[str]:
    """What in auth_db's settings makes the prediction read the wrong table, or de-provisioning do nothing."""
    warnings = []
    table = config.table.replace("`", "").rsplit(".", 1)[-1]
    if table.lower() != auth_table.lower():
        warnings.append(
            f"Moodle's auth_db reads table {table!r}, not `{auth_table}`: the prediction of its user "
            "sync reads the wrong table; correct 'wp_table_prefix' or auth_db's table"
        )
    if config.removeuser not in (1, 2):
        warnings.append(
            "Moodle's auth_db 'removeuser' is 'keep': a parent whose auth row is removed keeps an active account: "
            f"de-provisioning a parent does not take effect; set it to 'Suspend internal' ({SETTINGS_PAGE})"
        )
    return warnings


def forecast(wp, mdl, s: Settings, site: dict) -> Forecast:
    """The simulation from both databases (a handful of statements)."""
    st = moodle_db.Site.from_dict(site)
    config = moodle_db.auth_db_config(mdl, s)
    usernames = _auth_usernames(wp, s, config)
    accounts = moodle_db.parent_accounts(mdl, s, st)
    known = {a.username for a in accounts}
    taken = moodle_db.usernames_taken(mdl, s, st, {u for u in usernames if u not in known})
    simulation = simulate(usernames, accounts, config.removeuser, st.extended_usernames, taken)
    return Forecast(simulation, accounts, config_warnings(config, s.auth_table))


def _auth_usernames(wp, s: Settings, config: AuthDbConfig) -> list[str]:
    try:
        return wordpress.auth_usernames(wp, s, config.fielduser)
    except ValueError as exc:
        raise CannotPredict(
            f"Moodle's auth_db setting 'fielduser' is {config.fielduser!r}: set it to the auth table's "
            f"username column ({SETTINGS_PAGE})"
        ) from exc
    except Exception as exc:
        if sql.error_code(exc) == sql.ER_BAD_FIELD:
            raise CannotPredict(
                f"Moodle's auth_db reads column {config.fielduser!r}, which the auth table `{s.auth_table}` "
                f"does not have: correct auth_db's 'fielduser' ({SETTINGS_PAGE}) or the 'wp_table_prefix' setting"
            ) from exc
        raise


def guarded_sync(
    wp,
    mdl,
    s: Settings,
    site: dict,
    run_id: str,
    *,
    needed: bool,
    dry_run: bool,
    allowed: bool,
    triggered_by: str,
    run_sync: Callable[[], dict],
) -> dict:
    """Predict; run the sync when it has work (an account to create, suspend or revive) or some
    request of this cycle needs its account; refuse if it would suspend too many parents (unless
    an admin allowed it for this run); compare what Moodle did with the prediction. Revocation
    takes effect here: a parent whose auth row staff removed is suspended by this cycle's sync,
    even on a night when nobody needs a new account. Raises Refused without running anything."""
    simulation, before, warnings = forecast(wp, mdl, s, site)
    prediction = simulation.prediction()
    refusal = prediction.refusal(s)
    will_run = needed or prediction.has_work
    result: dict = {"prediction": prediction.as_dict()}
    log.info("Moodle's user sync predicted: %s", prediction.as_dict())
    if dry_run or not will_run:
        for warning in warnings:
            log.warning(warning)
        if dry_run:
            return _dry_run(result, simulation, will_run, refusal if will_run and not allowed else None, warnings)
        return {**result, "skipped": "nothing to do: no account to create, suspend or revive", "warnings": warnings}
    if refusal:
        _refuse_unless_allowed(wp, s, run_id, result, refusal, allowed, triggered_by)
    own_tables.record_cycle(wp, s, run_id, {"run_id": run_id, "sync": result})  # on record if the sync fails
    result.update(run_sync())
    mdl.rollback()  # end the read snapshot: the next read must see what Moodle did
    done = what_moodle_did(before, moodle_db.parent_accounts(mdl, s, moodle_db.Site.from_dict(site)))
    warnings += differences(prediction, done)
    for warning in warnings:
        log.warning(warning)
    return {**result, "actual": done, "warnings": warnings}


def _dry_run(result: dict, simulation: Simulation, will_run: bool, refusal: str | None, warnings: list[str]) -> dict:
    """What a real run would do: whether the sync would run or be refused, and whom it would suspend and revive."""
    return {
        **result,
        "skipped": "dry run",
        "would_run": will_run,
        "would_refuse": refusal,
        "would_suspend": sorted(simulation.removed)[:PLAN_IDS],
        "would_revive": sorted(simulation.revived)[:PLAN_IDS],
        "warnings": warnings,
    }


def _refuse_unless_allowed(
    wp, s: Settings, run_id: str, result: dict, refusal: str, allowed: bool, triggered_by: str
) -> None:
    """Refuse (on record, nothing run), or note in `result` who allowed the sync past the limits."""
    if not allowed:
        own_tables.record_cycle(wp, s, run_id, {"run_id": run_id, "sync": {**result, "refused": refusal}}, "refused")
        raise Refused(refusal)
    log.warning("%s=true given by %r: the sync runs anyway", ALLOW_MASS_SUSPENSION, triggered_by)
    result.update({ALLOW_MASS_SUSPENSION: True, "triggered_by": triggered_by})
