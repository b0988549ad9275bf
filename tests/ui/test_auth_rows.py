"""The auth rows page: each auth row with its Moodle account (exists, suspended, a link to its
profile) and the children the project linked to it; orphaned rows (no live request) listed and removed
one at a time or in bulk, behind the same guard as bulk de-provisioning. The removal's effect in Moodle
is the user sync's suspension, which tests/cycle/test_revocation.py shows for every lost auth row."""

from __future__ import annotations

import html
import re

import pytest

from testbed import mariadb
from tests.cycle.school import School, use_settings
from tests.testbed.helpers import add_auth_row
from tests.ui.conftest import login

BASE = "/parent-provisioning"


@pytest.fixture
def school(fresh):
    use_settings(fresh, moodle_url="https://moodle.school.test")
    return School(fresh)


def _auth_ids(school) -> dict[str, int]:
    conn = mariadb.admin_connect(school.cfg.wp_db)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT username, id FROM `{school.cfg.wp_auth_table}`")
        return dict(cur.fetchall())
    finally:
        conn.close()


def test_each_auth_row_shows_its_account_and_children_and_orphans_can_be_removed(client, school, run_cycle):
    amy = school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    dr, states = run_cycle()
    assert dr.state == "success", states
    gone = school.request("old.parent@example.org", [("Amy", "Lee", "7RB")], status="rejected", auth=False)
    add_auth_row(school.cfg, "old.parent@example.org", fname="Olga", sname="Old", request_id=gone)  # left behind
    add_auth_row(school.cfg, "nobody@example.org", fname="No", sname="Body", request_id=0)
    ids = _auth_ids(school)
    parent = school.account("ann.lee@example.org")["id"]

    login(client, "ops")
    page = html.unescape(client.get(f"{BASE}/auth-users").text)
    assert f'href="https://moodle.school.test/user/profile.php?id={parent}"' in page
    assert "Amy Lee (7RB)" in page and "active" in page and "none yet" in page
    assert page.count(">orphaned<") == 2
    orphans = html.unescape(client.get(f"{BASE}/auth-users", params={"orphaned": 1}).text)
    assert "ann.lee@example.org" not in orphans and "old.parent@example.org" in orphans

    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    done = client.post(f"{BASE}/auth-users/remove", data={"csrf": token, "ids": str(ids["old.parent@example.org"])},
                       follow_redirects=True)  # fmt: skip
    assert "1 orphaned auth row(s) removed" in html.unescape(done.text), re.findall(
        r"role=\"status\">([^<]*)", done.text
    )
    assert "old.parent@example.org" not in _auth_ids(school)
    assert "removed its orphaned auth row" in school.req(gone)["system_comment"].splitlines()[-1]
    # A live request's row is never removed this way, even when asked for by id.
    kept = client.post(f"{BASE}/auth-users/remove", data={"csrf": token, "ids": str(ids["ann.lee@example.org"])},
                       follow_redirects=True)  # fmt: skip
    assert "0 orphaned auth row(s) removed; 1 kept" in html.unescape(kept.text)
    assert "ann.lee@example.org" in _auth_ids(school) and school.req(rid)["status"] == "provisioned"
    assert amy in school.links(parent)


def test_removing_many_orphaned_rows_at_once_asks_to_confirm(client, school):
    use_settings(school, max_suspensions_per_cycle=2)
    for n in range(4):
        add_auth_row(school.cfg, f"orphan{n}@example.org", request_id=0)
    ids = ",".join(str(i) for i in _auth_ids(school).values())
    login(client, "ops")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(f"{BASE}/auth-users").text).group(1)
    asked = html.unescape(client.post(f"{BASE}/auth-users/remove", data={"csrf": token, "ids": ids},
                                      follow_redirects=True).text)  # fmt: skip
    assert "4 auth rows would be removed" in asked and "Yes, remove them all" in asked
    assert len(_auth_ids(school)) == 4
    done = client.post(f"{BASE}/auth-users/remove", data={"csrf": token, "ids": ids, "confirm": "yes"},
                       follow_redirects=True)  # fmt: skip
    assert "4 orphaned auth row(s) removed" in html.unescape(done.text) and _auth_ids(school) == {}
    login(client, "viewer")
    assert client.post(f"{BASE}/auth-users/remove", data={"csrf": token, "ids": ids}).status_code == 403


def test_removing_an_orphaned_row_ends_that_parents_access_in_moodle_at_the_next_cycle(client, school, run_cycle):
    """A provisioned parent whose request was deleted in WordPress keeps an orphaned auth row; removing it
    here suspends the account at the next cycle (Moodle's user sync), in Moodle's own user table."""
    use_settings(school, max_suspension_fraction=1)  # one parent of one: over the 5 % guard in a school this small
    school.pupil("Amy", "Lee", "7RB")
    rid = school.request("ann.lee@example.org", [("Amy", "Lee", "7RB")])
    assert run_cycle()[0].state == "success"
    account = school.account("ann.lee@example.org")
    assert account["suspended"] == 0
    school.wp_exec("DELETE FROM {req} WHERE id=%s", (rid,))  # deleted in WordPress's admin
    login(client, "ops")
    page = html.unescape(client.get(f"{BASE}/auth-users", params={"orphaned": 1}).text)
    assert "ann.lee@example.org" in page
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    ann_row = str(_auth_ids(school)["ann.lee@example.org"])
    done = client.post(f"{BASE}/auth-users/remove", data={"csrf": token, "ids": ann_row}, follow_redirects=True)
    assert "1 orphaned auth row(s) removed" in html.unescape(done.text)
    dr, states = run_cycle()
    assert dr.state == "success", states
    assert school.account("ann.lee@example.org")["suspended"] == 1  # Moodle's table: access ended
