"""The import rules of docs/architecture.md, checked by walking every import (ast) of the checkout.

Data (bcc_common, bcc_contract, devices) <- services (iot_gateway, portal, grafana, mosquitto) <- the
command line (bcc). Simulators and benchmarks are test equipment: no product package imports them.
Topic strings are built only by the contract (bcc_contract/topics.py).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = {"bcc_common", "bcc_contract", "devices"}
SERVICES = {"iot_gateway", "portal", "grafana", "mosquitto"}
EQUIPMENT = {"simulators", "bench", "tests"}
# package -> the packages of ours it may import (anything not listed is forbidden)
ALLOWED: dict[str, set[str]] = {
    "bcc_common": set(),
    "bcc_contract": {"bcc_common"},
    "devices": {"bcc_common", "bcc_contract"},
    "iot_gateway": DATA,
    "portal": DATA,
    "grafana": DATA,
    "mosquitto": {"bcc_common", "bcc_contract"},
    # the command line wires services together; the demo runs the simulators
    "bcc": DATA | SERVICES | {"simulators"},
    "simulators": DATA,
    "bench": DATA | SERVICES | {"bcc", "simulators"},
}
OURS = set(ALLOWED) | {"tests"}
# Route modules of the portal (those that build an APIRouter): each is one area of the site and imports
# no other; what they share lives in portal/web/deps.py or a helper module without routes.
ROUTES = {
    p.stem for p in (ROOT / "portal" / "web").glob("*.py") if "APIRouter(" in p.read_text(encoding="utf-8")
}
# A string that is (part of) an MQTT topic of ours: only bcc_contract may spell one.
TOPIC = re.compile(
    r"^\$share/|^homeassistant/|^bcc/|/(set|availability|response)$|(^|/)bridge/|reports/(events|backlog)"
)


def python_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> where ("file:line")."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in OURS:
        for path in python_files(package):
            for line, module in imports(path):
                top = module.split(".")[0]
                if top in OURS and top != package:
                    out[package][top].append(f"{path.relative_to(ROOT)}:{line}")
    return out


def test_every_package_of_ours_is_in_the_table() -> None:
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert found <= OURS, f"new top-level package(s) {found - OURS}: place them in ALLOWED"


def test_imports_follow_the_layers() -> None:
    problems = [
        f"{package} imports {target} ({', '.join(where[:3])})"
        for package, targets in graph().items()
        if package in ALLOWED
        for target, where in targets.items()
        if target not in ALLOWED[package]
    ]
    assert not problems, "\n".join(problems)


def test_no_package_cycles() -> None:
    edges = {p: set(t) for p, t in graph().items()}

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(p for p in edges if p in reach(p))
    assert not cycles, f"packages on an import cycle: {cycles}"


@pytest.mark.parametrize("package", sorted(DATA | SERVICES | {"bcc"}))
def test_product_packages_never_import_test_equipment(package: str) -> None:
    allowed = {"simulators"} if package == "bcc" else set()
    bad = [
        f"{path.relative_to(ROOT)}:{line} {module}"
        for path in python_files(package)
        for line, module in imports(path)
        if module.split(".")[0] in EQUIPMENT - allowed
    ]
    assert not bad, bad


def test_portal_route_modules_do_not_import_each_other() -> None:
    bad = [
        f"{path.name}:{line} {module}"
        for path in python_files("portal/web")
        if path.stem in ROUTES
        for line, module in imports(path)
        if module.startswith("portal.web.") and module.split(".")[2] in ROUTES
    ]
    assert not bad, bad


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """String literals and f-strings (placeholders as ``X``), docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    inside_fstring = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstring.add(id(value))
                parts.append(value.value if isinstance(value, ast.Constant) else "X")
            yield node.lineno, "".join(str(p) for p in parts)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in inside_fstring
        ):
            yield node.lineno, node.value


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"bcc_contract"}))
def test_only_the_contract_spells_topics(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} {text!r}"
        for path in python_files(package)
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8")))
        if " " not in text and TOPIC.search(text)
    ]
    assert not bad, "topic strings outside bcc_contract/topics.py:\n" + "\n".join(bad)


def test_the_topic_check_can_fail() -> None:
    """The detector itself: a topic typed inline is found, a docstring that mentions one is not."""
    tree = ast.parse('"""bcc/x/set in a docstring"""\nA = f"{base}/lights/set"\nB = "bcc/bridge/state"\n')
    found = [text for _, text in _strings(tree) if TOPIC.search(text)]
    assert found == ["X/lights/set", "bcc/bridge/state"]
