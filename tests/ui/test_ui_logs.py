"""Staff's every action on the request screens, with the bad-input corpus's names, leaves no
parent's or child's name or email in any log: not the app's, not Airflow's, not a library's,
at any level."""

from __future__ import annotations

import csv
import io
import logging
import re
from urllib.parse import unquote_plus

import pytest

from include.parent_provisioning.management import CSV_COLUMNS
from tests.cycle.bad_input import CASES
from tests.cycle.school import School, use_settings
from tests.ui.conftest import login

BASE = "/parent-provisioning"
CORPUS = {c.name: c for c in CASES}
PENDING = [
    CORPUS[name]
    for name in (
        "apostrophes in both of the parent's names",
        "Cyrillic names",
        "SQL in a child's first name, a pupil's real name",
        "HTML in the parent's and a child's names",
        "emoji in the parent's name and comment",
        "Devanagari names",
        "an email in mixed case",
    )
]
# Provisioned parents: one whose access staff take away (asked, then confirmed), one whose child they correct.
PROVISIONED = [
    CORPUS[name] for name in ("Greek names in capitals, with a final sigma", "Arabic names with vowel marks")
]
CORRECTED = ("Mary  Ann", "Van  Dyke", "8CD")
COMMENT = "Phoned Siobhán O'Brien's mother, Светлана Иванова; '); DROP TABLE x; --"
UPLOADED = [
    ("Dr", "Ngozi", "Okonkwo-Achebe", "Ngozi.Okonkwo@Example.org", "Chiamaka", "Okonkwo-Achebe", "7RB"),
    ("Mx", "Þórunn", "Guðmundsdóttir", "thorunn.gudmundsdottir@example.org", "Sæunn", "Guðmundsdóttir", "8CD"),
    ("Mr", "Ignatius", "Back\\slash", "not an email", "Kasimir %s", "Lindqvist %(x)s", "9KM"),
]


