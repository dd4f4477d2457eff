"""The core never imports a platform or web library: adapters depend on it, not the reverse."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("slack_bolt", "slack_sdk", "discord", "aiohttp", "adapters")
ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_no_platform_library() -> None:
    offenders = {}
    allowed = {ROOT / "bot" / "app.py", ROOT / "bot" / "demo.py", ROOT / "bot" / "cli.py"}  # composition roots
    for path in (ROOT / "bot").rglob("*.py"):
        if path in allowed:
            continue
        bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_scheduler_and_storage_stay_below_the_adapters() -> None:
    for package in ("scheduler", "storage"):
        for path in (ROOT / package).rglob("*.py"):
            assert not {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}, path


# ---------------------------------------------------------------------------------------------- the core's shape

CORE = ROOT / "bot" / "core"


def core_graph() -> dict[str, set[str]]:
    """Which `bot.core` module imports which (the package `__init__` only re-exports, so it is left out)."""
    modules = {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        tree = ast.parse((CORE / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "bot.core":
                graph[module] |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot.core."):
                graph[module].add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                graph[module] |= {a.name.split(".")[2] for a in node.names if a.name.startswith("bot.core.")}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (empty when there is none), by depth-first search."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return [*path[path.index(child) :], child]
            if child not in state and (found := visit(child)):
                return found
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []


def test_core_services_do_not_import_each_other_in_a_circle() -> None:
    graph = core_graph()
    assert {"facade", "rules", "queries", "context", "timeline", "groups"} <= set(graph)
    assert cycle(graph) == []


def test_rules_are_pure_and_services_never_reach_the_facade() -> None:
    graph = core_graph()
    assert graph["rules"] == set(), "rules.py is pure: it imports no other part of the core"
    allowed = {"__future__", "collections.abc", "dataclasses", "datetime", "enum", "typing"}  # the standard library
    assert not (imported_modules(CORE / "rules.py") - allowed)
    assert [m for m, deps in graph.items() if "facade" in deps] == []


ACTION_PREFIX = re.compile(r"^(prep|checkin|survey|quiz|takeaways|alerts):")


def action_id_literals(source: str) -> list[int]:
    """Lines of `source` where a string or f-string starts like one of our action ids."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ACTION_PREFIX.match(node.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and ACTION_PREFIX.match(first.value):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_action_id_scanner_sees_strings_and_f_strings() -> None:
    assert action_id_literals('x = f"checkin:in:{short}"\ny = "quiz:open:3"\nz = "prepare: this"\n') == [1, 2]


def test_only_bot_actions_builds_action_ids() -> None:
    offenders: dict[str, list[int]] = {}
    for package in ("bot", "adapters", "scheduler", "storage", "benchmarks"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "bot" / "actions.py":
                continue
            found = action_id_literals(path.read_text(encoding="utf-8"))
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


@pytest.mark.parametrize(
    "module",
    [
        "adapters.slack.runner",
        "adapters.discord.runner",
        "adapters.local.platform",
        "bot.metrics",
        "bot.app",
        "bot.cli",
    ],
)
def test_each_entry_module_imports_on_its_own(module: str) -> None:
    """A benchmark or a script may import an adapter first: no import cycle may depend on what came before."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
