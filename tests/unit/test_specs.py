"""The vendored API specs are the verbatim copies SOURCES.md describes."""

from __future__ import annotations

import hashlib
import re

from tests.emulators.specs import SPECS_DIR


def test_vendored_specs_match_their_recorded_checksums() -> None:
    sources = (SPECS_DIR / "SOURCES.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"^- (\S+\.json)\s+([0-9a-f]{64})$", sources, flags=re.MULTILINE))
    assert set(recorded) == {"slack_web_openapi_v2.json", "discord_openapi.json"}
    for name, digest in recorded.items():
        assert hashlib.sha256((SPECS_DIR / name).read_bytes()).hexdigest() == digest, name
