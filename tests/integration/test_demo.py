"""`peerbot demo`: the transcript and the evidence files agree with each other and with the seed."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bot.demo import run_demo


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def test_demo_evidence_matches_its_story(tmp_path: Path) -> None:
    result = await run_demo(tmp_path / "out", learners=12, seed=7, echo=None)
    attendance = rows(tmp_path / "out" / "attendance.csv")
    feedback = rows(tmp_path / "out" / "feedback.csv")
    retention = rows(tmp_path / "out" / "retention.csv")
    assert len(attendance) == len(feedback) == len(retention) == 12  # one row per learner per session
    statuses = sorted(r["status"] for r in attendance)
    assert statuses == ["absent", "excused", "late"] + ["on_time"] * 9
    excused = next(r for r in attendance if r["status"] == "excused")
    assert excused["absence_reason"] == "Medical appointment" and excused["group"] == ""
    present = [r for r in attendance if r["status"] in {"on_time", "late"}]
    assert all(r["group"] and r["checked_in_at"] for r in present)
    assert {r["method"] for r in present} == {"button", "reaction", "command"}

    transcript = "\n".join(result.transcript)
    prepared = int(re.search(r"(\d+)/12 learners mark the preparation done", transcript).group(1))  # type: ignore[union-attr]
    assert sum(r["prepared"] == "yes" for r in attendance) == prepared
    first_wave = int(re.search(r"(\d+) learners answer the questionnaire right away", transcript).group(1))  # type: ignore[union-attr]
    answered = [r for r in feedback if r["answered"] == "yes"]
    assert len(answered) == first_wave + 1  # one more after the 24 h reminder
    assert all(
        1 <= int(r[k]) <= 5 for r in answered for k in ("clarity", "interactions", "progress", "safety", "focus")
    )
    assert sum(r["delivery"] == "undeliverable" for r in feedback) == 1
    scores = re.search(r"scores: ([\d, ]+) \(out of 3\)", transcript).group(1).split(", ")  # type: ignore[union-attr]
    quiz = [r for r in retention if r["answered"] == "yes"]
    assert sorted(r["score"] for r in quiz) == sorted(scores)
    assert all(r["max_score"] == "3" for r in quiz)
    assert "A second submission is refused politely" in transcript


async def test_demo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = await run_demo(tmp_path / "a", seed=3, echo=None)
    second = await run_demo(tmp_path / "b", seed=3, echo=None)
    other = await run_demo(tmp_path / "c", seed=4, echo=None)
    for name in ("attendance.csv", "feedback.csv", "retention.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    pack_a, pack_b = (zipfile.ZipFile(tmp_path / d / "audit-pack.zip") for d in "ab")
    assert pack_a.namelist() == pack_b.namelist()
    assert pack_a.read("index.html") == pack_b.read("index.html")  # same seed, same clock: the same index
    strip = [line.replace(str(tmp_path / "a"), "") for line in first.transcript]
    assert strip == [line.replace(str(tmp_path / "b"), "") for line in second.transcript]
    assert (tmp_path / "a" / "attendance.csv").read_text() != (
        tmp_path / "c" / "attendance.csv"
    ).read_text() or first.transcript != other.transcript


def test_demo_command_line(tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", str(out), "--learners", "8"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "groups formed" in result.stdout or "group(s) formed" in result.stdout
    assert str(out.resolve()) in result.stdout
    assert len(rows(out / "attendance.csv")) == 8
    for name in ("audit-pack.zip", "chart.png"):  # written, and the transcript says where
        assert (out / name).stat().st_size > 0 and str((out / name).resolve()) in result.stdout
    assert {"index.html", "index.pdf"} <= set(zipfile.ZipFile(out / "audit-pack.zip").namelist())


async def test_demo_in_french_records_the_same_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    english = await run_demo(tmp_path / "en", seed=5, echo=None)
    monkeypatch.setenv("PEERBOT_LOCALE", "fr")
    french = await run_demo(tmp_path / "fr", seed=5, echo=None)
    for name in ("attendance.csv", "feedback.csv", "retention.csv"):
        assert (tmp_path / "en" / name).read_text() == (tmp_path / "fr" / name).read_text()
    assert any("Vous avez déjà répondu" in line for line in french.transcript)
    reminders = [line for line in french.transcript if "reminder(s) sent" in line]
    assert reminders == [line for line in english.transcript if "reminder(s) sent" in line]
