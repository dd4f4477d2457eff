"""The session chart, decoded: its numbers are the database's and `/peer report`'s, its pixels a readable card."""

from __future__ import annotations

import re
from io import BytesIO

from PIL import Image

from bot.documents.charts import DPI, SIZE_INCHES, Trend, chart_data, render, trends_chart
from bot.reports import collect
from storage.db import Database
from tests.integration.conftest import Seeded


async def test_chart_numbers_are_the_reports(seeded: Seeded, db: Database) -> None:
    data = chart_data(await collect(db, [seeded.result.session]))
    feedback = seeded.csv_rows("feedback.csv")
    answered = [r for r in feedback if r["answered"] == "yes"]
    count = int(re.search(r"Feedback: (\d+) answer\(s\)", seeded.report).group(1))  # type: ignore[union-attr]
    assert data.questionnaire == (count, sum(r["delivery"] == "sent" for r in feedback))
    for key, counts in data.likert.items():
        assert counts == [sum(r[key] == str(v) for r in answered) for v in range(1, 6)]
        average = float(re.search(rf"{key} (\d\.\d)", seeded.report).group(1))  # type: ignore[union-attr]
        assert round(sum(v * c for v, c in zip(range(1, 6), counts, strict=True)) / sum(counts), 1) == average
    retention = [r for r in seeded.csv_rows("retention.csv") if r["answered"] == "yes"]
    assert sum(data.scores.values()) == len(retention) == data.quiz[0]
    assert data.scores == {s: sum(int(r["score"]) == s for r in retention) for s in data.scores}
    assert data.max_score == 3


async def test_chart_png_is_a_light_card_with_drawing_on_it(seeded: Seeded, db: Database) -> None:
    data = chart_data(await collect(db, [seeded.result.session]))
    for locale in ("en", "fr"):
        image = Image.open(BytesIO(render(data, locale)))
        assert image.format == "PNG"
        assert image.size == (int(SIZE_INCHES[0] * DPI), int(SIZE_INCHES[1] * DPI))
        rgb = image.convert("RGB")
        assert rgb.getpixel((2, 2)) == (255, 255, 255)  # opaque light card: legible on a dark chat theme too
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None
        drawn = sum(n for n, colour in colours if colour != (255, 255, 255))
        assert drawn > 0.08 * image.size[0] * image.size[1]  # bars, labels and axes, not a blank picture
        dark = sum(n for n, (r, g, b) in colours if r + g + b < 200)
        assert dark > 2000  # dark text on the light card
        blue = sum(n for n, colour in colours if colour == (0x05, 0x71, 0xB0))
        assert blue > 1000  # the "5 = agree" bars are there


def test_cohort_trends_chart_draws_every_session() -> None:
    """Three sessions, one without quiz answers yet: the points that exist are drawn, on the light card."""
    trends = [
        Trend("s1\n4 Mar", 0.8, 4.1, 0.67),
        Trend("s2\n11 Mar", 0.9, 4.4, 0.75),
        Trend("s3\n18 Mar", 0.7, 3.9, None),
    ]
    image = Image.open(BytesIO(trends_chart("Cohort python", trends, "fr")))
    assert image.format == "PNG" and image.size == (900, 600)
    rgb = image.convert("RGB")
    assert rgb.getpixel((2, 2)) == (255, 255, 255)
    colours = rgb.getcolors(maxcolors=1 << 20)
    assert colours is not None
    drawn = sum(n for n, colour in colours if colour != (255, 255, 255))
    assert drawn > 0.03 * image.size[0] * image.size[1]
    assert sum(n for n, colour in colours if colour == (0xCA, 0x00, 0x20)) > 100  # the retention line
