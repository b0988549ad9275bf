"""A private OpenSSH server on a loopback port, with its own host and client keys.

Never touches the machine's own sshd configuration: everything is passed with -o.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from testbed.config import TestBedConfig

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SshServer:
    def __init__(self, cfg: TestBedConfig):
        self.cfg = cfg
        self.dir = cfg.ssh_dir
        self.host_key = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        self.authorized_keys = self.dir / "authorized_keys"
        self.pidfile = self.dir / "sshd.pid"
        self.log = self.dir / "sshd.log"

    @property
    def host_key_line(self) -> str:
        """`ssh-ed25519 AAAA...`: what the Airflow connection's host_key extra holds."""
        return " ".join(Path(str(self.host_key) + ".pub").read_text().split()[:2])

    def _keygen(self, path: Path) -> None:
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)

    def running(self) -> bool:
        if not self.pidfile.exists():
            return False
        try:
            os.kill(int(self.pidfile.read_text().strip()), 0)
        except (ProcessLookupError, ValueError):
            return False
        return self._port_open()

    def logins(self) -> int:
        """How many sessions have logged in so far, from the server's log."""
        return self.log.read_text().count("Accepted publickey") if self.log.exists() else 0

    def wait_for_login(self, after: int, timeout_s: float = 30, stop=None) -> bool:
        """Wait until more than `after` sessions have logged in (or `stop`, a threading.Event, is set)."""
        deadline = time.monotonic() + timeout_s
        while self.logins() <= after and time.monotonic() < deadline and not (stop and stop.is_set()):
            time.sleep(0.1)
        return self.logins() > after

    def port_taken(self) -> bool:
        return self._port_open()

    def _port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.cfg.ssh_port)) == 0

    def prepare(self) -> None:
        """Host and client keys (made once, then kept), and the client key as the one authorized key."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.makedirs("/run/sshd", exist_ok=True)
        self._keygen(self.host_key)
        self._keygen(self.client_key)
        self.authorized_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        self.authorized_keys.chmod(0o600)

    def command(self, listen: str = "127.0.0.1", foreground: bool = False) -> list[str]:
        """sshd with every option on the command line; foreground logs to stderr (a container's log)."""
        options = {
            "ListenAddress": listen,
            "Port": self.cfg.ssh_port,
            "HostKey": self.host_key,
            "AuthorizedKeysFile": self.authorized_keys,
            "PidFile": self.pidfile,
            "StrictModes": "no",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "UsePAM": "no",
            "PermitRootLogin": "prohibit-password",
            "MaxStartups": 50,
            "MaxSessions": 50,
        }
        args = [SSHD, "-f", "/dev/null"]
        for key, value in options.items():
            args += ["-o", f"{key}={value}"]
        return args + (["-D", "-e"] if foreground else ["-E", str(self.log)])

    def start(self, timeout_s: float = 10) -> SshServer:
        if not os.path.exists(SSHD):
            raise RuntimeError("OpenSSH server missing: apt-get install -y openssh-server")
        if self.running():
            return self
        if self._port_open():
            raise RuntimeError(
                f"port {self.cfg.ssh_port} on 127.0.0.1 is already in use (a test bed sshd from another checkout?): "
                f"stop it, or choose another port with TESTBED_{self.cfg.name.upper()}_SSH_PORT"
            )
        self.prepare()
        subprocess.run(self.command(), check=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self._port_open():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start on port {self.cfg.ssh_port}: see {self.log}")

    def stop(self) -> None:
        if self.pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.pidfile.read_text().strip()), signal.SIGTERM)
            deadline = time.monotonic() + 5
            while self._port_open() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.pidfile.unlink(missing_ok=True)
