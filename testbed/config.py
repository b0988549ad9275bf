"""One place for the test bed's names, ports and folders, each overridable from the environment."""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DbUser:
    name: str
    password: str


@dataclass(frozen=True)
class TestBedConfig:
    """Where a test bed lives. `name` keeps the demo's and the tests' data apart."""

    name: str
    root: Path
    db_host: str
    db_port: int
    wp_db: str
    moodle_db: str
    wp_prefix: str
    moodle_prefix: str
    ssh_port: int
    ssh_user: str
    # Test-bed-only credentials: real deployments keep theirs in Airflow connections.
    wp_user: DbUser
    moodle_user: DbUser
    moodle_app_user: DbUser
    authdb_user: DbUser

    @property
    def moodle_dir(self) -> Path:
        return self.root / "moodle"

    @property
    def moodledata(self) -> Path:
        return self.root / "moodledata"

    @property
    def php_path(self) -> Path:
        return self.root / "bin" / "php"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def wp_requests_table(self) -> str:
        return f"{self.wp_prefix}tvs_parent_moodle_provisioning"

    @property
    def wp_auth_table(self) -> str:
        return f"{self.wp_prefix}tvs_parent_moodle_provisioning_auth"

    @classmethod
    def from_env(cls, name: str = "demo", ssh_port: int | None = None, per_checkout: bool = False) -> TestBedConfig:
        """per_checkout: database and user names carry a tag of this checkout's path, so two
        clones can run their tests at the same time on one MariaDB."""
        env = os.environ.get
        upper = name.upper()
        tag = f"{name}_{hashlib.sha256(str(PROJECT_ROOT).encode()).hexdigest()[:6]}" if per_checkout else name
        root = Path(env(f"TESTBED_{upper}_DIR", str(PROJECT_ROOT / ".testbed" / name)))
        default_port = {"demo": 2222, "test": 2223, "bench": 2224}.get(name, 2225)
        remembered = root / "ssh_port"  # written when the default port was taken by someone else
        if remembered.exists():
            default_port = int(remembered.read_text().strip())
        return cls(
            name=name,
            root=root,
            db_host=env("TESTBED_DB_HOST", "127.0.0.1"),
            db_port=int(env("TESTBED_DB_PORT", "3306")),
            wp_db=env(f"TESTBED_{upper}_WP_DB", f"pmp_{tag}_wordpress"),
            moodle_db=env(f"TESTBED_{upper}_MOODLE_DB", f"pmp_{tag}_moodle"),
            wp_prefix=env("TESTBED_WP_PREFIX", "wp_"),
            moodle_prefix=env("TESTBED_MOODLE_PREFIX", "mdl_"),
            ssh_port=ssh_port or int(env(f"TESTBED_{upper}_SSH_PORT", str(default_port))),
            ssh_user=env("TESTBED_SSH_USER", getpass.getuser()),
            wp_user=DbUser(f"pmp_{tag}_wp", f"wp-{name}-testbed-only"),
            moodle_user=DbUser(f"pmp_{tag}_mdl", f"mdl-{name}-testbed-only"),
            moodle_app_user=DbUser(f"pmp_{tag}_app", f"app-{name}-testbed-only"),
            authdb_user=DbUser(f"pmp_{tag}_authdb", f"authdb-{name}-testbed-only"),
        )
