"""A real browser (Debian's chromium, headless, driven by Playwright) against a real
Airflow api-server on loopback: log in, open "Parent provisioning" from Airflow's
navigation, approve a request, see its auth row, force a cycle and follow the link to
the run. Screenshots of each page go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from include.parent_provisioning import names
from testbed.sshd import free_port
from tests.cycle.school import School, use_settings
from tests.ui.browser import CHROMIUM, chromium, log_in
from tests.ui.conftest import PASSWORDS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def mailbox():
    """A loopback SMTP server for the api-server's smtp_default connection: parents' emails land here."""
    from tests.cycle.test_notifications import loopback_smtp

    with loopback_smtp() as box:
        yield box


@pytest.fixture(scope="module")
def api_server(bed, passwords_file, mailbox):
    from tests.cycle.test_notifications import smtp_connection

    use_settings(bed)
    env = dict(os.environ)
    env["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection(mailbox.port)
    subprocess.run([AIRFLOW, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=180)
    port = free_port()
    log = open(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "api-server.log", "w")  # noqa: SIM115
    env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=2)  # noqa: S310 - loopback
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"api-server exited: see {log.name}") from None
            time.sleep(0.5)
    else:
        raise RuntimeError(f"api-server did not answer within 120 s: see {log.name}")
    yield base
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    log.close()


def test_staff_approve_and_force_a_cycle_in_a_real_browser(api_server, fresh):
    from playwright.sync_api import expect, sync_playwright

    use_settings(fresh)
    school = School(fresh)
    for n, (status, kids) in enumerate(
        [
            ("approved", [("Ben", "Okafor", "8CD")]),
            ("provisioned", [("Cal", "Moss", "9KM")]),
            ("rejected", [("Dee", "Hart", "7RB")]),
            ("pending", [("Eve", "Nash", "10EF")]),
        ]
    ):
        school.request(
            f"parent{n}@example.org",
            kids,
            status=status,
            auth=status in ("approved", "provisioned"),
            fname=["Grace", "Hugh", "Iris", "Jon"][n],
            sname=kids[0][1],
        )
    rid = school.request("Browser.Parent@Example.org", [("Amy", "Lee", "7RB")], status="pending", auth=False)
    shutil.rmtree(ARTIFACTS / "screens", ignore_errors=True)
    shots = ARTIFACTS / "screens"
    shots.mkdir(parents=True)
    with sync_playwright() as p, chromium(p) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        log_in(page, api_server, "ops", PASSWORDS["ops"])
        page.get_by_role("link", name="Parent provisioning").first.click(timeout=30000)
        page.wait_for_url("**/plugin/parent-provisioning**")
        frame = page.frame_locator("iframe")
        expect(frame.locator("h1")).to_contain_text("Parent provisioning", timeout=30000)
        expect(frame.locator("h1")).to_contain_text("2 pending")  # the badge: the pending count
        page.screenshot(path=str(shots / "1-overview.png"))

        frame.get_by_role("link", name="Requests").click()
        expect(frame.locator("h1")).to_have_text("Requests")
        page.screenshot(path=str(shots / "2-queue.png"))
        frame.get_by_role("link", name=str(rid), exact=True).click()
        frame.get_by_role("button", name="Approve").click()
        expect(frame.get_by_role("status")).to_contain_text("approved; the next cycle creates the account")
        page.screenshot(path=str(shots / "3-approved.png"))
        assert school.req(rid)["status"] == "approved"

        frame.get_by_role("link", name="Auth rows").click()
        expect(frame.locator("body")).to_contain_text("browser.parent@example.org")
        page.screenshot(path=str(shots / "4-authorised-users.png"))

        frame.get_by_role("link", name="Overview").click()
        frame.get_by_label("Only these request ids").fill(str(rid))
        frame.get_by_role("button", name="Run a provisioning cycle").click()
        expect(frame.get_by_role("status")).to_contain_text("Provisioning cycle manual__")
        page.screenshot(path=str(shots / "5-cycle-started.png"))
        frame.get_by_role("link", name="Open the run in Airflow").click()
        page.wait_for_url("**/dags/moodle_parent_provisioning/runs/**", timeout=30000, wait_until="commit")
        expect(page.get_by_text(names.DAG_ID).first).to_be_visible(timeout=30000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "6-airflow-run.png"))


def test_the_match_preview_and_an_email_to_the_parent_in_a_real_browser(api_server, mailbox, fresh):
    from playwright.sync_api import expect, sync_playwright

    use_settings(fresh)
    school = School(fresh)
    school.pupil("Amy", "Lee", "7RB")
    school.pupil("Bo", "Lee", "9KM")
    rid = school.request(
        "grace.lee@example.org", [("Amy", "Lee", "7RB"), ("Bo", "Lee", "9MK")], status="pending", auth=False,
        fname="Grace", sname="Lee",
    )  # fmt: skip
    shots = ARTIFACTS / "screens"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p, chromium(p) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        log_in(page, api_server, "ops", PASSWORDS["ops"])
        page.goto(f"{api_server}/parent-provisioning/requests/{rid}")
        preview = page.locator("#match-preview")
        expect(preview).to_be_visible(timeout=30000)
        expect(page.get_by_text("Would not be provisioned")).to_be_visible()
        expect(page.get_by_role("cell", name="Amy Lee (7RB), Moodle user", exact=False)).to_be_visible()
        expect(page.get_by_text("child 2 (9MK) matches no pupil", exact=False)).to_be_visible()
        page.screenshot(path=str(shots / "7-match-preview.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 880})

        page.get_by_label("Template").select_option(label="Details not on file")
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_label("Email preview")).to_contain_text("Dear Mrs Lee")
        page.screenshot(path=str(shots / "8-email-preview.png"), full_page=True)
        page.get_by_role("button", name="Send this email").click()
        expect(page.get_by_role("status")).to_contain_text("email 'Details not on file' sent to the parent")
    [(to, message)] = mailbox.received[-1:]
    assert to == ["grace.lee@example.org"] and message["Subject"] == "Your Moodle account request"
    assert "Email 'Details not on file' sent to the parent (by ops" in school.req(rid)["system_comment"]
