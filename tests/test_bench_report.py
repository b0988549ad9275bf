"""BENCHMARKS.md's derived figures: what is the DAG's own work, which statements are whose,
and whether a target is shown as met. The raw figures come from real runs (`make bench`);
these are synthetic so that each derivation is checked by hand."""

from __future__ import annotations

import pytest

from bench import report


def _run(size, dag_s, tasks, plugin_s=30.0, plugin_statements=100_000, ok=True):
    return {
        "size": size,
        "school": {"pupils": int(size * 2.5), "requests": size, "approved": size, "existing_parents": 0},
        "end_state": {"ok": ok, "text": "ok" if ok else "WRONG", "provisioned": size - 1},
        "dag": {
            "seconds": dag_s,
            "statements": {"wordpress": 60, "moodle": 40, "moodle_itself": 9000, "auth_db": 500},
            "ssh_sessions": 2,
            "tasks": tasks,
            "xcom_bytes": {"check": 200, "report": 800},
            "report": {},
        },
        "plugin": {
            "seconds": plugin_s,
            "statements": {"wordpress": plugin_statements // 5, "moodle": plugin_statements * 4 // 5},
            "counts": {"provisioned": size - 2},
            "duplicate_assignments": 0,
            "wrong_links": 3,
        },
    }


def _task(seconds, peak=250.0):
    return {"seconds": seconds, "statements": {"wordpress": 1}, "ssh_sessions": 0, "peak_rss_mb": peak}


TASKS = {
    "check": _task(1.0),
    "sync_users": _task(40.0),
    "link_children": _task(3.0, peak=390.0),
    "send_passwords": _task(10.0),
    "report": _task(1.0),
}


def test_own_work_leaves_out_the_time_spent_inside_moodles_tasks():
    f = report.figures(_run(10_000, 60.0, TASKS))
    assert f["moodle_s"] == 50.0 and f["own_s"] == 10.0
    assert f["inside_s"] == 5.0  # check + link_children + report
    assert f["statements"] == 100 and f["moodle_own_statements"] == 9500
    assert f["statement_ratio"] == 1000 and f["time_ratio"] == 3.0 and f["inside_ratio"] == 6.0
    assert f["peak_mb"] == 390.0 and f["xcom"] == 1000


def test_a_missed_target_is_shown_as_not_met():
    results = {
        "machine": dict.fromkeys(
            ("date", "cpu", "memory", "os", "python", "mariadb", "airflow", "mysql_provider", "ssh_provider"), "x"
        ),  # fmt: skip
        "sizes": [_run(100, 6.0, TASKS), _run(10_000, 115.0, TASKS, ok=False)],
        "parse": {"median": 0.3},
        "total_seconds": 1.0,
    }
    text = report.render(results)
    # A missed target says where the figure went: the heaviest task outside Moodle's two.
    assert "| own work at 10,000 requests | < 60 s | 65.0 s | **no**: the most in `link_children`: 3 s |" in text
    assert "| statements per cycle at 10,000 requests | ≤ 200 | 100 | yes |" in text
    assert "| end state correct at every size | every size | 100: ok, 10,000: WRONG | **no**: " in text
    parse = "| DAG files parse, all together (`airflow dags report`, median of 5) | < 0.25 s |"
    assert f"{parse} 0.300 s | **no**: " in text
    assert (
        "| XCom: ids and counts only (at 10,000) | no name or email; small | 1,000 bytes; no name or email | yes |"
        in text
    )


def test_a_name_or_email_in_xcom_misses_its_target_and_is_counted_not_shown():
    from bench.dag_run import private_in

    xcoms = ['{"failed": {"child_not_found": [12, 40]}, "run_id": "manual__x"}', '{"note": "Amy.Lee@Example.org"}']
    assert private_in(xcoms, {"amy.lee@example.org", "lee", "found"}) == ["amy.lee@example.org"]
    assert private_in(xcoms[:1], {"amy", "lee", "amy.lee@example.org"}) == []  # reason codes are not words of a name

    run = _run(10_000, 60.0, TASKS)
    run["dag"]["xcom_private"] = ["amy.lee@example.org"]
    machine = dict.fromkeys(
        ("date", "cpu", "memory", "os", "python", "mariadb", "airflow", "mysql_provider", "ssh_provider"), "x"
    )
    text = report.render({"machine": machine, "sizes": [run], "parse": {"median": None}, "total_seconds": 1.0})
    assert (
        "| XCom: ids and counts only (at 10,000) | no name or email; small | 1,000 bytes; 1 names or emails | **no**"
        in text
    )
    assert "amy.lee" not in text
    parse = "| DAG files parse, all together (`airflow dags report`, median of 5) | < 0.25 s |"
    assert f"{parse} not measured | **no**" in text


def test_the_unlinking_cycle_is_reported_step_by_step_with_its_end_state():
    run = _run(10_000, 60.0, TASKS)
    unlink_tasks = {"check": _task(1.0), "unlink_children": {**_task(4.0, peak=300.0), "statements": {"moodle": 9}}}
    run["unlink"] = {
        "leavers": 640,
        "links": 1000,
        "removed": 1000,
        "ok": True,
        "dag": {"seconds": 12.5, "statements": {"wordpress": 20, "moodle": 30}, "ssh_sessions": 0,
                "tasks": unlink_tasks},
    }  # fmt: skip
    machine = dict.fromkeys(
        ("date", "cpu", "memory", "os", "python", "mariadb", "airflow", "mysql_provider", "ssh_provider"), "x"
    )
    text = report.render({"machine": machine, "sizes": [run], "parse": {"median": 0.1}, "total_seconds": 1.0})
    assert "## A cycle that unlinks 1,000 links at 10,000 requests" in text
    assert "then 640 pupils leave (suspended), holding 1,000 links" in text
    assert "1,000 removed in 12.5 s, 50 statements in all, 0 SSH sessions" in text and ": ok." in text
    assert "| `unlink_children` | 9 | 4.0 | 300 |" in text
    assert text.index("| `check` | 1 |") < text.index("| `unlink_children` |")


def test_on_the_stack_the_wait_before_a_task_counts_from_its_last_upstream_task():
    from bench.stack_run import figures

    def ti(start, end, host="worker-1"):
        return {"start_date": f"2026-12-05T10:00:{start:02d}+00:00", "end_date": f"2026-12-05T10:00:{end:02d}+00:00",
                "hostname": host, "state": "success"}  # fmt: skip

    run = {"state": "success", "queued_at": "2026-12-05T10:00:00+00:00", "start_date": "2026-12-05T10:00:01+00:00",
           "end_date": "2026-12-05T10:00:40+00:00"}  # fmt: skip
    tis = {
        "check": ti(3, 4),
        "sync_users": ti(6, 26, "worker-2"),  # 20 s in Moodle
        "mark": ti(5, 7),
        "report": ti(29, 38),  # waits for sync_users (ended at 26) and mark (7): 3 s
    }
    upstream = {"check": [], "sync_users": ["check"], "mark": ["check"], "report": ["sync_users", "mark"]}
    f = figures(run, tis, upstream)
    assert f["wall_s"] == 39 and f["moodle_s"] == 20 and f["own_s"] == 19
    assert {t: v["wait_s"] for t, v in f["tasks"].items()} == {"check": 2, "sync_users": 2, "mark": 1, "report": 3}
    assert f["waits_s"] == 8 and f["wait_max_s"] == 3 and f["tail_s"] == 2 and f["queued_s"] == 1
    assert f["inside_s"] == 1 + 2 + 9 and f["workers"] == ["worker-1", "worker-2"]


# --- a run that does not measure every size still writes its report ---------------------------------
def _machine():
    return dict.fromkeys(
        ("date", "cpu", "memory", "os", "python", "mariadb", "airflow", "mysql_provider", "ssh_provider"), "today"
    )


def test_a_run_keeps_the_stored_sizes_it_did_not_attempt_and_replaces_those_it_did():
    from bench.__main__ import merged

    stored = {"sizes": [{"size": 100, "v": "old"}, {"size": 100000, "v": "big"}], "parse": {"median": 0.1}}
    run = {"machine": _machine(), "sizes": [{"size": 100, "v": "new"}, {"size": 1000, "v": "new"}], "parse": None}
    out = merged(stored, run)
    assert [(r["size"], r["v"]) for r in out["sizes"]] == [(100, "new"), (1000, "new"), (100000, "big")]
    assert out["parse"] == {"median": 0.1} and out["machine"]["date"] == "today"


@pytest.fixture
def fake_bench(monkeypatch, tmp_path):
    """bench.__main__.main() with the test bed and the measuring replaced: its control flow only."""
    import bench.__main__ as b

    class Bed:
        def __init__(self, cfg):
            self.cfg = type("Cfg", (), {"root": tmp_path})()

        def up(self):
            pass

        def down(self):
            pass

    monkeypatch.setattr(b, "TestBed", Bed)
    monkeypatch.setattr(b.TestBedConfig, "from_env", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(b.mariadb, "ensure_server", lambda: None)
    monkeypatch.setattr(b.mariadb, "drop", lambda cfg: None)
    monkeypatch.setattr(b, "enable_user_statistics", lambda on=True: True)
    monkeypatch.setattr(b, "machine", _machine)
    return b, tmp_path


def test_a_failed_size_is_a_line_in_the_report_and_the_next_size_still_runs(fake_bench, monkeypatch):
    b, tmp = fake_bench

    def measure(bed, size, work, with_plugin=True):
        if size == 1000:
            raise RuntimeError("the DAG run for size 1000 wrote no figures (exit 1): see dag-1000.log")
        return _run(size, 6.0, TASKS) | {"wall": {"plugin_part_s": 1.0}}

    monkeypatch.setattr(b, "measure", measure)
    args = ["--sizes", "100,1000,10000", "--stack-size", "0", "--no-empty"]
    rc = b.main([*args, "--out", str(tmp / "B.md"), "--results", str(tmp / "r.json")])
    text = (tmp / "B.md").read_text()
    assert rc == 1
    assert "- **1,000**: failed (" in text and "RuntimeError: the DAG run for size 1000 wrote no figures" in text
    assert "| 10,000 | 25,000 |" in text  # measured after the failure
    assert (
        "| a cycle at 50,000 requests completes | completes, end state ok | not measured | **no**: not attempted"
        in (text)
    )


def test_a_size_predicted_to_run_too_long_is_skipped_with_its_prediction(fake_bench, monkeypatch):
    b, tmp = fake_bench
    monkeypatch.setattr(b, "measure", lambda bed, size, work, with_plugin=True: _run(size, 1000.0, TASKS))
    rc = b.main(["--sizes", "10000,100000", "--stack-size", "0", "--no-empty", "--out", str(tmp / "B.md"),
                 "--results", str(tmp / "r.json")])  # fmt: skip
    text = (tmp / "B.md").read_text()
    assert rc == 0
    assert "- **100,000**: skipped (" in text and "predicted to take" in text and "over the 7,200 s allowed" in text


def test_an_interrupted_run_still_writes_what_it_measured(fake_bench, monkeypatch):
    import os
    import signal

    b, tmp = fake_bench

    def measure(bed, size, work, with_plugin=True):
        if size == 10000:
            os.kill(os.getpid(), signal.SIGTERM)  # a CI job's time-out
        return _run(size, 6.0, TASKS)

    monkeypatch.setattr(b, "measure", measure)
    rc = b.main(["--sizes", "100,10000,50000", "--stack-size", "0", "--no-empty", "--out", str(tmp / "B.md"),
                 "--results", str(tmp / "r.json")])  # fmt: skip
    text = (tmp / "B.md").read_text()
    assert rc == 1 and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert "| 100 | 250 |" in text
    assert "- **10,000**: failed (" in text and "interrupted by SIGTERM while it ran" in text
    assert "50,000" not in text.split("Not measured:")[1].split("###")[0].replace("10,000", "")


def test_a_task_that_grows_faster_than_linearly_is_named_with_its_reason():
    def run(size, sync_s, link_s):
        r = _run(size, sync_s + link_s + 20, {**TASKS, "sync_users": _task(sync_s), "link_children": _task(link_s)})
        r["dag"]["report"] = {"sync": {"actual": {"created": size}}}
        return r

    # sync_users quadruples when the size doubles (k = 2); link_children doubles (k = 1): only one is named
    runs = [report.figures(run(n, s, k)) for n, s, k in ((1_000, 10.0, 2.0), (2_000, 40.0, 4.0), (4_000, 160.0, 8.0))]
    text = "\n".join(report._faster_than_linear(runs))
    assert "| `sync_users` | 10 | 40 | 160 | 2.00 | 2.00 |" in text
    assert "| `link_children` | 2 | 4 | 8 | 1.00 | 1.00 |"
    assert "`collect`" not in text  # in no run: no row in text
    assert "- `sync_users` (1,000 → 2,000: k = 2.00; 2,000 → 4,000: k = 2.00). **Moodle's cost" in text
    assert "10.0 ms at 1,000, 20.0 ms at 2,000, 40.0 ms at 4,000" in text  # per account created
    assert "- `link_children`" not in text
    # a task under the floor is noise, not growth: check grows k = 2 but stays under 5 s
    small = [report.figures(run(n, 1.0, 1.0)) for n in (1_000, 2_000)]
    assert "No task of 5 s or more grew faster than linearly." in "\n".join(report._faster_than_linear(small))
