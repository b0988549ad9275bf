"""`make demo`: the demo test bed on demo data, one real provisioning cycle run by
`airflow dags test`, and a table of what happened to each request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from include.parent_provisioning import names
from testbed import demo_data, mariadb
from testbed.config import PROJECT_ROOT, TestBedConfig
from testbed.sshd import free_port
from testbed.stack import TestBed

DAG_ID = names.DAG_ID
SHORT_TYPE = {
    demo_data.NEW_ACCOUNT: "new account",
    demo_data.CANNOT_LOG_IN: "cannot log in",
    demo_data.CHILDREN_NOT_LINKED: "child not linked",
    demo_data.UPLOADED: "bulk upload",
}


def demo_settings(bed: TestBed) -> dict:
    return {
        "moodle_dir": str(bed.cfg.moodle_dir),
        "php_path": str(bed.cfg.php_path),
        "pupil_filter": {"by": "cohort", "value": "pupils"},
        "moodle_task_timeout_s": 300,
    }


def airflow_env(bed: TestBed) -> dict[str, str]:
    env = dict(os.environ)
    env.update(bed.airflow_env())
    env["AIRFLOW_VAR_MOODLE_PARENT_PROVISIONING"] = json.dumps(demo_settings(bed))
    return env


def _wp_rows(cfg: TestBedConfig, sql: str) -> dict[int, dict]:
    conn = mariadb.admin_connect(cfg.wp_db)
    try:
        cur = conn.cursor(mariadb.MySQLdb.cursors.DictCursor)
        cur.execute(sql)
        return {r["id"]: r for r in cur.fetchall()}
    finally:
        conn.close()


def requests_table(cfg: TestBedConfig) -> dict[int, dict]:
    return _wp_rows(cfg, f"SELECT id, status, request_type FROM `{cfg.wp_requests_table}` ORDER BY id")


def outcomes(cfg: TestBedConfig) -> dict[int, dict]:
    sql = (
        "SELECT request_id AS id, outcome, reason_key, linked_children"
        f" FROM `{cfg.wp_prefix}parent_provisioning_outcomes` ORDER BY request_id"
    )
    return _wp_rows(cfg, sql)


def main(size: int = 60) -> int:
    bed = TestBed(TestBedConfig.from_env("demo"))
    if not bed.ssh.running() and bed.ssh.port_taken():
        port = free_port()
        print(f"   port {bed.cfg.ssh_port} is taken by another program: the demo's sshd uses {port}")
        bed.cfg.root.mkdir(parents=True, exist_ok=True)
        (bed.cfg.root / "ssh_port").write_text(str(port))
        bed = TestBed(TestBedConfig.from_env("demo"))
    print(f"== Test bed 'demo': MariaDB databases, sshd on 127.0.0.1:{bed.cfg.ssh_port}, Moodle double")
    bed.up()
    school = demo_data.generate(size=size)
    demo_data.load(bed.cfg, school)
    counts = demo_data.describe(school)
    print(
        f"   seeded {counts.get('requests', size)} requests, {counts.get('pupils', '?')} pupils, "
        f"{counts.get('staff', '?')} staff, {counts.get('existing_parents', counts.get('parents', '?'))} parents"
    )
    before = requests_table(bed.cfg)
    log = bed.cfg.root / "cycle.log"
    print(f"== Running one provisioning cycle: airflow dags test {DAG_ID}  (log: {log})")
    started = time.monotonic()
    logical_date = datetime.now(UTC).isoformat(timespec="seconds")  # a new run each time, not a re-run
    with log.open("w") as fh:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "dags", "test", DAG_ID, logical_date],
            env=airflow_env(bed),
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            check=False,
        )
    print(f"   finished in {time.monotonic() - started:.1f} s, exit status {proc.returncode}")
    after = requests_table(bed.cfg)
    done = outcomes(bed.cfg)
    print()
    print(f"{'request':>7}  {'type':<16} {'before':<9} {'after':<12} {'children linked':<16} reasons")
    for rid, row in after.items():
        if before[rid]["status"] != "approved":
            continue
        o = done.get(rid, {})
        linked = json.loads(o.get("linked_children") or "[]")
        print(
            f"{rid:>7}  {SHORT_TYPE.get(row['request_type'], row['request_type'] or ''):<16} "
            f"{before[rid]['status']:<9} {row['status']:<12} "
            f"{', '.join(str(p) for p, _ in linked) or '-':<16} {o.get('reason_key') or ''}"
        )
    taken = list(done.values())
    print()
    print(
        f"{sum(o['outcome'] == 'provisioned' for o in taken)} provisioned, "
        f"{sum(o['outcome'] == 'not_provisioned' for o in taken)} kept approved with reasons "
        f"(each reason is also on the request's system comment)."
    )
    outbox = bed.cfg.moodledata / "emails.jsonl"
    sent = len(outbox.read_text().splitlines()) if outbox.exists() else 0
    print(f"Password emails the Moodle double 'sent': {sent}")
    print()
    print("See the run in the Airflow UI:  make ui   (then open http://localhost:8080, user 'admin',")
    print("  password in .airflow/simple_auth_manager_passwords.json.generated)")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60))
