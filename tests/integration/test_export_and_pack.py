"""`peerbot export` and `peerbot audit-pack` from the shell, on the seeded cohort: every file is read back and its
numbers are the database's, the demo's CSV files' and `/peer report`'s."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from statistics import mean

from openpyxl import load_workbook
from PIL import Image

from bot.documents.verify import check
from storage.db import Database
from tests.integration.conftest import ORGANISATION, Seeded, pdf_text, settings_for


def peerbot(seeded: Seeded, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": seeded.url,
        "PEERBOT_TIMEZONE": "Europe/Paris",
        "PEERBOT_ORGANISATION": ORGANISATION,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


class TextOf(HTMLParser):
    """The visible text of an HTML page and the targets of its links."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if tag == "a" and name == "href" and value]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_export_csv_xlsx_and_pdf_of_a_cohort(seeded: Seeded, tmp_path: Path) -> None:
    short = seeded.result.session
    result = peerbot(seeded, tmp_path, "export", "python", "csv", "--out", str(tmp_path / "csv"))
    assert result.returncode == 0, result.stderr
    for name in ("attendance.csv", "feedback.csv", "retention.csv"):
        assert (tmp_path / "csv" / name).read_text() == (seeded.result.out_dir / name).read_text()
        assert str((tmp_path / "csv" / name).resolve()) in result.stdout

    result = peerbot(seeded, tmp_path, "export", "python", "xlsx", "--out", str(tmp_path / "cohort.xlsx"))
    assert result.returncode == 0, result.stderr
    workbook = load_workbook(tmp_path / "cohort.xlsx")
    assert workbook.sheetnames == [f"{short} attendance", "feedback", "retention"]
    feedback = [list(row) for row in workbook["feedback"].iter_rows(values_only=True)]
    expected = list(csv.reader(io.StringIO((seeded.result.out_dir / "feedback.csv").read_text())))
    assert [[cell or "" for cell in row] for row in feedback] == expected

    result = peerbot(seeded, tmp_path, "export", short, "pdf", "--out", str(tmp_path / "s.pdf"), "--locale", "fr")
    assert result.returncode == 0, result.stderr
    text = pdf_text((tmp_path / "s.pdf").read_bytes())
    assert "Feuille d'émargement" in text and ORGANISATION in text and "Testing with pytest" in text

    refused = peerbot(seeded, tmp_path, "export", "python", "docx")
    assert refused.returncode == 2 and "csv, xlsx, pdf" in refused.stderr
    missing = peerbot(seeded, tmp_path, "export", "no-such-cohort", "csv")
    assert missing.returncode == 2 and "no-such-cohort" in missing.stderr


async def test_audit_pack_maps_the_indicators_to_evidence_with_the_reports_numbers(
    seeded: Seeded, db: Database, tmp_path: Path
) -> None:
    out = tmp_path / "pack.zip"
    result = peerbot(seeded, tmp_path, "audit-pack", "python", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out.resolve()) in result.stdout
    short = seeded.result.session
    archive = zipfile.ZipFile(out)
    names = set(archive.namelist())
    learners = {r["learner_id"] for r in seeded.csv_rows("attendance.csv")}
    assert names == {
        *(f"learners/{learner}/{kind}.pdf" for learner in learners for kind in ("learner-file", "certificate")),
        "index.html",
        "index.pdf",
        "evidence.xlsx",
        "csv/attendance.csv",
        "csv/feedback.csv",
        "csv/retention.csv",
        f"sessions/{short}/attendance-sheet.pdf",
        f"sessions/{short}/attendance-sheet.xlsx",
        f"sessions/{short}/chart.png",
        "cohort-trends.png",
        "notes.csv",
    }
    assert archive.read("notes.csv").decode().splitlines() == ["session,title,starts_at,written_at,author,note"]
    for name in ("attendance.csv", "feedback.csv", "retention.csv"):
        assert archive.read(f"csv/{name}") == (seeded.result.out_dir / name).read_bytes()

    page = TextOf()
    page.feed(archive.read("index.html").decode())
    html = " ".join(" ".join(page.text).split())
    assert set(page.links) <= names  # every link of the index opens a file of the pack
    index_pdf = " ".join(pdf_text(archive.read("index.pdf")).split())

    attendance = seeded.csv_rows("attendance.csv")
    feedback = [r for r in seeded.csv_rows("feedback.csv") if r["answered"] == "yes"]
    present = sum(r["status"] in {"on_time", "late"} for r in attendance)
    report_present = re.search(r"Attendance: (\d+)/(\d+) present", seeded.report)
    assert report_present is not None and int(report_present.group(1)) == present
    ratings = [int(r[k]) for r in feedback for k in ("clarity", "interactions", "progress", "safety", "focus")]
    percent = re.search(r"mean score (\d+)%", seeded.report)
    assert percent is not None
    [verdict] = await check(db, [short])
    for text in (html, index_pdf):
        for number in (2, 11, 12, 30, 32):
            assert f"{number}. " in text
        assert f"Attendance {present}/{len(attendance)} over 1 session(s)" in text
        assert f"{round(100 * present / len(attendance))}%" in text
        assert f"{mean(ratings):.1f} ({len(feedback)}/" in text
        assert f"{percent.group(1)}% (" in text
        assert "Knowledge tests are not evidence for this indicator" in text  # 30: the questionnaire only
        assert "not yet recorded" in text  # 32: no /peer note in the seeded cohort
        assert f"{short}: {verdict.verdict.head} — intact" in text
        assert ORGANISATION in text

    sheet = pdf_text(archive.read(f"sessions/{short}/attendance-sheet.pdf")).replace("\n", "")
    assert verdict.verdict.head in sheet
    chart = Image.open(BytesIO(archive.read(f"sessions/{short}/chart.png")))
    assert chart.format == "PNG" and chart.size[0] > 500
    workbook = load_workbook(BytesIO(archive.read("evidence.xlsx")))
    assert f"{short} attendance" in workbook.sheetnames
    trends = Image.open(BytesIO(archive.read("cohort-trends.png")))
    assert trends.format == "PNG" and trends.size == (900, 600)


