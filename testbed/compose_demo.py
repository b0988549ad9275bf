"""`python -m testbed.compose_demo moodle|init`: the docker-compose `demo` profile's two jobs, run in
containers of the project's image (Dockerfile target `demo`) with the test bed's settings from
deploy/demo/airflow.env. The same test bed code as `make demo`, pointed at containers.

moodle  (service demo-moodle): the Moodle server. Lays out the code root with the Moodle double as
        `php`, makes the host and client keys in the shared volume, and runs sshd in the foreground.
init    (service demo-init, once): builds both demo databases and seeds a school, writes the three
        connections and the settings Variable into Airflow's metadata database (as an admin would in
        Admin > Connections: the SSH host key is only known now), waits for the DAG to be parsed, and
        triggers one cycle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from include.parent_provisioning import names
from testbed import demo_data, mariadb, moodle_site
from testbed.config import TestBedConfig
from testbed.stack import TestBed

DAG_ID = names.DAG_ID
MOODLE_HOST = os.environ.get("DEMO_MOODLE_HOST", "demo-moodle")
MAIL = {"host": os.environ.get("DEMO_MAIL_HOST", "demo-mail"), "port": 1025}
OPS_EMAIL = "it@school.example"


def bed() -> TestBed:
    return TestBed(TestBedConfig.from_env("demo"))


def moodle_command(stack: TestBed) -> list[str]:
    """sshd for the Moodle double, reachable from the other containers."""
    return stack.ssh.command(listen="0.0.0.0", foreground=True)  # noqa: S104 - the compose network only


def serve_moodle() -> None:
    stack = bed()
    moodle_site.lay_out(stack.cfg)
    moodle_site.reset_dataroot(stack.cfg)
    stack.ssh.prepare()
    command = moodle_command(stack)
    os.execv(command[0], command)  # noqa: S606 - sshd replaces this process, as a container's main process


def airflow_objects(stack: TestBed) -> tuple[dict, dict]:
    """(connections, variables) for the demo: the test bed's connections with the Moodle container as the
    SSH host (its generated host key, the client key inline), an SMTP server to read the mail in, settings."""
    connections = stack.airflow_connections()
    ssh = connections[names.MOODLE_SSH_CONN_ID]
    ssh.update(host=MOODLE_HOST, port=stack.cfg.ssh_port)
    ssh["extra"] = {"private_key": stack.ssh.client_key.read_text(), "host_key": stack.ssh.host_key_line}
    extra = {"from_email": "airflow@school.example", "disable_ssl": True, "disable_tls": True}
    connections[names.SMTP_CONN_ID] = {"conn_type": "smtp", **MAIL, "extra": extra}
    settings = {
        "moodle_dir": str(stack.cfg.moodle_dir),
        "php_path": str(stack.cfg.php_path),
        "pupil_filter": {"by": "cohort", "value": "pupils"},
        "moodle_task_timeout_s": 300,
        "notify_emails": [OPS_EMAIL],
    }
    return connections, {names.SETTINGS_VARIABLE: json.dumps(settings)}


def register(stack: TestBed, airflow: str = "airflow") -> None:
    """Write the connections and the Variable with Airflow's own CLI."""
    connections, variables = airflow_objects(stack)
    for conn in connections.values():
        conn["extra"] = json.dumps(conn["extra"])
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump(connections, fh)
        fh.flush()
        subprocess.run([airflow, "connections", "import", "--overwrite", fh.name], check=True)
    for key, value in variables.items():
        subprocess.run([airflow, "variables", "set", key, value], check=True)


def trigger_when_parsed(timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while subprocess.run(["airflow", "dags", "details", DAG_ID], capture_output=True, check=False).returncode:
        if time.monotonic() > deadline:
            raise SystemExit(f"{DAG_ID} was not parsed within {timeout_s:.0f} s: see the dag-processor's log")
        time.sleep(10)
    subprocess.run(["airflow", "dags", "trigger", DAG_ID], check=True)


def init(size: int) -> None:
    stack = bed()
    mariadb.create(stack.cfg)
    school = demo_data.generate(size=size)
    demo_data.load(stack.cfg, school)
    print(f"demo: seeded {demo_data.describe(school).get('requests', size)} requests")
    register(stack)
    trigger_when_parsed()
    print(f"demo: one cycle triggered; mail to {OPS_EMAIL} is shown by the demo-mail service")


def main(argv: list[str]) -> int:
    if argv[:1] == ["moodle"]:
        serve_moodle()
    elif argv[:1] == ["init"]:
        init(int(os.environ.get("DEMO_SIZE", "60")))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
