"""The layers point one way: libraries never import their users, services never import each other, and the
tests and benchmarks share helpers through `testkit` instead of importing each other or editing sys.path."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"edge_node", "coordinator", "trainer"}
# what each top-level package may never import
FORBIDDEN = {
    "mmer_core": SERVICES | {"mmer_demo", "mmer_cli", "testkit", "bench", "tests"},
    "edge_node": (SERVICES - {"edge_node"}) | {"mmer_demo", "mmer_cli", "testkit", "bench", "tests"},
    "coordinator": (SERVICES - {"coordinator"}) | {"mmer_demo", "mmer_cli", "testkit", "bench", "tests"},
    "trainer": (SERVICES - {"trainer"}) | {"mmer_demo", "mmer_cli", "testkit", "bench", "tests"},
    "mmer_demo": {"mmer_cli", "testkit", "bench", "tests"},
    # the client: only the wire contract and the shared library, so an app installs nothing of a service
    "mmer_client": SERVICES | {"mmer_demo", "mmer_cli", "testkit", "bench", "tests"},
    "testkit": {"bench", "tests"},
    "bench": {"tests"},
    "tests": {"bench"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module a Python file imports (absolute imports only)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_the_layers_above_it(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in wrong.items() if v} == {}


SYS_PATH_EDIT = re.compile(r"sys\.path\s*(\[.*\]\s*=|=|\.(insert|append|extend|remove|pop)\b)")


@pytest.mark.parametrize("package", ["tests", "bench", "testkit", "tools"])
def test_nothing_edits_sys_path(package: str) -> None:
    edits = [
        str(path.relative_to(ROOT))
        for path in (ROOT / package).rglob("*.py")
        if SYS_PATH_EDIT.search(path.read_text())
    ]
    assert edits == []


def test_the_services_do_not_know_which_fuser_they_have() -> None:
    """The fuser is chosen once, when the coordinator is assembled; the services only call the interface."""
    for name in ("service.py", "server.py", "http.py", "registry_service.py"):
        text = (ROOT / "coordinator" / name).read_text()
        for word in ("SharedFuser", "LocalFuser", "coordinator.sharing", "shards"):
            assert word not in text, f"coordinator/{name} mentions {word}"
