"""testbed.demo_data: a deterministic school, loaded into a real MariaDB (databases pmp_gen_*).

Every helper here closes its connection before returning: an open connection holds a
metadata lock, and the next mariadb.create()/drop() would hang on DROP DATABASE.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from testbed import demo_data, mariadb
from testbed.config import PROJECT_ROOT
from testbed.config import TestBedConfig as BedConfig  # not collected as a test class

CFG = BedConfig.from_env("gen", per_checkout=True)
SIZE, SEED = 200, 7
M, REQ, AUTH = CFG.moodle_prefix, CFG.wp_requests_table, CFG.wp_auth_table


def rows(db: str, sql: str, params=()) -> list[tuple]:
    conn = mariadb.admin_connect(db)
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        result = list(cur.fetchall())
        cur.close()
        conn.commit()
        return result
    finally:
        conn.close()


def scalar(db: str, sql: str, params=()):
    return rows(db, sql, params)[0][0]


def moodle(sql: str, params=()) -> list[tuple]:
    return rows(CFG.moodle_db, sql.replace("{", M).replace("}", ""), params)


def wp(sql: str, params=()) -> list[tuple]:
    return rows(CFG.wp_db, sql.replace("{requests}", REQ).replace("{auth}", AUTH), params)


@pytest.fixture(scope="module")
def gen_dbs():
    """The pmp_gen_* databases, dropped when the module is done."""
    yield CFG
    mariadb.drop(CFG)


@pytest.fixture(scope="module")
def school(gen_dbs):
    mariadb.create(CFG)
    school = demo_data.generate(SIZE, SEED)
    demo_data.load(CFG, school)
    return school


# --- plain data ------------------------------------------------------------------------------------
def fingerprint(school: demo_data.School) -> str:
    return hashlib.sha256(repr(school).encode()).hexdigest()


def test_same_seed_gives_the_same_school_in_any_process():
    a, b = demo_data.generate(SIZE, SEED), demo_data.generate(SIZE, SEED)
    assert a == b
    assert demo_data.generate(SIZE, SEED + 1) != a
    code = (
        "import hashlib; from testbed import demo_data as d; "
        f"print(hashlib.sha256(repr(d.generate({SIZE}, {SEED})).encode()).hexdigest())"
    )
    for hashseed in ("0", "4242"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONHASHSEED": hashseed},
        ).stdout.strip()
        assert out == fingerprint(a)


@pytest.mark.parametrize("size", [demo_data.MIN_SIZE, 60, SIZE, 1000])
def test_every_status_type_and_case_at_any_size(size):
    school = demo_data.generate(size, SEED)
    info = demo_data.describe(school)
    assert len(school.requests) == size
    assert all(info["requests_by_status"][s] >= 1 for s in demo_data.DEMO_STATUSES)
    assert all(info["requests_by_type"][t] >= 1 for t in demo_data.DEMO_REQUEST_TYPES)
    cases = info["approved_cases"]
    assert set(demo_data.CASES) - {"bogus", "already_linked", "other_school"} <= set(cases) <= set(demo_data.CASES)
    assert info["approved_incomplete"] >= 1 and info["messy_emails"] >= 2
    assert info["pupils"] >= 60 and info["staff"] >= 10 and info["existing_parents"] >= 5


def test_too_small_a_size_is_refused():
    with pytest.raises(ValueError):
        demo_data.generate(demo_data.MIN_SIZE - 1)


def test_proportions_at_size_200():
    school = demo_data.generate(SIZE, SEED)
    info = demo_data.describe(school)
    by_status = info["requests_by_status"]
    assert by_status["approved"] == pytest.approx(0.45 * SIZE, abs=0.05 * SIZE)
    assert by_status["pending"] == pytest.approx(0.15 * SIZE, abs=0.03 * SIZE)
    assert by_status["provisioned"] == pytest.approx(0.20 * SIZE, abs=0.03 * SIZE)
    assert info["pupils"] == 500 and info["staff"] == 20
    assert 25 <= info["pupils"] / info["tutor_groups"] <= 30
    assert 0.08 <= info["pupils_without_context"] / info["pupils"] <= 0.12
    assert info["approved_incomplete"] >= 2 and info["approved_missing_children"] >= 2
    for case in set(demo_data.CASES) - {"bogus", "already_linked", "ok", "other_school"}:
        assert info["approved_cases"][case] >= 2, case
    for kind, found in info["special_users"].items():
        assert found >= 2, kind
    children = Counter(len(r.children) for r in school.requests if r.status == "approved")
    assert children[1] > children[2] > children[3] > 0


def test_expectations_follow_the_cases():
    school = demo_data.generate(SIZE, SEED)
    for rid, exp in school.expectations.items():
        request = school.request(rid)
        assert request.id == rid and exp["status"] == request.status
        assert len(exp["children"]) == len(exp["cases"]) == len(exp["intended"]) == len(request.children)
        assert exp["username"] == request.parent_email.strip().lower()
        for outcome, case in zip(exp["children"], exp["cases"], strict=True):
            if case in demo_data.CASES_LINKED:
                assert outcome[0] == "linked" and school.user(outcome[1]).kind == "pupil"
            else:
                assert outcome == (("ambiguous",) if case == "ambiguous_pair" else ("unmatched",))
        if exp["request_type"] == demo_data.CHILDREN_NOT_LINKED:
            parent = school.user(exp["existing_parent_id"])
            assert parent.username == exp["username"] and not exp["auth_row"] and not exp["new_account"]
            linked = {c for p, c in school.links if p == parent.id}
            for outcome, case in zip(exp["children"], exp["cases"], strict=True):
                assert (outcome[1] in linked) == (case == "already_linked")
    links = demo_data.expected_links(school)
    assert len(links) > len(school.links)


# --- loaded into MariaDB -----------------------------------------------------------------------------
def test_every_status_and_request_type_is_in_the_database(school):
    by_status = dict(wp("SELECT status, COUNT(*) FROM {requests} GROUP BY status"))
    by_type = dict(wp("SELECT request_type, COUNT(*) FROM {requests} GROUP BY request_type"))
    assert set(by_status) == set(demo_data.DEMO_STATUSES)
    assert set(by_type) == set(demo_data.DEMO_REQUEST_TYPES)
    absent = wp(
        "SELECT COUNT(*) FROM {requests} WHERE (child2_fname = '') <> (child2_sname = '')"
        " OR (child2_fname = '') <> (child2_tg = '') OR (child3_fname = '') <> (child3_tg = '')"
        " OR child2_fname IS NULL OR child3_fname IS NULL OR (child2_fname = '' AND child3_fname <> '')"
    )
    assert absent[0][0] == 0


def test_auth_rows_are_exactly_what_approval_writes(school):
    joined = wp(
        "SELECT a.username, a.parent_title, a.parent_fname, a.parent_sname, a.parent_email, a.description,"
        " r.id, r.parent_title, r.parent_fname, r.parent_sname, r.parent_email, r.status, r.request_type"
        " FROM {auth} a LEFT JOIN {requests} r ON r.id = a.request_id"
    )
    assert len(joined) == len(school.auth_rows)
    for (
        a_user,
        a_title,
        a_fname,
        a_sname,
        a_email,
        a_desc,
        rid,
        title,
        fname,
        sname,
        email,
        status,
        rtype,
    ) in joined:
        assert rid is not None
        assert a_user == a_email == email.strip().lower()
        assert (a_title, a_fname, a_sname) == (title, f"{title} {fname}", sname)
        assert a_desc == "Parent Moodle Account"
        assert status in ("approved", "provisioned") and rtype != demo_data.CHILDREN_NOT_LINKED
    usernames = [r[0] for r in joined]
    assert len(set(usernames)) == len(usernames)
    with_auth = {r[6] for r in joined}
    for rid, status, rtype, email in wp("SELECT id, status, request_type, parent_email FROM {requests}"):
        exp = school.expectations[rid]
        assert exp["auth_row"] == (rid in with_auth)
        if status == "provisioned":
            assert rid in with_auth
        elif status != "approved":
            assert rid not in with_auth, status
        elif rtype == demo_data.CHILDREN_NOT_LINKED:  # the parent's own row serves
            assert rid not in with_auth and email.strip().lower() in usernames
    incomplete = [e for e in school.expectations.values() if e["status"] == "approved" and not e["auth_row"]]
    assert sum(e["request_type"] != demo_data.CHILDREN_NOT_LINKED for e in incomplete) >= 2
    messy = wp(
        "SELECT COUNT(*) FROM {requests} WHERE status = 'approved' AND BINARY parent_email <> LOWER(TRIM(parent_email))"
    )
    assert messy[0][0] >= 2


def test_loaded_counts_equal_describe(school):
    info = demo_data.describe(school)
    pupil = "department NOT IN ('', 'Staff')"
    moodle_counts = {
        "moodle_users": "SELECT COUNT(*) FROM {user} WHERE id > 2",
        "pupils": f"SELECT COUNT(*) FROM {{user}} WHERE {pupil}",
        "pupils_active": f"SELECT COUNT(*) FROM {{user}} WHERE {pupil} AND deleted = 0 AND suspended = 0",
        "pupils_suspended": f"SELECT COUNT(*) FROM {{user}} WHERE {pupil} AND suspended = 1",
        "pupils_deleted": f"SELECT COUNT(*) FROM {{user}} WHERE {pupil} AND deleted = 1",
        "pupils_without_context": f"SELECT COUNT(*) FROM {{user}} u LEFT JOIN {{context}} c"
        f" ON c.contextlevel = 30 AND c.instanceid = u.id WHERE {pupil} AND u.deleted = 0 AND c.id IS NULL",
        "tutor_groups": f"SELECT COUNT(DISTINCT department) FROM {{user}} WHERE {pupil}",
        "cohort_members": "SELECT COUNT(*) FROM {cohort_members} m JOIN {cohort} c ON c.id = m.cohortid"
        " WHERE c.idnumber = 'pupils'",
        "staff": "SELECT COUNT(*) FROM {user} WHERE department = 'Staff' AND auth = 'manual'",
        "existing_parents": "SELECT COUNT(*) FROM {user} WHERE auth = 'db'",
        "parent_links": "SELECT COUNT(*) FROM {role_assignments} ra JOIN {role} r ON r.id = ra.roleid"
        " WHERE r.shortname = 'parent'",
        "user_contexts": "SELECT COUNT(*) FROM {context} WHERE contextlevel = 30",
    }
    for key, sql in moodle_counts.items():
        assert moodle(sql)[0][0] == info[key], key
    assert wp("SELECT COUNT(*) FROM {requests}")[0][0] == info["requests"] == SIZE
    assert wp("SELECT COUNT(*) FROM {auth}")[0][0] == info["auth_rows"]
    assert dict(wp("SELECT status, COUNT(*) FROM {requests} GROUP BY status")) == info["requests_by_status"]
    by_type = dict(wp("SELECT request_type, COUNT(*) FROM {requests} GROUP BY request_type"))
    assert by_type == info["requests_by_type"]
    approved_auth = wp(
        "SELECT COUNT(*) FROM {requests} r JOIN {auth} a ON a.request_id = r.id WHERE r.status = 'approved'"
    )
    assert approved_auth[0][0] == info["approved_with_auth_row"]
    # New accounts a cycle should create: approved, auth row, no Moodle user yet.
    db_users = {u for (u,) in moodle("SELECT username FROM {user} WHERE auth = 'db'")}
    new = wp("SELECT a.username FROM {requests} r JOIN {auth} a ON a.request_id = r.id WHERE r.status = 'approved'")
    assert sum(u not in db_users for (u,) in new) == info["expected_new_accounts"]


def test_moodle_rows_look_like_moodle_wrote_them(school):
    bad_ctx = moodle(
        "SELECT COUNT(*) FROM {context} c LEFT JOIN {user} u ON u.id = c.instanceid"
        " WHERE c.contextlevel = 30 AND (u.id IS NULL OR c.path <> CONCAT('/1/', c.id) OR c.depth <> 2)"
    )
    assert bad_ctx[0][0] == 0
    pupils = moodle(
        "SELECT username, idnumber, email, auth, confirmed, mnethostid FROM {user}"
        " WHERE department NOT IN ('', 'Staff') AND deleted = 0"
    )
    for username, idnumber, email, auth, confirmed, host in pupils:
        assert username == f"p{idnumber}" and email.endswith("@pupils.school.test") and email == email.lower()
        assert (auth, confirmed, host) == ("manual", 1, 1)
    parents = moodle("SELECT username, email, firstname, description, confirmed FROM {user} WHERE auth = 'db'")
    for username, email, firstname, description, confirmed in parents:
        assert username == email == email.lower().strip() and " " in firstname
        assert description == "Parent Moodle Account" and confirmed == 1
    links = moodle(
        "SELECT ra.userid, c.instanceid, ra.component, ra.itemid, ra.modifierid, p.auth, k.deleted"
        " FROM {role_assignments} ra JOIN {role} r ON r.id = ra.roleid AND r.shortname = 'parent'"
        " JOIN {context} c ON c.id = ra.contextid AND c.contextlevel = 30"
        " JOIN {user} p ON p.id = ra.userid JOIN {user} k ON k.id = c.instanceid"
    )
    assert sorted((p, k) for p, k, *_ in links) == sorted(school.links)
    assert all(tuple(rest) == ("", 0, 2, "db", 0) for _, _, *rest in links)
    not_in_cohort = moodle(
        "SELECT COUNT(*) FROM {user} u WHERE department NOT IN ('', 'Staff') AND deleted = 0 AND NOT EXISTS"
        " (SELECT 1 FROM {cohort_members} m JOIN {cohort} c ON c.id = m.cohortid AND c.idnumber = 'pupils'"
        " WHERE m.userid = u.id)"
    )
    assert not_in_cohort[0][0] == 0
    names = {(f, s) for f, s in moodle("SELECT firstname, lastname FROM {user}")}
    assert {("Zoë", "O'Brien"), ("Siân", "Jones"), ("José", "García")} <= names


def test_school_ids_are_the_database_ids(school):
    by_id = dict(moodle("SELECT id, username FROM {user} WHERE id > 2"))
    assert by_id == {u.id: u.username for u in school.users}
    ctx = dict(moodle("SELECT instanceid, id FROM {context} WHERE contextlevel = 30"))
    assert ctx == {u.id: u.contextid for u in school.users if u.contextid is not None}
    assert [r[0] for r in wp("SELECT id FROM {requests} ORDER BY id")] == [r.id for r in school.requests]


def test_special_cases_are_in_the_database(school):
    sp = school.special
    pupils = {
        r[0]: r[1:]
        for r in moodle(
            "SELECT id, firstname, lastname, department, suspended, deleted FROM {user}"
            " WHERE department NOT IN ('', 'Staff')"
        )
    }
    ambiguous = moodle(
        "SELECT firstname, lastname, department, COUNT(*) FROM {user}"
        " WHERE department NOT IN ('', 'Staff') AND deleted = 0 AND suspended = 0"
        " GROUP BY firstname, lastname, department HAVING COUNT(*) > 1"
    )
    assert len(ambiguous) == len(sp["ambiguous_pairs"]) >= 2
    assert {r[:3] for r in ambiguous} == {pupils[a][:3] for a, _ in sp["ambiguous_pairs"]}
    for a, b in sp["twins"]:
        assert pupils[a][1:3] == pupils[b][1:3] and pupils[a][0] != pupils[b][0]
    for a, b in sp["namesakes_other_group"]:
        assert pupils[a][:2] == pupils[b][:2] and pupils[a][2] != pupils[b][2]
    staff = {r[0]: r[1:] for r in moodle("SELECT id, firstname, lastname FROM {user} WHERE department = 'Staff'")}
    for pupil, member in sp["staff_namesakes"]:
        assert pupils[pupil][:2] == staff[member]
    pupil_names = {v[:2] for v in pupils.values()}
    assert all(staff[s] not in pupil_names for s in sp["staff_only"])
    parents = dict(moodle("SELECT id, CONCAT(firstname, '|', lastname) FROM {user} WHERE auth = 'db'"))
    for pupil, parent in sp["parent_namesakes"]:
        first, last = parents[parent].split("|")
        assert first.split(" ", 1)[1] == pupils[pupil][0] and last == pupils[pupil][1]
        assert (parent, pupil) in school.links
    assert all(pupils[p][3] == 1 for p in sp["suspended"]) and all(pupils[p][4] == 1 for p in sp["deleted"])
    # Each request's children, matched by the reference rule in SQL (MariaDB's collation), give
    # exactly the expectations.
    conn = mariadb.admin_connect(CFG.moodle_db)
    try:
        cur = conn.cursor()
        for request in school.requests:
            got = []
            for fname, sname, tg in request.children:
                cur.execute(
                    f"SELECT u.id FROM {M}user u JOIN {M}cohort_members m ON m.userid = u.id"
                    f" JOIN {M}cohort c ON c.id = m.cohortid AND c.idnumber = 'pupils'"
                    " WHERE u.deleted = 0 AND u.suspended = 0 AND u.firstname = %s AND u.lastname = %s"
                    " AND u.department = %s",
                    (fname, sname, tg),
                )
                ids = [r[0] for r in cur.fetchall()]
                got.append(("linked", ids[0]) if len(ids) == 1 else ("ambiguous",) if ids else ("unmatched",))
            assert got == school.expectations[request.id]["children"], request.id
        cur.close()
    finally:
        conn.close()
    # Missing-children requests name a child not yet linked to the parent their email belongs to.
    for rid, exp in school.expectations.items():
        if exp["request_type"] != demo_data.CHILDREN_NOT_LINKED:
            continue
        parent = moodle("SELECT id FROM {user} WHERE username = %s AND auth = 'db'", (exp["username"],))
        assert parent and parent[0][0] == exp["existing_parent_id"]
        linked = {
            r[0]
            for r in moodle(
                "SELECT c.instanceid FROM {role_assignments} ra JOIN {context} c ON c.id = ra.contextid"
                " WHERE ra.userid = %s",
                (parent[0][0],),
            )
        }
        assert any(c[0] == "linked" and c[1] not in linked for c in exp["children"]), rid


def test_load_shifts_ids_past_rows_already_there(gen_dbs):
    mariadb.create(CFG)
    moodle(
        "INSERT INTO {user} (id, auth, confirmed, mnethostid, username, email) VALUES"
        " (40, 'manual', 1, 1, 'someone', 'someone@school.test')"
    )
    moodle("INSERT INTO {context} (id, contextlevel, instanceid, path, depth) VALUES (50, 30, 40, '/1/50', 2)")
    wp(
        "INSERT INTO {requests} (id, parent_title, parent_fname, parent_sname, child_fname, child_sname,"
        " child_tg, parent_email, child2_sname, child2_tg, child3_sname, child3_tg, status, remote_ip_addr)"
        " VALUES (9, 'Mr', 'A', 'B', 'C', 'D', '7AB', 'a@example.org', '', '', '', '', 'pending', '1.2.3.4')"
    )
    school = demo_data.generate(demo_data.MIN_SIZE, SEED)
    demo_data.load(CFG, school)
    assert school.users[0].id == 41 and school.requests[0].id == 10
    assert min(u.contextid for u in school.users if u.contextid) == 51
    assert min(school.expectations) == 10
    by_id = dict(moodle("SELECT id, username FROM {user} WHERE id > 40"))
    assert by_id == {u.id: u.username for u in school.users}
    for rid, exp in school.expectations.items():
        for c in exp["children"]:
            if c[0] == "linked":
                assert school.user(c[1]).kind == "pupil"
        assert wp("SELECT status FROM {requests} WHERE id = %s", (rid,))[0][0] == exp["status"]


def test_size_2000_loads(gen_dbs):
    mariadb.create(CFG)
    started = time.perf_counter()
    school = demo_data.generate(2000, SEED)
    generated = time.perf_counter()
    demo_data.load(CFG, school)
    loaded = time.perf_counter()
    print(f"size 2000: generate {generated - started:.2f}s, load {loaded - generated:.2f}s")
    info = demo_data.describe(school)
    assert moodle("SELECT COUNT(*) FROM {user} WHERE id > 2")[0][0] == info["moodle_users"]
    assert wp("SELECT COUNT(*) FROM {requests}")[0][0] == 2000
    assert wp("SELECT COUNT(*) FROM {auth}")[0][0] == info["auth_rows"]


# --- a multi-academy trust -------------------------------------------------------------------------
TRUST = demo_data.SCHOOL_MAX + 5000  # the smallest trust the tests make: 25 schools


@pytest.fixture(scope="module")
def trust():
    return demo_data.generate(TRUST, SEED, approved=TRUST // 2)


def test_a_size_past_one_school_is_a_trust_of_schools(trust):
    info = demo_data.describe(trust)
    assert len(trust.schools) == info["schools"] == 25 and len(set(trust.schools)) == 25
    assert info["approved"] == TRUST // 2
    by_school = Counter(p.institution for p in trust.pupils)
    assert set(by_school) == set(trust.schools)
    # schools of different sizes, each a realistic one: 25 to 30 pupils a tutor group, seven year groups
    assert max(by_school.values()) > 1.3 * min(by_school.values())
    groups = Counter(p.department for p in trust.pupils if not p.deleted)
    assert len(groups) == len(trust.tutor_groups) == len(set(trust.tutor_groups))
    assert 25 <= len(trust.pupils) / len(groups) <= 30
    for school in trust.schools[:3]:
        codes = {p.department.split("-")[0] for p in trust.pupils if p.institution == school}
        years = {p.department.split("-")[1][:-2] for p in trust.pupils if p.institution == school}
        assert len(codes) == 1 and years == {str(y) for y in range(7, 14)}
    # one Moodle: every username, and every parent's email, once across the trust
    users = trust.users
    assert len({u.username for u in users}) == len(users)
    emails = [u.email for u in users if u.kind != "pupil"]
    assert len(set(emails)) == len(emails)


def test_a_trust_has_namesakes_across_schools_and_families_across_schools(trust):
    info = demo_data.describe(trust)
    # the same first name and surname at several schools is common, and told apart by tutor group
    assert info["pupil_names_in_several_schools"] > 1000
    cases = info["approved_cases"]
    assert cases["other_school"] >= 0.03 * info["approved"] / 1.5
    school_of = {p.id: p.institution for p in trust.pupils}
    across = 0
    for exp in trust.expectations.values():
        if "other_school" in exp["cases"]:
            linked = [c[1] for c in exp["children"] if c[0] == demo_data.LINKED]
            assert len(linked) == len(exp["children"])  # the rule links every one of them
            assert len({school_of[c] for c in linked}) == 2
            across += 1
    assert across == cases["other_school"]
    # every special case a school has, the trust has, and the rule still decides each as intended
    assert set(demo_data.CASES) - {"bogus"} <= set(cases)


def test_a_trust_is_deterministic_and_sizes_have_limits(trust):
    assert demo_data.generate(TRUST, SEED, approved=TRUST // 2) == trust
    with pytest.raises(ValueError):
        demo_data.generate(demo_data.TRUST_MAX + 1)
    assert demo_data.school_names(200)[199] == ("Redhill West College", "REDW")
