"""The core never imports a platform or web library: adapters depend on it, not the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

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
