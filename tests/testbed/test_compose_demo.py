"""The compose `demo` profile's jobs, run here on this machine's sshd and Airflow: its Moodle server's sshd
configuration is valid, and the connections demo-init writes are the ones the DAG reads, with the host key
verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from include.parent_provisioning import names, settings
from testbed import compose_demo

AIRFLOW = str(Path(sys.executable).parent / "airflow")


@pytest.fixture
def demo_bed(tmp_path, monkeypatch):
    monkeypatch.setenv("TESTBED_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.setenv("TESTBED_DEMO_SSH_PORT", "2222")
    stack = compose_demo.bed()
    stack.ssh.prepare()
    return stack


def test_the_demo_moodle_servers_sshd_configuration_is_valid(demo_bed):
    command = compose_demo.moodle_command(demo_bed)
    assert "ListenAddress=0.0.0.0" in command and command[-2:] == ["-D", "-e"]
    result = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_demo_init_writes_every_connection_the_dag_reads_with_the_host_key(demo_bed):
    connections, variables = compose_demo.airflow_objects(demo_bed)
    assert set(connections) == {
        names.WORDPRESS_CONN_ID,
        names.MOODLE_CONN_ID,
        names.MOODLE_SSH_CONN_ID,
        names.SMTP_CONN_ID,
    }
    ssh = connections[names.MOODLE_SSH_CONN_ID]
    assert (ssh["host"], ssh["port"]) == (compose_demo.MOODLE_HOST, 2222)
    assert ssh["extra"]["host_key"] == demo_bed.ssh.host_key_line and "no_host_key_check" not in ssh["extra"]
    assert ssh["extra"]["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    s = settings.parse(variables[names.SETTINGS_VARIABLE])
    assert s.moodle_dir == str(demo_bed.cfg.moodle_dir) and s.notify_emails == (compose_demo.OPS_EMAIL,)


def test_the_airflow_cli_takes_what_demo_init_writes(demo_bed):
    from airflow.models import Connection, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    ids = [names.WORDPRESS_CONN_ID, names.MOODLE_CONN_ID, names.MOODLE_SSH_CONN_ID, names.SMTP_CONN_ID]
    try:
        compose_demo.register(demo_bed, airflow=AIRFLOW)
        with create_session() as session:
            stored = {c.conn_id: c for c in session.scalars(select(Connection).where(Connection.conn_id.in_(ids)))}
            variable = session.scalar(select(Variable).where(Variable.key == names.SETTINGS_VARIABLE))
            assert set(stored) == set(ids)
            assert stored[names.MOODLE_SSH_CONN_ID].extra_dejson["host_key"] == demo_bed.ssh.host_key_line
            assert stored[names.WORDPRESS_CONN_ID].conn_type == "mysql" and stored[names.SMTP_CONN_ID].port == 1025
            assert json.loads(variable.val)["moodle_dir"] == str(demo_bed.cfg.moodle_dir)
    finally:
        with create_session() as session:
            for row in session.scalars(select(Connection).where(Connection.conn_id.in_(ids))):
                session.delete(row)
            for row in session.scalars(select(Variable).where(Variable.key == names.SETTINGS_VARIABLE)):
                session.delete(row)
