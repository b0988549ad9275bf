"""`make bench`: the provisioning cycle at 100, 1,000 and 10,000 approved requests, measured on
the local test bed and side by side with the WordPress plugin's per-request pattern on identical
data; `make bench-big`: a trust's 50,000 and 100,000. Writes BENCHMARKS.md.

    python -m bench [--sizes 100,1000,10000] [--stack-size 10000] [--plugin-up-to 20000] [--keep]

Every size's figures are kept in bench/results.json (committed): a run replaces the sizes it
attempted and keeps the others' (each says when it was measured), and BENCHMARKS.md is written
from them all, after every size and at the end however the run ends: a size that fails, runs out
of time or is interrupted is a line in the report with its reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.probe import ServerCounters, enable_user_statistics
from bench.wordpress_plugin import replay
from include.parent_provisioning import names
from testbed import demo_data, mariadb, moodle_site, verify
from testbed.config import PROJECT_ROOT, TestBedConfig
from testbed.demo import demo_settings
from testbed.sshd import free_port
from testbed.stack import TestBed

RESULTS = PROJECT_ROOT / "bench" / "results.json"
# How the Moodle double's tasks grow with the number of new accounts: Moodle's user sync reads each new
# user's row from the auth table by username, and the plugin's table has no index on it, so each read
# scans the table: the sync grows towards quadratic (see BENCHMARKS.md): from 50,000 to 100,000
# requests by size ** 1.8, by its per-user cost and the scans. Past 10,000 a size is predicted from the
# largest measured (below, fixed costs are most of a run and would predict nonsense).
MOODLE_GROWTH = 1.8
PREDICT_FROM = 10_000
DAG_RUN_LIMIT_S = 7200  # a DAG run that takes longer is stopped: the benchmark reports it, it does not hang


def _users(cfg: TestBedConfig) -> dict[str, str]:
    return {
        "wordpress": cfg.wp_user.name,
        "moodle": cfg.moodle_user.name,
        "moodle_itself": cfg.moodle_app_user.name,
        "auth_db": cfg.authdb_user.name,
    }


def bench_settings(bed: TestBed, size: int, **overrides) -> dict:
    return {
        **demo_settings(bed),
        "max_requests_per_cycle": max(5000, size),
        "moodle_task_timeout_s": DAG_RUN_LIMIT_S,
        **overrides,
    }


def _airflow_env(bed: TestBed, size: int, **overrides) -> dict[str, str]:
    env = dict(os.environ)
    env.update(bed.airflow_env())
    env["AIRFLOW_VAR_MOODLE_PARENT_PROVISIONING"] = json.dumps(bench_settings(bed, size, **overrides))
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    # dag.test() triggers as "dag_test"; the unlinking cycle's allow_mass_unlink is honoured only for a
    # user who manages requests: this one, here.
    env["PARENT_PROVISIONING_OVERRIDE_USERS"] = "dag_test"
    return env


def private_words(school: demo_data.School) -> set[str]:
    """Every parent's and child's name and email in the school, as words, lower-cased."""
    words = set()
    for r in school.requests:
        texts = [r.parent_fname, r.parent_sname, r.parent_email] + [n for c in r.children for n in c[:2]]
        words.update(w.lower() for t in texts for w in (t or "").split() if len(w) > 1)
    for u in school.users:
        words.update(w.lower() for t in (u.firstname, u.lastname, u.email) for w in (t or "").split() if len(w) > 1)
    return words


def run_dag(
    bed: TestBed,
    size: int,
    work: Path,
    school: demo_data.School | None = None,
    name: str = "",
    conf: dict | None = None,
    settings: dict | None = None,
) -> dict:
    """One real DAG run in its own process; its per-task figures. name: of its files (default: the size)."""
    name = name or str(size)
    spec = work / f"spec-{name}.json"
    out = work / f"dag-{name}.json"
    private = work / f"private-{name}.txt"
    private.write_text("\n".join(sorted(private_words(school))) if school else "")
    spec.write_text(
        json.dumps(
            {
                "users": _users(bed.cfg),
                "sshd_log": str(bed.ssh.log),
                "conf": {names.REQUEST_IDS: [], names.DRY_RUN: False, **(conf or {})},
                "out": str(out),
                "private": str(private),
            }
        )
    )
    log = work / f"dag-{name}.log"
    out.unlink(missing_ok=True)
    with log.open("w") as fh:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.dag_run", str(spec)],
                env=_airflow_env(bed, size, **(settings or {})),
                cwd=PROJECT_ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=DAG_RUN_LIMIT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"the DAG run for size {size} took over {DAG_RUN_LIMIT_S} s: see {log}") from exc
    if not out.exists():
        raise RuntimeError(f"the DAG run for size {size} wrote no figures (exit {proc.returncode}): see {log}")
    return json.loads(out.read_text())


def fresh_school(bed: TestBed, size: int) -> tuple[demo_data.School, float]:
    mariadb.create(bed.cfg)
    moodle_site.lay_out(bed.cfg)
    moodle_site.reset_dataroot(bed.cfg)
    # A September queue: `size` approved requests in a school (a trust past 20,000) of that size.
    school = demo_data.generate(size=max(size, demo_data.MIN_SIZE), approved=size)
    t0 = time.monotonic()
    demo_data.load(bed.cfg, school)
    return school, time.monotonic() - t0


def run_plugin(bed: TestBed, size: int) -> dict:
    """The WordPress plugin's loop on the same school: Moodle's user sync first (as the plugin
    runs it, not measured), then its per-request statements, measured the same way."""
    cfg = bed.cfg
    school, _ = fresh_school(bed, size)
    sync = subprocess.run(
        ["bash", "-c", moodle_site.command(cfg, moodle_site.SYNC_USERS)], capture_output=True, check=False
    )
    if sync.returncode != 0:
        raise RuntimeError(f"the Moodle double's sync failed before the plugin replay: {sync.stdout[-500:]!r}")
    role_id = int(
        verify.rows(cfg.moodle_db, f"SELECT id FROM `{cfg.moodle_prefix}role` WHERE shortname='parent'")[0][0]
    )
    wp = mariadb.connect(cfg, cfg.wp_user, cfg.wp_db)
    # The plugin read mnet_host, which the project's least-privilege Moodle user may not: it connects
    # with Moodle's own database user, as schools configured it, and its statements are counted there.
    mdl = mariadb.connect(cfg, cfg.moodle_app_user, cfg.moodle_db)
    wp.autocommit(True)
    mdl.autocommit(True)
    counters = ServerCounters({"wordpress": cfg.wp_user.name, "moodle": cfg.moodle_app_user.name}, None)
    try:
        before = counters.read()
        t0 = time.monotonic()
        counts = replay(wp, mdl, wp_prefix=cfg.wp_prefix, mdl_prefix=cfg.moodle_prefix, parent_role_id=role_id)
        seconds = time.monotonic() - t0
        delta = counters.read().minus(before)
    finally:
        counters.close()
        wp.close()
        mdl.close()
    return {
        "seconds": round(seconds, 3),
        "statements": delta.statements,
        "counts": counts,
        "duplicate_assignments": verify.duplicate_assignments(cfg),
        "wrong_links": len(verify.parent_links(cfg) - demo_data.expected_links(school)),
    }


def measure(bed: TestBed, size: int, work: Path, with_plugin: bool = True) -> dict:
    print(f"== {size:,} approved requests")
    t0 = time.monotonic()
    school, load_s = fresh_school(bed, size)
    described = demo_data.describe(school)
    print(f"   school: {described['pupils']:,} pupils, {described['requests']:,} requests, loaded in {load_s:.1f} s")
    dag = run_dag(bed, size, work, school)
    state = verify.end_state(bed.cfg, school)
    print(f"   DAG run: {dag['state']} in {dag['seconds']:.1f} s; end state {state.describe()}")
    dag_part_s = time.monotonic() - t0
    unlinking = unlink_cycle(bed, size, work, school) if size == UNLINK_AT else None
    plugin = run_plugin(bed, size) if with_plugin else None
    if plugin:
        statements = sum(plugin["statements"].values())
        print(f"   WordPress plugin's pattern: {statements:,} statements in {plugin['seconds']:.1f} s")
    return {
        "wall": {"dag_part_s": dag_part_s, "plugin_part_s": time.monotonic() - t0 - dag_part_s},
        "size": size,
        "school": {k: described[k] for k in ("pupils", "requests", "approved", "existing_parents", "schools")},
        "expected_children": described["approved_children"],
        "dag": dag,
        "end_state": {"ok": state.ok, "text": state.describe(), "provisioned": state.provisioned},
        "plugin": plugin,
        **({"unlink": unlinking} if unlinking else {}),
    }


UNLINK_AT, UNLINKS = 10_000, 1_000  # a cycle that takes away this many links, in the school this size


def unlink_cycle(bed: TestBed, size: int, work: Path, school: demo_data.School) -> dict:
    """The school just provisioned, then the year's leavers: pupils suspended until their links
    number UNLINKS, and a cycle with unlink_leavers on (and the cap lifted) takes those links away.
    Nothing else is waiting, so the cycle is the unlinking's cost. Checked in Moodle's tables: the
    leavers' links gone, every other link there, the ledger closed for exactly those."""
    cfg = bed.cfg
    links = f"`parent_provisioning_{cfg.moodle_prefix}links`"
    per_child = verify.rows(
        cfg.moodle_db,
        f"SELECT child_userid, COUNT(*) FROM {links} WHERE child_userid IS NOT NULL AND removed_at IS NULL"
        " GROUP BY child_userid HAVING SUM(origin <> 'made') = 0 ORDER BY child_userid",
    )
    leavers, total = [], 0
    for child, n in per_child:
        if total >= UNLINKS:
            break
        leavers.append(int(child))
        total += int(n)
    before = verify.parent_links(cfg)
    conn = mariadb.admin_connect(cfg.moodle_db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(
                f"UPDATE `{cfg.moodle_prefix}user` SET suspended = 1 WHERE id IN ({', '.join(['%s'] * len(leavers))})",
                leavers,
            )
    finally:
        conn.close()
    print(f"   {len(leavers):,} pupils left, holding {total:,} links: a cycle with unlink_leavers on")
    dag = run_dag(
        bed, size, work, school, name=f"{size}-unlink", conf={names.ALLOW_MASS_UNLINK: True},
        settings={"unlink_leavers": True},
    )  # fmt: skip
    after = verify.parent_links(cfg)
    gone = set(
        verify.rows(
            cfg.moodle_db,
            f"SELECT u.username, l.child_userid FROM {links} l JOIN `{cfg.moodle_prefix}user` u ON u.id ="
            f" l.parent_userid WHERE l.removed_reason = 'child_left'"
            f" AND l.child_userid IN ({', '.join(map(str, leavers))})",
        )
    )
    closed = verify.rows(
        cfg.moodle_db, f"SELECT COUNT(*) FROM {links} WHERE removed_reason = 'child_left' AND child_userid IS NOT NULL"
    )[0][0]
    ok = dag["state"] == "success" and after == before - gone and int(closed) == total == len(gone)
    removed = (dag.get("report") or {}).get("links_removed")
    print(f"   unlinking cycle: {dag['state']} in {dag['seconds']:.1f} s, {removed} links removed; end state ok={ok}")
    return {"leavers": len(leavers), "links": total, "removed": removed, "ok": ok, "dag": dag}


def on_the_stack(bed: TestBed, size: int) -> list[dict]:
    """A small school, then `size`, on the production topology: scheduler, Celery workers, PostgreSQL,
    Redis. The small one shows what a run costs on the stack whatever its size."""
    from bench import stack_run

    def prepare(n: int):
        school, _ = fresh_school(bed, n)
        return school, bench_settings(bed, n)

    print(f"== 100 and {size:,} approved requests on the production topology (make stack's processes)")
    results = stack_run.measure(bed, [100, size], prepare)
    for r in results:
        print(
            f"   {r['size']:,}: run {r['state']} in {r['wall_s']:.1f} s on {', '.join(r['workers'])}: own work "
            f"{r['own_s']:.1f} s, of which waiting between tasks {r['waits_s']:.1f} s; end state "
            f"{r['end_state']['text']}"
        )
    return results


def empty_cycle(bed: TestBed, work: Path) -> dict:
    """A school where nothing waits: every approved request put back to pending, and no auth row
    without its account (else Moodle's user sync has an account to create, which is work). The
    cycle should open no SSH session and take seconds."""
    fresh_school(bed, 100)
    conn = mariadb.admin_connect(bed.cfg.wp_db)
    try:
        with mariadb.cursor(conn) as cur:
            cur.execute(f"UPDATE `{bed.cfg.wp_requests_table}` SET status = 'pending' WHERE status = 'approved'")
            cur.execute(
                f"DELETE a FROM `{bed.cfg.wp_auth_table}` a WHERE NOT EXISTS (SELECT 1 FROM"
                f" `{bed.cfg.moodle_db}`.`{bed.cfg.moodle_prefix}user` u WHERE u.username = a.username"
                " AND u.auth = 'db' AND u.deleted = 0)"
            )
    finally:
        conn.close()
    return run_dag(bed, 0, work)


def parse_time() -> dict:
    """`airflow dags report`'s own parse duration of all the DAG files together, five times (the first
    file parsed pays the imports the others share, so one file's figure alone would mislead)."""
    found = []
    for _ in range(5):
        out = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "dags", "report"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        files = re.findall(r"\.py\s*\|\s*(\d+):(\d+):([\d.]+)", out)
        if files:
            found.append(sum(float(s) + 60 * int(m) for _, m, s in files))
    return {"runs": found, "median": statistics.median(found) if found else None}


def _commit() -> str:
    """The code measured: HEAD, marked "+changes" when the checkout differs from it (not a git clone: "unknown")."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> dict:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    mem_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
    )
    version = verify.rows(None, "SELECT VERSION()")[0][0]
    from importlib.metadata import version as pkg

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "cpu": f"{os.cpu_count()} × {cpu}",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "mariadb": version,
        "airflow": pkg("apache-airflow"),
        "mysql_provider": pkg("apache-airflow-providers-mysql"),
        "ssh_provider": pkg("apache-airflow-providers-ssh"),
    }


class Interrupted(BaseException):  # not an Exception: a size's failure handler must not swallow it
    """SIGTERM (a CI job's time-out) or Ctrl-C: the report is still written."""


def _stop(signum, frame):
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def predicted_s(done: list[dict], size: int) -> float | None:
    """The DAG run's time at `size`, from the largest size measured so far: the project's own work
    scaled linearly, the Moodle double's two tasks by MOODLE_GROWTH. None: nothing to scale from."""
    measured = [r for r in done if "dag" in r and PREDICT_FROM <= r["size"] < size]
    if not measured:
        return None
    last = max(measured, key=lambda r: r["size"])
    parts, factor = report.figures(last), size / last["size"]
    return parts["own_s"] * factor + parts["moodle_s"] * factor**MOODLE_GROWTH


def merged(stored: dict, run: dict) -> dict:
    """The stored figures with this run's on top: its sizes replace the stored ones of the same size,
    the others are kept (each with the date it was measured); parts this run did not make are kept."""
    out = {**stored, **{k: v for k, v in run.items() if k != "sizes" and v is not None}}
    attempted = {r["size"] for r in run["sizes"]}
    out["sizes"] = sorted(
        [r for r in stored.get("sizes", []) if r["size"] not in attempted] + run["sizes"], key=lambda r: r["size"]
    )
    return out


def not_run(size: int, why: str, kind: str = "failed") -> dict:
    return {"size": size, kind: why, "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000", help="approved requests per run, comma-separated")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "BENCHMARKS.md"))
    ap.add_argument("--results", default=str(RESULTS), help="the figures kept between runs (JSON)")
    ap.add_argument("--keep", action="store_true", help="keep the bench databases for inspection")
    ap.add_argument(
        "--stack-size", type=int, default=10000, help="run this size on `make stack`'s topology too (0: no)"
    )
    ap.add_argument(
        "--plugin-up-to", type=int, default=20000, help="replay the WordPress plugin's pattern up to this size"
    )
    ap.add_argument("--no-empty", action="store_true", help="leave out the empty cycle and the parse time")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results_path, out_path = Path(args.results), Path(args.out)
    stored = json.loads(results_path.read_text()) if results_path.exists() else {}

    started = time.monotonic()
    run: dict = {"machine": machine(), "sizes": []}

    def save() -> None:
        run["total_seconds"] = round(time.monotonic() - started, 1)
        everything = merged(stored, run)
        results_path.write_text(json.dumps(everything, indent=1, default=str) + "\n")
        out_path.write_text(report.render(everything))

    signal.signal(signal.SIGTERM, _stop)
    mariadb.ensure_server()
    userstat_was_on = enable_user_statistics()
    bed = TestBed(TestBedConfig.from_env("bench", ssh_port=free_port(), per_checkout=True))
    work = bed.cfg.root / "results"
    work.mkdir(parents=True, exist_ok=True)
    current = None
    try:
        bed.up()
        if not args.no_empty:
            run["parse"] = parse_time()
            print(f"== DAG files parse time, all together (airflow dags report): {run['parse']['median']} s")
            run["empty"] = empty_cycle(bed, work)
            print(f"== empty cycle: {run['empty']['seconds']:.1f} s, {run['empty']['ssh_sessions']} SSH sessions")
        for size in sizes:
            guess = predicted_s(run["sizes"], size)
            if guess is not None and guess > DAG_RUN_LIMIT_S:
                why = f"its DAG run was predicted to take {guess:,.0f} s, over the {DAG_RUN_LIMIT_S:,} s allowed"
                print(f"== {size:,} skipped: {why}")
                run["sizes"].append(not_run(size, why, "skipped"))
                continue
            if guess is not None:
                print(f"== {size:,}: its DAG run predicted to take {guess:,.0f} s")
            current = size
            try:
                entry = measure(bed, size, work, with_plugin=size <= args.plugin_up_to)
                entry["measured"] = run["machine"]["date"]
                entry["commit"] = run["machine"].get("commit")
            except Exception as exc:  # any failure of one size: reported, and the next size is tried
                traceback.print_exc()
                entry = not_run(size, f"{type(exc).__name__}: {exc}")
            run["sizes"].append(entry)
            current = None
            save()
        if args.stack_size:
            try:
                run["stack"] = on_the_stack(bed, args.stack_size)
            except Exception as exc:
                traceback.print_exc()
                run["stack_failed"] = f"{type(exc).__name__}: {exc}"
    except (Interrupted, KeyboardInterrupt) as exc:
        print(f"== stopped: {exc or 'interrupted'}; writing what was measured")
        run["interrupted"] = str(exc) or "interrupted by Ctrl-C"
        if current is not None:
            run["sizes"].append(not_run(current, f"{run['interrupted']} while it ran"))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        bed.down()
        if not args.keep:
            mariadb.drop(bed.cfg)  # the bench's databases and users; --keep leaves them to look into
        enable_user_statistics(userstat_was_on)
        save()
    print(f"== wrote {out_path} ({run['total_seconds']:.0f} s in all); raw figures in {results_path}")
    runs = [r for r in run["sizes"] if "dag" in r] + run.get("stack", [])
    failed = [r for r in run["sizes"] if "failed" in r] or run.get("stack_failed") or run.get("interrupted")
    return 0 if runs and not failed and all(r["end_state"]["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
