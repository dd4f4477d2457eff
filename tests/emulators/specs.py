"""Where the emulators find the official API specs: the copies vendored in `tests/specs/`.

They are copied verbatim from the platforms' public repositories (see tests/specs/SOURCES.md, which records
their SHA-256), so the suite is self-contained on a clean clone. `PEERBOT_SPECS_DIR` overrides the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

SPECS_DIR = Path(os.environ.get("PEERBOT_SPECS_DIR") or Path(__file__).resolve().parents[1] / "specs")