@pytest.fixture
def all_logs(caplog):
    """Every record of every logger at DEBUG, including loggers that do not propagate."""
    caplog.set_level(logging.DEBUG)
    quiet = [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in quiet:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in quiet:
        logger.removeHandler(caplog.handler)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def upload_csv(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([*row, "", "", "", "", "", ""])
    return out.getvalue()


def test_staffs_actions_log_no_parent_or_child_name_or_email(client, fresh, all_logs, capfd):
    use_settings(fresh)
    school = School(fresh)
    ids = []
    for n, case in enumerate(PENDING):
        email = case.email or f"ui{n}.parent@example.org"
        ids.append(school.request(email, case.children, status="pending", auth=False, **case.request))
    # Names of two letters too: a short name must not reach a log any more than a long one.
    short = school.request(
        "al.li@example.org", [("Bo", "Wu", "7RB")], status="pending", auth=False, fname="Al", sname="Li"
    )
    losing, corrected = (
        school.request(f"ui.provisioned{n}@example.org", case.children, status="provisioned", **case.request)
        for n, case in enumerate(PROVISIONED)
    )
    capfd.readouterr()

    login(client, "ops")
    for path in ("/", "/requests", "/auth-users", "/upload", *(f"/requests/{rid}" for rid in [*ids, losing])):
        assert client.get(BASE + path).status_code == 200, path
    token = csrf_of(client.get(f"{BASE}/requests/{ids[0]}").text)
    for rid in ids:
        done = client.post(f"{BASE}/requests/{rid}/approve", data={"csrf": token}, follow_redirects=True)
        assert done.status_code == 200
    again = client.post(f"{BASE}/requests/{ids[0]}/approve", data={"csrf": token}, follow_redirects=True)
    assert "only pending requests can be approved" in again.text
    first, surname, group = CORRECTED
    fixed = {"csrf": token, "position": 2, "first": first, "surname": surname, "group": group}
    client.post(f"{BASE}/requests/{ids[1]}/child", data=fixed, follow_redirects=True)
    too_long = {**fixed, "first": "Bartholomew" * 24}
    assert (
        "longer than 255" in client.post(f"{BASE}/requests/{ids[1]}/child", data=too_long, follow_redirects=True).text
    )
    client.post(f"{BASE}/requests/{ids[2]}/staff-comment", data={"csrf": token, "comment": COMMENT})
    client.post(f"{BASE}/requests/{ids[3]}/status", data={"csrf": token, "status": "rejected"})
    reject = {"csrf": token, "status": "rejected"}
    asked = client.post(f"{BASE}/requests/{losing}/status", data=reject, follow_redirects=True)
    assert "Confirm: Reject" in asked.text
    client.post(f"{BASE}/requests/{losing}/status", data={**reject, "confirm": "yes"}, follow_redirects=True)
    assert client.post(f"{BASE}/api/requests/{corrected}/status", json={"status": "pending"}).status_code == 409
    kid = dict(zip(("first", "surname", "group"), PROVISIONED[1].children[0], strict=True)) | {"group": "8CD"}
    client.post(f"{BASE}/requests/{corrected}/child", data={"csrf": token, "position": 1, **kid}, follow_redirects=True)
    text = upload_csv(UPLOADED)
    preview = client.post(f"{BASE}/upload/preview", data={"csrf": token}, files={"file": ("u.csv", text, "text/csv")})
    assert "Guðmundsdóttir" in preview.text  # the screen shows the names; the logs must not
    client.post(f"{BASE}/upload/commit", data={"csrf": token, "csv_text": text}, follow_redirects=True)
    assert client.get(f"{BASE}/api/requests/{ids[4]}").status_code == 200
    assert client.post(f"{BASE}/api/requests/{ids[5]}/status", json={"status": "bogus"}).status_code == 200
    assert client.post(f"{BASE}/api/upload", json={"csv": text}).status_code == 200
    for term in ("Wu", "al.li@example.org", "Светлана", "Li"):  # searches: the page's form and the API
        assert client.post(f"{BASE}/requests/search", data={"csrf": token, "q": term}).status_code == 200
        assert client.post(f"{BASE}/api/requests/search", json={"q": term}).status_code == 200
    assert "al.li@example.org" in client.post(f"{BASE}/requests/search", data={"csrf": token, "q": "Wu"}).text
    assert client.get(f"{BASE}/requests/{short}").status_code == 200
    assert client.get(f"{BASE}/requests/999999999").status_code == 404  # errors, too
    assert client.post(f"{BASE}/requests/search", data={"csrf": token, "q": "Wu", "sort": "Li"}).status_code == 400
    login(client, "viewer")  # refused: the refusal is logged too, and must name no one
    assert client.get(f"{BASE}/requests/{ids[1]}").status_code == 403

    req = school.req(ids[1])
    assert (req["child2_fname"], req["child2_sname"], req["status"]) == ("Mary Ann", "Van Dyke", "approved")
    assert school.req(ids[2])["staff_comment"] == COMMENT
    assert (school.req(losing)["status"], school.req(corrected)["status"]) == ("rejected", "approved")
    assert len(school.wp_rows("SELECT id FROM {req} WHERE request_type LIKE 'Uploaded%%'")) == 2

    out = capfd.readouterr()
    captured = "\n".join([out.out, out.err, all_logs.text, *(r.getMessage() for r in all_logs.records)])
    logs = captured + "\n" + unquote_plus(captured)  # Airflow's access log holds each URL's query string
    assert "path=/parent-provisioning/upload/commit" in logs  # the logs were captured
    names = {
        v.strip()
        for case in PENDING + PROVISIONED
        for v in (case.email or "", case.request.get("fname", ""), case.request.get("sname", ""))
        + tuple(x for child in case.children for x in child[:2])
    }
    names |= {v for row in UPLOADED for v in (row[1], row[2], row[3], row[4], row[5])}
    names |= {"Mary Ann", "Van Dyke", "Siobhán", "Светлана"}
    names |= {"Al", "Li", "Bo", "Wu", "al.li@example.org"}
    # A long name anywhere; a short one as a word of its own (two letters occur inside ordinary words).
    leaked = sorted(
        n
        for n in names
        if n
        and (
            n.lower() in logs.lower()
            if len(n) >= 5
            else re.search(rf"(?<![\w.@-]){re.escape(n)}(?![\w.@-])", logs, re.IGNORECASE)
        )
    )
    assert leaked == []
    assert not re.search(r"[\w.+-]+@example\.org", logs, re.IGNORECASE)
