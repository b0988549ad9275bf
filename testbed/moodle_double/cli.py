"""`php <moodle>/admin/cli/scheduled_task.php [options]`, as Moodle 4.5-5.1 behaves."""

from __future__ import annotations

import fcntl
import re
import resource
import sys
import time
from pathlib import Path

import MySQLdb

from testbed.moodle_double import tasks

SCRIPT_TAIL = ("admin", "cli", "scheduled_task.php")
KNOWN_OPTIONS = {"help", "list", "execute", "showsql", "showdebugging", "force", "disable", "enable"}
SHORT = {"h": "help", "f": "force"}


def mtrace(line: str = "") -> None:
    print(line, flush=True)


def parse_config_php(path: Path) -> dict[str, str]:
    """The `$CFG->name = 'value';` lines of a Moodle config.php."""
    cfg: dict[str, str] = {}
    pattern = re.compile(r"""^\s*\$CFG->(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\d+))\s*;""")
    for line in path.read_text().splitlines():
        m = pattern.match(line)
        if m:
            cfg[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
    port = re.search(r"'dbport'\s*=>\s*'?(\d+)", path.read_text())
    cfg["dbport"] = port.group(1) if port else "3306"
    return cfg


def find_code_root(script: Path) -> tuple[Path, Path]:
    """(dirroot, the folder holding config.php): 5.1 keeps the code under public/."""
    dirroot = script.parents[2]
    if (dirroot / "config.php").exists():
        return dirroot, dirroot
    return dirroot, dirroot.parent


def parse_args(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    options: dict[str, str | bool] = {}
    unrecognised = []
    for arg in argv:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            if name in KNOWN_OPTIONS:
                options[name] = value if "=" in arg else True
            else:
                unrecognised.append(arg)
        elif arg.startswith("-") and arg[1:] in SHORT:
            options[SHORT[arg[1:]]] = True
        else:
            unrecognised.append(arg)
    return options, unrecognised


class Lock:
    """Moodle's file lock factory: a lock file in $CFG->dataroot/lock, waited for."""

    def __init__(self, dataroot: str, name: str, wait_s: float):
        lockdir = Path(dataroot) / "lock"
        lockdir.mkdir(parents=True, exist_ok=True)
        self.path = lockdir / (name.strip("\\").replace("\\", "_") + ".lock")
        self.wait_s = wait_s
        self.fh = None

    def acquire(self) -> bool:
        fh = open(self.path, "a")  # noqa: SIM115 - held until released
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fh = fh
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    return False
                time.sleep(0.1)

    def release(self) -> None:
        if self.fh:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def main(argv: list[str]) -> int:
    if not argv:
        print("Usage: php [options] [-f] <file> [--] [args...]", file=sys.stderr)
        return 1
    script = Path(argv[0])
    if not script.is_file():
        print(f"Could not open input file: {argv[0]}")
        return 1
    if script.parts[-3:] != SCRIPT_TAIL:
        print(f"PHP Fatal error:  the Moodle double only runs {'/'.join(SCRIPT_TAIL)}", file=sys.stderr)
        return 255
    dirroot, configroot = find_code_root(script)
    config_php = configroot / "config.php"
    if not config_php.exists():
        print(
            f"PHP Warning:  require({config_php}): Failed to open stream: No such file or directory",
            file=sys.stderr,
        )
        return 255
    cfg = parse_config_php(config_php)

    options, unrecognised = parse_args(argv[1:])
    if unrecognised:
        print(
            "Unrecognised options:\n  " + "\n  ".join(unrecognised) + "\nPlease use --help option.",
            file=sys.stderr,
        )
        return 1
    if options.get("help") or not any(options.get(c) for c in ("list", "execute", "disable", "enable")):
        mtrace(
            "Scheduled cron tasks.\n\nOptions:\n--execute=\\\\some\\\\task  Execute scheduled task manually\n"
            "--list                List all scheduled tasks\n"
            "-f, --force           Execute task even if cron is disabled"
        )
        return 0

    try:
        db = tasks.MoodleDb(
            host=cfg["dbhost"],
            port=int(cfg["dbport"]),
            user=cfg["dbuser"],
            password=cfg["dbpass"],
            name=cfg["dbname"],
            prefix=cfg.get("prefix", "mdl_"),
        )
    except MySQLdb.OperationalError as exc:
        # Moodle's setup.php: the database is unreachable before any task code runs.
        mtrace("!!! Database connection failed !!!")
        mtrace(f"!! {exc.args[-1]} !!")
        return 1

    if options.get("list"):
        mtrace(f"List of scheduled tasks ({cfg.get('wwwroot', '')})")
        for classname in tasks.TASKS:
            mtrace(classname)
        return 0

    version_php = dirroot / "version.php"
    code_version = re.search(r"\$version\s*=\s*([\d.]+)", version_php.read_text()).group(1)
    if float(db.get_config("version") or 0) < float(code_version):
        mtrace("Moodle upgrade pending, cannot manage tasks.")
        return 1

    requested = str(options.get("execute") or options.get("enable") or options.get("disable"))
    classname = "\\" + requested.lstrip("\\")
    task = tasks.TASKS.get(classname)
    if task is None or tasks.Faults.peek(Path(cfg["dataroot"]), classname).get("not_installed"):
        mtrace(f"Task '{requested}' not found")
        return 1
    if not options.get("execute"):
        mtrace(f"{'Enabled' if options.get('enable') else 'Disabled'} '{requested}'")
        return 0

    if db.get_config("cron_enabled") != "1" and not options.get("force"):
        mtrace("Cron is disabled. Use --force to override.")
        return 1

    wait_s = float(cfg.get("double_lock_wait", "10"))
    cronlock = Lock(cfg["dataroot"], "core_cron", wait_s)
    if not cronlock.acquire():
        mtrace("Cannot obtain cron lock")
        return 129
    tasklock = Lock(cfg["dataroot"], classname, wait_s)
    if not tasklock.acquire():
        cronlock.release()
        mtrace("Cannot obtain task lock")
        return 130
    cronlock.release()  # neither task is a blocking task
    try:
        run_inner_scheduled_task(db, cfg, classname, task)
    finally:
        tasklock.release()
    return 0


def run_inner_scheduled_task(db: tasks.MoodleDb, cfg: dict[str, str], classname: str, task) -> None:
    """\\core\\cron::run_inner_scheduled_task: anything the task throws is caught and printed."""
    fullname = f"{task.name} ({classname.lstrip(chr(92))})"
    mtrace(f"Execute scheduled task: {fullname}")
    memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mtrace(f"... started {time.strftime('%H:%M:%S')}. Current memory use {memory:.1f} MB.")
    started, queries = time.monotonic(), db.queries
    faults = tasks.Faults(Path(cfg["dataroot"]), classname)
    try:
        task.execute(db, cfg, faults, mtrace)
    except Exception as exc:
        db.rollback()
        mtrace(f"... used {db.queries - queries} dbqueries")
        mtrace(f"... used {time.monotonic() - started:.6f} seconds")
        mtrace(f"Scheduled task failed: {fullname},{exc}")
        return
    mtrace(f"... used {db.queries - queries} dbqueries")
    mtrace(f"... used {time.monotonic() - started:.6f} seconds")
    mtrace(f"Scheduled task complete: {fullname}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
