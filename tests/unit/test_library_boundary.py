"""The library is plain Python: Airflow is imported only where the project meets it, so that every
decision can be read and tested without a scheduler (and `make unit` needs no Airflow at all)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "include" / "parent_provisioning"
MEETS_AIRFLOW = {"airflow_adapter.py", "ui/security.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_airflow_is_imported_only_by_the_adapter_and_the_ui_security_module():
    importers = {
        path.relative_to(LIBRARY).as_posix()
        for path in LIBRARY.rglob("*.py")
        if any(name == "airflow" or name.startswith("airflow.") for name in _imports(path))
    }
    assert importers == MEETS_AIRFLOW


def test_the_decisions_load_without_airflow():
    modules = ["cycle", "plan", "outcomes", "matching", "user_sync", "unlink", "adopt", "management", "summary"]
    code = "import sys\n" + "".join(f"import include.parent_provisioning.{m}\n" for m in modules)
    code += "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
