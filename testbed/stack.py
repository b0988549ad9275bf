"""The whole test bed in one object: databases, Moodle files, sshd, and the Airflow
connections that point at them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from include.parent_provisioning import names
from testbed import mariadb, moodle_site
from testbed.config import TestBedConfig
from testbed.sshd import SshServer


@dataclass
class TestBed:
    cfg: TestBedConfig
    layout: str = "classic"
    ssh: SshServer = field(init=False)

    def __post_init__(self):
        self.ssh = SshServer(self.cfg)

    def up(self, fresh_databases: bool = True) -> TestBed:
        if fresh_databases:
            mariadb.create(self.cfg)
        moodle_site.lay_out(self.cfg, self.layout)
        moodle_site.reset_dataroot(self.cfg)
        self.ssh.start()
        return self

    def reset(self) -> TestBed:
        """A fresh Moodle site and empty WordPress tables, no faults, no sent mail (sshd keeps running)."""
        mariadb.create(self.cfg)
        moodle_site.lay_out(self.cfg, self.layout)
        moodle_site.reset_dataroot(self.cfg)
        return self

    def down(self) -> None:
        self.ssh.stop()

    def airflow_connections(self) -> dict[str, dict]:
        """The three connections the DAG uses, as Airflow's JSON connection format."""
        c = self.cfg
        mysql_extra = {"charset": "utf8mb4"}
        return {
            names.WORDPRESS_CONN_ID: {
                "conn_type": "mysql",
                "host": c.db_host,
                "port": c.db_port,
                "schema": c.wp_db,
                "login": c.wp_user.name,
                "password": c.wp_user.password,
                "extra": mysql_extra,
            },
            names.MOODLE_CONN_ID: {
                "conn_type": "mysql",
                "host": c.db_host,
                "port": c.db_port,
                "schema": c.moodle_db,
                "login": c.moodle_user.name,
                "password": c.moodle_user.password,
                "extra": mysql_extra,
            },
            names.MOODLE_SSH_CONN_ID: {
                "conn_type": "ssh",
                "host": "127.0.0.1",
                "port": c.ssh_port,
                "login": c.ssh_user,
                "extra": {"key_file": str(self.ssh.client_key), "host_key": self.ssh.host_key_line},
            },
        }

    def airflow_env(self) -> dict[str, str]:
        """AIRFLOW_CONN_* variables, as a deployment would set them."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in self.airflow_connections().items()
        }