async def test_cohort_trend_points_are_the_reports_figures(seeded: Seeded, db: Database) -> None:
    from bot.documents.pack import cohort_trends, session_figures

    short = seeded.result.session
    [trend] = cohort_trends([await session_figures(db, settings_for(seeded.url), short, True)], "en")
    attendance = seeded.csv_rows("attendance.csv")
    feedback = [r for r in seeded.csv_rows("feedback.csv") if r["answered"] == "yes"]
    ratings = [int(r[k]) for r in feedback for k in ("clarity", "interactions", "progress", "safety", "focus")]
    percent = re.search(r"mean score (\d+)%", seeded.report)
    assert percent is not None and trend.retention is not None
    assert trend.label == f"{short}\n4 Mar"
    assert trend.attendance == sum(r["status"] in {"on_time", "late"} for r in attendance) / len(attendance)
    assert trend.satisfaction == mean(ratings)
    assert f"{trend.retention * 100:.0f}" == percent.group(1)


def test_audit_pack_in_french(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "pack-fr.zip"
    result = peerbot(seeded, tmp_path, "audit-pack", "python", "--out", str(out), "--locale", "fr")
    assert result.returncode == 0, result.stderr
    archive = zipfile.ZipFile(out)
    html = archive.read("index.html").decode()
    assert '<html lang="fr">' in html and "Indicateurs Qualiopi et leurs preuves" in html
    assert "pas encore enregistrées" in " ".join(pdf_text(archive.read("index.pdf")).split())
    certificate = next(n for n in archive.namelist() if n.endswith("certificate.pdf"))
    text = " ".join(pdf_text(archive.read(certificate)).split())
    assert "Certificat de réalisation" in text and "« python »" in text


def test_learner_files_and_certificates_in_the_pack(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "pack.zip"
    assert peerbot(seeded, tmp_path, "audit-pack", "python", "--out", str(out)).returncode == 0
    archive = zipfile.ZipFile(out)
    retention = {r["learner_id"]: r for r in seeded.csv_rows("retention.csv")}
    feedback = {r["learner_id"]: r for r in seeded.csv_rows("feedback.csv")}
    for row in seeded.csv_rows("attendance.csv"):
        file = " ".join(pdf_text(archive.read(f"learners/{row['learner_id']}/learner-file.pdf")).split())
        certificate = " ".join(pdf_text(archive.read(f"learners/{row['learner_id']}/certificate.pdf")).split())
        assert f"Learner file — {row['learner']}" in file
        assert "Write fixtures; parametrize tests; read a failure report" in file
        present = row["status"] in {"on_time", "late"}
        assert f"{int(present)} of 1 session(s), {'1 h 30 min' if present else '0 h 00 min'}" in file
        words = {"on_time": "on time", "late": "late", "excused": "excused", "absent": "absent"}
        assert words[row["status"]] in file
        if row["absence_reason"]:
            assert f"({row['absence_reason']})" in file
        quiz = retention[row["learner_id"]]
        row_text = file.split("Retention score", 1)[1]  # the session's line of the table
        if quiz["answered"] == "yes":
            assert f" {quiz['score']}/{quiz['max_score']}" in row_text
        else:
            assert " — " in row_text + " "
        assert ("yes" in row_text) == (feedback[row["learner_id"]]["answered"] == "yes")
        assert f"{ORGANISATION} certifies that {row['learner']} attended {int(present)} of the 1" in certificate
        assert "Camille (trainer)" in certificate
