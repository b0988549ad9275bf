"""Shared fixtures: one test bed (MariaDB databases pmp_test_<checkout tag>_*, a private sshd, the Moodle
double) for the session, reset to a fresh Moodle site before each test that asks for it."""

from __future__ import annotations

import os

import pytest

from testbed.config import TestBedConfig
from testbed.sshd import free_port
from testbed.stack import TestBed


@pytest.fixture(scope="session")
def bed():
    # A free port: a stale sshd left by an interrupted run elsewhere must not break the tests.
    port = int(os.environ.get("TESTBED_TEST_SSH_PORT") or free_port())
    stack = TestBed(TestBedConfig.from_env("test", ssh_port=port, per_checkout=True)).up()
    saved = {k: os.environ.get(k) for k in stack.airflow_env()}
    os.environ.update(stack.airflow_env())
    yield stack
    stack.down()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def fresh(bed):
    """A fresh Moodle site and empty WordPress tables, no faults, no sent mail."""
    return bed.reset()


def pytest_sessionfinish(session, exitstatus):
    """A whole, green run (no paths or -k given) rewrites RELIABILITY.md from what the tests recorded."""
    from tests import reliability

    config = session.config
    whole = (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not getattr(config.option, "lf", False)
    )
    if exitstatus == 0 and whole and any(reliability.recorded().values()):
        (reliability.ROOT / "RELIABILITY.md").write_text(reliability.render(reliability.recorded()))
