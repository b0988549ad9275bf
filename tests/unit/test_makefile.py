"""`make help` is how a newcomer finds the targets: every target says what it is for."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_help_lists_every_target_with_its_description():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    defined = re.findall(r"^([a-z-]+):", makefile, re.M)
    assert sorted(phony) == sorted(defined)
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = dict(re.findall(r"^  make (\S+)\s+(.+)$", out, re.M))
    assert sorted(listed) == sorted(defined)
    assert all(len(text) > 5 for text in listed.values())
