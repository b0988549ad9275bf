"""`make stack`: the demo test bed (as `make demo` lays it out) served by the native Celery stack
(testbed/airflow_stack.py), with a mail catcher for the cycle's emails, and one cycle triggered
through Airflow's REST API as an admin would from the UI."""

from __future__ import annotations

import json
import sys
import time

from include.parent_provisioning import names
from testbed import demo_data
from testbed.airflow_stack import AirflowStack
from testbed.config import TestBedConfig
from testbed.demo import demo_settings
from testbed.sshd import free_port
from testbed.stack import TestBed

OPS_EMAIL = "it@school.example"


def connections(bed: TestBed, smtp_port: int) -> dict[str, dict]:
    conns = bed.airflow_connections()
    extra = {"from_email": "airflow@school.example", "disable_ssl": True, "disable_tls": True}
    conns[names.SMTP_CONN_ID] = {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "extra": extra}
    return conns


def start_mail_catcher(stack: AirflowStack) -> None:
    """aiosmtpd on loopback, each message a file in the stack's maildir (as the compose demo-mail)."""
    mbox = stack.home / "mail"
    port = stack.state["ports"]["smtp"]
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox"]
    stack.start("mail", [*argv, str(mbox)])


def up(stack: AirflowStack, size: int = 60) -> int:
    bed = TestBed(stack.cfg)
    print(f"== Test bed '{stack.name}': MariaDB databases, sshd on 127.0.0.1:{bed.cfg.ssh_port}, Moodle double")
    bed.up()
    school = demo_data.generate(size=size)
    demo_data.load(bed.cfg, school)
    print(f"   seeded {demo_data.describe(school).get('requests', size)} requests")
    stack.down()  # an earlier `make stack` of this checkout, which may hold port 8080
    api_port = 8080 if _free(8080) else free_port()
    print(
        "== Airflow: PostgreSQL metadata DB, Redis, scheduler, dag-processor, triggerer, api-server, 2 Celery workers"
    )
    started = time.monotonic()
    stack.up(api_port=api_port)
    start_mail_catcher(stack)
    settings = {**demo_settings(bed), "notify_emails": [OPS_EMAIL]}
    stack.register(
        connections(bed, stack.state["ports"]["smtp"]),
        {names.SETTINGS_VARIABLE: json.dumps(settings)},
    )
    print(f"   ready in {time.monotonic() - started:.0f} s; pids in {stack.state_file}")
    run_id = stack.trigger()
    print(f"== One cycle triggered through the REST API: {run_id}")
    run = stack.wait_for_run(run_id)
    tis = stack.task_instances(run_id)
    for task_id, ti in sorted(tis.items(), key=lambda kv: kv[1]["start_date"] or ""):
        print(f"   {task_id:<16} {ti['state']:<8} on {ti['hostname']}")
    print(f"   run {run['state']} in {_seconds(run):.0f} s; the summary email is in {stack.home / 'mail' / 'new'}")
    print()
    print(f"Log in: {stack.base_url}  user admin, password {stack.passwords().get('admin')}")
    print(f"        (every user's password: {stack.home / 'passwords.json'}); logs in {stack.home / 'logs'}")
    print("Stop it: make stack-down")
    return 0 if run["state"] == "success" else 1


def _seconds(run: dict) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(up(AirflowStack(TestBedConfig.from_env("demo"))))
