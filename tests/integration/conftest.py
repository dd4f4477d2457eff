"""Fixtures of the evidence documents' tests: one seeded cohort (the demo's) shared by the whole run."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator
from dataclasses import dataclass
from io import BytesIO

import pytest
from pypdf import PdfReader

from bot.demo import DemoResult, run_demo
from bot.settings import Settings
from storage.db import Database

ORGANISATION = "Acme Formation"


@dataclass
class Seeded:
    result: DemoResult
    url: str

    @property
    def report(self) -> str:
        return next(line for line in self.result.transcript if "Trainer's report" in line)

    def csv_rows(self, name: str) -> list[dict[str, str]]:
        with (self.result.out_dir / name).open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """One demo cycle (12 learners: on time, late, excused, absent, prepared or not, answers, quiz scores)."""
    out = tmp_path_factory.mktemp("seeded")
    result = asyncio.run(run_demo(out, learners=12, seed=7, echo=None, second_week=False))  # one session
    return Seeded(result, f"sqlite+aiosqlite:///{out / 'peerbot-demo.db'}")


@pytest.fixture
async def db(seeded: Seeded) -> AsyncIterator[Database]:
    database = Database(seeded.url)
    yield database
    await database.dispose()


def settings_for(url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DATABASE_URL=url, PEERBOT_TIMEZONE="Europe/Paris", PEERBOT_ORGANISATION=ORGANISATION
    )


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(data)).pages)
