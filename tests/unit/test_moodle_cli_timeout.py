"""The SSH task's wall-clock limit holds even while the task floods its output (a fake channel:
the real SSH runs are in tests/cycle)."""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager

import pytest

from include.parent_provisioning import moodle_cli
from include.parent_provisioning.settings import parse


class FloodingChannel:
    """A task that never stops printing and never exits."""

    def set_combine_stderr(self, _):
        pass

    def exec_command(self, _):
        pass

    def recv_ready(self):
        return True

    def recv(self, n):
        return b"Revived user x\n" * 10

    def exit_status_ready(self):
        return False

    def close(self):
        pass


class Hook:
    @contextmanager
    def get_conn(self):
        class Client:
            def get_transport(self):
                class Transport:
                    def open_session(self):
                        return FloodingChannel()

                return Transport()

        yield Client()


def test_a_task_flooding_its_output_is_stopped_at_its_time_limit():
    s = dataclasses.replace(parse({"moodle_dir": "/m"}), moodle_task_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(moodle_cli.MoodleTaskError, match="ran longer than moodle_task_timeout_s") as raised:
        moodle_cli.run_task(Hook(), s, moodle_cli.SYNC_USERS)
    assert raised.value.retryable and time.monotonic() - started < 2
