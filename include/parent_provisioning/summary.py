"""The cycle's summary as ops read it: the lines of `report`'s log and of the summary email. Ids,
counts and reason codes only, never a parent's or a child's name or email."""

from __future__ import annotations

from include.parent_provisioning import names


def moodle_lines(summary: dict) -> list[str]:
    """What Moodle's two tasks were predicted to do and did, the override, each on a line of its own."""
    lines = []
    sync = dict(summary.get("sync") or {})
    predicted, done = sync.pop("prediction", None), sync.pop("actual", None)
    sync.pop("warnings", None)
    if predicted:
        lines.append(
            f"Moodle's user sync, predicted: {predicted['created']} created, {predicted['suspended']} "
            f"{'deleted' if predicted['removeuser'] == 'delete' else 'suspended'}, {predicted['revived']} revived, "
            f"{predicted['refused']} refused (of {predicted['accounts']} parent accounts, "
            f"{predicted['auth_rows']} auth rows; removeuser={predicted['removeuser']})"
        )
    if done:
        lines.append(f"Moodle's user sync, done: {', '.join(f'{v} {k}' for k, v in done.items())}")
    for override in names.OVERRIDES:
        if summary.get(override):
            lines.append(f"{override}=true, triggered by {summary.get('triggered_by') or 'unknown'}")
    for key, value in (("sync", sync), ("passwords", summary.get("passwords"))):
        if value:
            words = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            lines.append(f"Moodle {key}: {words}")
    return lines


def unlink_lines(u: dict) -> list[str]:
    """What unlink_children took away and found: ids and counts only."""
    lines = []
    if u.get("unlinked"):
        why = ", ".join(f"{k} {v}" for k, v in (u.get("unlinked_by_reason") or {}).items())
        lines.append(
            f"Links removed: {u['unlinked']} parent-child link(s) whose requests no longer justify them ({why})"
        )
    if u.get("released_hand_made"):
        lines.append(f"Links kept: {u['released_hand_made']} made by hand in Moodle, released from the ledger")
    if u.get("removed_in_moodle"):
        lines.append(f"Links already removed in Moodle: {u['removed_in_moodle']} (ledger rows closed)")
    if u.get("leaver_links"):
        fate = "removed (unlink_leavers is on)" if u.get("leavers_unlinked") else "kept (unlink_leavers is off)"
        ids = sorted({x["request_id"] for x in u.get("leavers") or ()})
        lines.append(
            f"Leavers: {u['leaver_links']} link(s) to a child no longer a pupil, {fate}; requests "
            + ", ".join(str(i) for i in ids)
        )
    if u.get("parents_without_child"):
        ids = sorted({i for v in u["parents_without_child"].values() for i in v})
        lines.append(
            f"Parents with no current child: {len(u['parents_without_child'])}; their requests "
            + ", ".join(str(i) for i in ids)
            + " (de-provision them in bulk on the Overview page)"
        )
    return lines


def format_summary(summary: dict) -> str:
    """`report`'s log: one line of counts, then what needs a look, each on its own line."""
    lines = [
        f"Cycle {summary['run_id']}: {summary['requests_taken']} request(s) taken, "
        f"{summary['provisioned']} provisioned, {summary['not_provisioned']} not provisioned, "
        f"{summary['deferred']} deferred to the next cycle.",
    ]
    if summary.get("accounts_suspended"):
        lines.append(
            f"  Access ended: {summary['accounts_suspended']} parent account(s) suspended by Moodle's user sync "
            "because staff removed their auth rows."
        )
    lines += [f"  {line}" for line in moodle_lines(summary) + unlink_lines(summary.get("unlinks") or {})]
    for warning in summary.get("warnings") or ():
        lines.append(f"  WARNING: {warning}")
    if summary["needs_attention"]:
        lines.append(f"  Needs attention (same failure 3+ cycles): {summary['needs_attention']}")
    for reasons, ids in summary["failed"].items():
        lines.append(f"  {reasons} ({len(ids)}): requests {', '.join(str(i) for i in ids)}")
    return "\n".join(lines)


def _without_replans(linked: dict) -> dict:
    return {k: v for k, v in linked.items() if k != "replans"}  # link_children's hand-over to unlink_children


def dry_run_plan(run_id: str, collected: dict, synced: dict, linked: dict, unlinked: dict) -> dict:
    """A dry run's result: what the cycle would have done, written nowhere."""
    return {
        "run_id": run_id,
        "dry_run": True,
        **collected,
        **_without_replans(linked),
        "sync": synced,
        "unlinks": unlinked,
    }


def task_results(
    synced: dict, passwords: dict, linked: dict, unlinked: dict, overrides: dict[str, bool], triggered_by: str
) -> dict:
    """What the cycle's tasks returned, as the cycle's record keeps it beside the counts."""
    return {
        "sync": synced,
        "passwords": passwords,
        "links": _without_replans(linked),
        "warnings": synced.get("warnings", []),
        "unlinks": unlinked,
        **overrides,
        "triggered_by": triggered_by,
    }


def adoption_line(result: dict, dry_run: bool) -> str:
    """The adoption DAG's log: what it adopted (or would), and the role assignments left for staff."""
    verb = "would adopt" if dry_run else "adopted"
    return (
        f"{verb} {result['adopted']} link(s) of the {result['assignments_not_in_ledger']} Parent-role assignments "
        f"the ledger did not hold; {result['unjustified']} no provisioned request justifies (role assignment ids: "
        + ", ".join(str(a["ra_id"]) for a in result["unjustified_assignments"])
        + ")"
    )
