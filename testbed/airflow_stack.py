"""The docker-compose file's Celery topology as plain processes on this machine (`make stack`).

    python -m testbed.airflow_stack up|down|status [--name demo]

PostgreSQL as the metadata database and Celery's result backend, Redis as Celery's broker, then
`airflow scheduler`, `dag-processor`, `triggerer`, `api-server` and two `airflow celery worker`s,
each a process of its own (its own session, so it can be stopped, killed or restarted alone), with
the settings the compose stack uses: the `x-airflow-common` environment of docker-compose.yaml and
the Airflow keys of deploy/demo/airflow.env, read from those files. What must differ on one machine
(host names, ports, files) is in NATIVE, each with its reason; tests/test_compose.py holds it to
the compose file. The stack remembers what it started in its home's stack.json, and `down` stops
exactly those pids.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from include.parent_provisioning import names
from testbed.config import PROJECT_ROOT, TestBedConfig
from testbed.sshd import free_port

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
ENV_FILE = PROJECT_ROOT / "deploy" / "demo" / "airflow.env"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = names.DAG_ID
POSTGRES_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WORKERS = ("worker-1", "worker-2")
# Each native process and the compose service it stands for; its command is read from that service.
SERVICES = {
    "api-server": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "triggerer": "airflow-triggerer",
    "worker": "airflow-worker",
}

# What the native stack sets differently from the compose stack, and why. Keys of the compose
# file's common environment or of its env file; tests/test_compose.py checks each is still there.
NATIVE = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor: the compose file's `celery` profile (its env file says LocalExecutor)",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "this machine's PostgreSQL on 127.0.0.1, a database and user of the "
    "stack's own, not the `postgres` service",
    "AIRFLOW__CELERY__RESULT_BACKEND": "the same PostgreSQL database, as the compose stack's result backend is",
    "AIRFLOW__CELERY__BROKER_URL": "a redis-server of the stack's own on a loopback port, not the `redis` service",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "the api-server on loopback, not http://airflow-apiserver:8080",
    "AIRFLOW__API__BASE_URL": "where this stack's api-server listens",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "in the stack's Airflow home, not the airflow-auth volume",
}
# One value per process where containers each have their own host: ports, and the host name Airflow
# shows for a task (the worker's, as a container's host name would be).
PER_PROCESS = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "each Celery worker serves its task logs on a port of its own",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "the triggerer's log server, on a free port",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "each scheduler's health check, on a free port",
}
HOSTNAME_ENV = "PP_STACK_HOSTNAME"
# Settings the compose file leaves at Airflow's defaults that one machine needs otherwise.
ON_ONE_MACHINE = {
    # A container's host name tells ops which worker ran a task; here the process's role does.
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "testbed.airflow_stack.hostname",
    # Servers listen on loopback only (the default, 0.0.0.0, serves a container's network).
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
}


def hostname() -> str:
    """[core] hostname_callable of the native stack: a container's host name, for a process on this machine."""
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """KEY='value' lines, as docker compose reads them (single quotes: the value literally)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def compose_environment(path: Path = COMPOSE_FILE) -> dict[str, str]:
    """The `x-airflow-common` environment every Airflow service of the compose file gets."""
    compose = yaml.safe_load(path.read_text())
    return {k: str(v) for k, v in compose["x-airflow-common"]["environment"].items()}


def compose_command(service: str, path: Path = COMPOSE_FILE) -> list[str]:
    """The `airflow` arguments a compose service runs (the image's entrypoint adds `airflow`)."""
    return str(yaml.safe_load(path.read_text())["services"][service]["command"]).split()


def compose_settings() -> dict[str, str]:
    """What an Airflow container of the compose stack sees: the common environment over the env file's
    Airflow keys (compose gives `environment` precedence over `env_file`). The env file's other keys
    configure the demo's own containers (MariaDB, the Moodle server), not Airflow."""
    env = {k: v for k, v in read_env_file().items() if k.startswith(("AIRFLOW", "PARENT_PROVISIONING_"))}
    env.update(compose_environment())
    return env


def _pg_connect(**kw):
    import psycopg2

    return psycopg2.connect(**{**POSTGRES_ADMIN, **kw})


def _ensure_postgres() -> None:
    """The machine's PostgreSQL, started if it is installed but stopped."""
    import psycopg2

    with contextlib.suppress(psycopg2.OperationalError):
        _pg_connect(connect_timeout=3).close()
        return
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql (see README)")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=False)
    for _ in range(30):
        with contextlib.suppress(psycopg2.OperationalError):
            _pg_connect(connect_timeout=3).close()
            return
        time.sleep(1)
    raise SystemExit("PostgreSQL does not answer on 127.0.0.1:5432")


@dataclass
class AirflowStack:
    """One native stack: `name` keeps the demo's, tests' and benchmark's stacks apart."""

    cfg: TestBedConfig
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.name = self.cfg.name
        self.home = PROJECT_ROOT / ".airflow" / f"stack-{self.name}"
        self.state_file = self.home / "stack.json"
        tag = self.cfg.wp_db.removesuffix("_wordpress")  # pmp_<name>[_<checkout>]
        self.db_name = self.db_user = f"{tag}_airflow"
        self.db_password = f"airflow-{self.name}-testbed-only"
        self.state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    # --- settings ---------------------------------------------------------------------------------
    @property
    def api_port(self) -> int:
        return self.state["ports"]["api"]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def native(self) -> dict[str, str]:
        ports, pg = self.state["ports"], f"{self.db_user}:{self.db_password}@127.0.0.1:5432/{self.db_name}"
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{pg}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
        }

    def environment(self, process: str = "", **extra: str) -> dict[str, str]:
        """A process's whole environment: nothing inherited but the basics, so no AIRFLOW_CONN_* or
        AIRFLOW_VAR_* of the caller reaches the stack (its connections live in its metadata database)."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(compose_settings())
        env.update(self.native())
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
        )
        env.update(ON_ONE_MACHINE)
        if process:
            env[HOSTNAME_ENV] = process
        env.update(self.extra_env)
        env.update(extra)
        return env

    # --- parts ------------------------------------------------------------------------------------
    def _prepare_database(self, fresh: bool) -> None:
        _ensure_postgres()
        conn = _pg_connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                if fresh:
                    cur.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.db_name,)
                    )
                    cur.execute(f'DROP DATABASE IF EXISTS "{self.db_name}"')
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.db_user,))
                if cur.fetchone():
                    cur.execute(f'ALTER ROLE "{self.db_user}" LOGIN PASSWORD %s', (self.db_password,))
                else:
                    cur.execute(f'CREATE ROLE "{self.db_user}" LOGIN PASSWORD %s', (self.db_password,))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db_name,))
                if not cur.fetchone():
                    cur.execute(f'CREATE DATABASE "{self.db_name}" OWNER "{self.db_user}"')
        finally:
            conn.close()
        subprocess.run([AIRFLOW, "db", "migrate"], env=self.environment(), check=True, capture_output=True)

    def metadata_db(self):
        """A psycopg2 connection to the stack's metadata database, as its own user."""
        return _pg_connect(user=self.db_user, password=self.db_password, dbname=self.db_name)

    def log(self, process: str) -> Path:
        return self.home / "logs" / f"{process}.log"

    def start(self, process: str, argv: list[str] | None = None, **env: str) -> int:
        """Start one process (again, after a kill); returns its pid."""
        argv = argv or self.state["argv"][process]
        self.log(process).parent.mkdir(parents=True, exist_ok=True)
        # Where this start's lines begin in the log (a restarted process appends to its log).
        self.state.setdefault("log_from", {})[process] = (
            self.log(process).stat().st_size if self.log(process).exists() else 0
        )
        with self.log(process).open("a") as log:
            proc = subprocess.Popen(
                argv,
                env=self.environment(process, **{**self.state.get("env", {}).get(process, {}), **env}),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,
            )
        self.state.setdefault("argv", {})[process] = argv
        self.state.setdefault("env", {})[process] = {**self.state.get("env", {}).get(process, {}), **env}
        self.state.setdefault("pids", {})[process] = proc.pid
        self._save()
        return proc.pid

    def _save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state, indent=2))

    def pid(self, process: str) -> int | None:
        pid = self.state.get("pids", {}).get(process)
        return pid if pid and _alive(pid) else None

    def stop(self, process: str, sig: int = signal.SIGTERM, wait_s: float = 30) -> None:
        """Stop one process and everything it started (its session), by the pid it was started with."""
        pid = self.state.get("pids", {}).get(process)
        if pid:
            _stop_group(pid, sig, wait_s)
            self.state["pids"].pop(process, None)
            self._save()

    def kill(self, process: str) -> None:
        """SIGKILL, as a machine or container dies: no shutdown code runs."""
        self.stop(process, signal.SIGKILL)

    def restart(self, process: str, **env: str) -> int:
        self.stop(process)
        return self.start(process, **env)

    # --- the whole stack ------------------------------------------------------------------------
    def up(self, fresh: bool = True, api_port: int | None = None, workers: tuple[str, ...] = WORKERS) -> None:
        self.down()
        self.state = {"ports": {"api": api_port or free_port(), "redis": free_port(), "smtp": free_port()}}
        shutil.rmtree(self.home / "logs", ignore_errors=True)  # a new stack: its own logs
        self.home.mkdir(parents=True, exist_ok=True)
        self._save()
        self._prepare_database(fresh)
        redis = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.state["ports"]["redis"])]
        self.start("redis", [*redis, "--save", "", "--appendonly", "no"])
        for process in ("api-server", "scheduler", "dag-processor", "triggerer", *workers):
            self.start_airflow(process)
        try:
            self.wait_until_ready(workers)
        except Exception:
            self.down()
            raise

    def argv(self, process: str) -> list[str]:
        """`airflow` and the command of the compose service the process stands for (read from the compose
        file), then what one machine needs: the api-server's address, a worker's Celery name and pid file."""
        kind = process.rstrip("-0123456789")
        command = compose_command(SERVICES[kind])
        extra = {
            "api-server": ["--host", "127.0.0.1", "--port", str(self.state["ports"]["api"])],
            "worker": ["--celery-hostname", f"{process}@%h", "--pid", str(self.home / f"{process}.pid")],
        }.get(kind, [])
        return [AIRFLOW, *command, *extra]

    def start_airflow(self, process: str) -> int:
        """Start an Airflow process (scheduler-2: a second scheduler; worker-3: a third worker)."""
        kind = process.rstrip("-0123456789")
        ports = {
            "worker": "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
            "triggerer": "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
            "scheduler": "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
        }
        env = {ports[kind]: str(free_port())} if kind in ports else {}
        return self.start(process, self.argv(process), **env)

    def down(self) -> list[str]:
        """Stop what this stack started, by pid; returns their names."""
        stopped = []
        for process in list(self.state.get("pids", {})):
            if process != "redis":
                self.stop(process)
                stopped.append(process)
        if "redis" in self.state.get("pids", {}):  # the broker last: workers shut down cleanly
            self.stop("redis")
            stopped.append("redis")
        return stopped

    def wait_until_ready(self, workers: tuple[str, ...] = WORKERS, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        pending = {"api-server", "scheduler", "triggerer", "dag-processor", *workers, "dag"}
        while pending:
            for process in list(self.state["pids"]):
                if process in ("redis", "api-server", "scheduler", "dag-processor", "triggerer", *workers) and (
                    not self.pid(process)
                ):
                    raise RuntimeError(f"{process} exited while starting: see {self.log(process)}")
            health = self._health()
            for part in ("scheduler", "triggerer", "dag_processor"):
                if (health.get(part) or {}).get("status") == "healthy":
                    pending.discard(part.replace("_", "-"))
            if health:
                pending.discard("api-server")
            for worker in workers:
                if worker in pending and self.worker_ready(worker):
                    pending.discard(worker)
            if "api-server" not in pending and "dag" in pending and self.passwords():
                with contextlib.suppress(urllib.error.HTTPError, OSError):
                    self.api("GET", f"/api/v2/dags/{DAG_ID}")
                    pending.discard("dag")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not ready within {timeout_s:.0f} s: waiting for {sorted(pending)}")
            time.sleep(1)

    def since_start(self, process: str) -> str:
        """What the process has logged since it was last started."""
        log = self.log(process)
        if not log.exists():
            return ""
        with log.open("rb") as fh:
            fh.seek(self.state.get("log_from", {}).get(process, 0))
            return fh.read().decode(errors="replace")

    def worker_ready(self, worker: str) -> bool:
        text = self.since_start(worker)
        return f"{worker}@" in text and " ready." in text

    def _health(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as resp:  # noqa: S310
                return json.loads(resp.read())
        except (OSError, ValueError):
            return {}

    # --- Airflow's REST API, as a user of the stack ------------------------------------------------
    def passwords(self) -> dict[str, str]:
        path = self.home / "passwords.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def token(self, user: str = "admin") -> str:
        body = json.dumps({"username": user, "password": self.passwords()[user]}).encode()
        req = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.base_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())["access_token"]

    def api(self, method: str, path: str, body: dict | None = None, user: str = "admin"):
        cache = self.__dict__.setdefault("_tokens", {})
        if user not in cache:
            cache[user] = self.token(user)
        req = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.base_url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {cache[user]}"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            raw = resp.read()
            return json.loads(raw) if raw else None

    def register(self, connections: dict[str, dict], variables: dict[str, str]) -> None:
        """Connections and Variables into the metadata database, as an admin does in the UI."""
        entities = [
            {"connection_id": cid, **{k: v for k, v in c.items() if k != "extra"}, "extra": json.dumps(c.get("extra"))}
            for cid, c in connections.items()
        ]
        create = {"action": "create", "action_on_existence": "overwrite"}
        self.api("PATCH", "/api/v2/connections", {"actions": [{**create, "entities": entities}]})
        entities = [{"key": k, "value": v} for k, v in variables.items()]
        self.api("PATCH", "/api/v2/variables", {"actions": [{**create, "entities": entities}]})

    def trigger(self, conf: dict | None = None, user: str = "admin") -> str:
        run = self.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf or {}}, user)
        return run["dag_run_id"]

    def run(self, run_id: str) -> dict:
        return self.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def runs(self) -> list[dict]:
        return self.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=100")["dag_runs"]

    def task_instances(self, run_id: str) -> dict[str, dict]:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return {ti["task_id"]: ti for ti in self.api("GET", path)["task_instances"]}

    def tries(self, run_id: str, task_id: str) -> list[dict]:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}/tries"
        return self.api("GET", path)["task_instances"]

    def wait_for_run(self, run_id: str, timeout_s: float = 600) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(1)
        raise TimeoutError(f"run {run_id} did not finish within {timeout_s:.0f} s: {self.run(run_id)['state']}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie child of ours counts as gone
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            os.waitpid(pid, os.WNOHANG)
            return False
    return True


def _stop_group(pid: int, sig: int, wait_s: float) -> None:
    """Stop a process started as a session leader and everything in its session (Airflow puts each task
    process in a process group of its own, but not in a session of its own). SIGTERM goes to the leader,
    which shuts its children down as it would in a container; once it is gone (or after wait_s), what is
    left of the session gets SIGTERM, then SIGKILL. SIGKILL goes to every process of the session at once,
    as when a container dies."""
    _signal(_session(pid) if sig == signal.SIGKILL else [pid], sig)
    deadline = time.monotonic() + wait_s
    while pid in _session(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(_session(pid), signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _session(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    while left := _session(pid):
        _signal(left, signal.SIGKILL)
        time.sleep(0.1)


def _signal(pids: list[int], sig: int) -> None:
    for target in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)


def _session(sid: int) -> list[int]:
    """The live processes of a session; reaps the leader if it is our zombie child."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) != sid:
                    continue
                if fields[0] == "Z":
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(entry), os.WNOHANG)
                    continue
                found.append(int(entry))
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.airflow_stack")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--name", default="demo")
    args = parser.parse_args(argv)
    stack = AirflowStack(TestBedConfig.from_env(args.name))
    if args.action == "down":
        stopped = stack.down()
        print(f"stack '{args.name}': stopped {', '.join(stopped) or 'nothing (nothing was running)'}")
        return 0
    if args.action == "status":
        for process, pid in stack.state.get("pids", {}).items():
            print(f"{process:<14} pid {pid:<8} {'running' if stack.pid(process) else 'gone'}")
        return 0
    from testbed import stack_demo

    return stack_demo.up(stack)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
