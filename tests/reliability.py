"""RELIABILITY.md is written by the tests, not by hand.

Each fault test and each bad-input case calls `record(...)` with what it did and what the
case ended in, as the test observed it (after its assertions passed). When a whole `make test`
run passes, `tests/conftest.py` renders the records into RELIABILITY.md at the project root;
the figures there are therefore the ones the last full green run produced. Nothing in the
records varies from run to run (no times, no run ids), so an unchanged behaviour leaves the
file unchanged and a changed one shows in `git diff`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRANTS = ROOT / "docs" / "grants.sql"

# section -> (title, introduction, columns)
SECTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "faults": (
        "Faults",
        "Each fault is injected into a real component (MariaDB, OpenSSH, the Moodle double, the task "
        "process) during a real DAG run, then the cycle is run again normally. The end state is compared "
        "with an undisturbed run of the same school: every request provisioned with all its links or still "
        "approved with its reason; no duplicate role assignment, context or auth row; no comment line lost "
        "or doubled; the cycle record complete.",
        ("fault", "injected", "the disturbed run", "after the re-run"),
    ),
    "stack": (
        "Faults of the production topology",
        "The compose file's Celery topology running as processes (`make stack`: PostgreSQL, Redis, scheduler, "
        "dag-processor, triggerer, api-server, two Celery workers); each fault hits one of its processes during "
        "a real run triggered through the REST API. The run is not re-run by hand: it must finish green on its "
        "own, every task having succeeded exactly once, and end as an undisturbed run on the stack ends.",
        ("fault", "injected", "what the topology did", "the run"),
    ),
    "bad_input": (
        "Bad input: requests",
        "Every request below sat in one approved queue together, with the school's pupils, staff and "
        "parents, and went through one real cycle. Each ends provisioned or with a precise reason, on the "
        "request and in the run summary; none stopped the others; none linked a child that is not "
        "unambiguously that request's child.",
        ("case", "what the request holds", "ends in", "children linked"),
    ),
    "bad_settings": (
        "Bad input: settings",
        "Each setting below was given to a real run; `check` failed before anything was written, with this message.",
        ("case", "setting", "message"),
    ),
    "bad_ui_input": (
        "Bad input: the screens and the API",
        "Each input below was sent, logged in as ops, to Airflow's real api-server app with the plugin in it; it "
        "was answered with a page or JSON saying what is wrong (never a server error), and nothing was written.",
        ("case", "sent", "answer"),
    ),
}

_records: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in SECTIONS}


def record(section: str, case: str, *cells: str) -> None:
    """One row: `case` then the section's other columns, as strings."""
    columns = SECTIONS[section][2]
    if len(cells) != len(columns) - 1:
        raise ValueError(f"{section}: {len(columns) - 1} cells after the case, got {len(cells)}")
    _records[section][case] = tuple(str(c) for c in cells)


def recorded() -> dict[str, dict[str, tuple[str, ...]]]:
    return _records


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(records: dict[str, dict[str, tuple[str, ...]]]) -> str:
    out = [
        "# Reliability",
        "",
        "Written by `make test` (`tests/reliability.py`): every row below is a case a test ran against real "
        "MariaDB, OpenSSH, the Moodle double and real Airflow runs, with what it ended in as the test saw it.",
        "",
    ]
    for name, (title, intro, columns) in SECTIONS.items():
        rows = records.get(name) or {}
        out += [f"## {title} ({len(rows)})", "", intro, ""]
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "---|" * len(columns))
        for case in sorted(rows):
            out.append("| " + " | ".join(_cell(c) for c in (case, *rows[case])) + " |")
        out.append("")
    out += [
        "## Least privilege: the grants",
        "",
        "The integration tests connect as users holding exactly these grants (`docs/grants.sql`, rendered with "
        "the test bed's names), never as root.",
        "",
        "```sql",
        GRANTS.read_text().strip() if GRANTS.exists() else "-- docs/grants.sql is missing",
        "```",
        "",
    ]
    return "\n".join(out)
