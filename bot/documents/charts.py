"""Charts (PNG, matplotlib's Agg renderer): per session the Likert answers, response rates and retention scores;
per cohort the trends across its sessions.

One picture with three panels, on an opaque light card with dark text, so it reads the same in a chat's dark
and light themes. The numbers come from `bot.reports.collect`, like the CSV files and `/peer report`;
`chart_data` exposes them so tests compare them with the database before looking at pixels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from io import BytesIO

from babel.numbers import format_decimal
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.i18n import t
from bot.reports import FEEDBACK_KEYS, Evidence, item_name

LIKERT_KEYS = FEEDBACK_KEYS[:-1]  # the default questionnaire's five rated items; "open" is free text
MAX_NAME = 45  # characters of a trainer's own question shown beside its bar
# ColorBrewer RdBu (colour-blind safe), disagree → agree; the neutral middle is grey.
LIKERT_COLOURS = ("#ca0020", "#f4a582", "#bababa", "#92c5de", "#0571b0")
CARD, INK = "#ffffff", "#222222"
SIZE_INCHES, DPI = (9.0, 7.5), 100


@dataclass(frozen=True)
class ChartData:
    title: str
    likert: dict[str, list[int]]  # item → how many answered 1, 2, 3, 4, 5 (Likert items only)
    questionnaire: tuple[int, int]  # answered, delivered
    quiz: tuple[int, int]  # answered, delivered
    scores: dict[int, int]  # score → how many learners
    max_score: int
    items: tuple[dict[str, str], ...] = ()  # the Likert items as asked (`Evidence.questions` rows), in order


def chart_data(evidence: Evidence) -> ChartData:
    """What the chart shows, from the rows of one session: the Likert items of its questionnaire (the
    default's five, or the trainer's own; choice and open items have no 1–5 scale to draw)."""
    answered = [r for r in evidence.feedback if r["answered"] == "yes"]
    session = evidence.attendance[0]["session"] if evidence.attendance else ""
    asked = evidence.items(session)
    rows = (
        tuple(q for q in asked if q["type"] == "likert")
        if asked
        else tuple(
            {"key": k, "type": "likert", "questionnaire": "feedback", "question": k, "question_fr": ""}
            for k in LIKERT_KEYS
        )
    )
    likert = {q["key"]: [sum(r.get(q["key"]) == str(v) for r in answered) for v in range(1, 6)] for q in rows}
    # Rates among the learners the DM reached: an undeliverable DM (closed DMs) is not a missing answer.
    sent = [r for r in evidence.feedback if r["delivery"] == "sent"]
    quiz_sent = [r for r in evidence.retention if r["delivery"] == "sent"]
    scored = [r for r in evidence.retention if r["answered"] == "yes" and r["score"]]
    max_score = max((int(r["max_score"]) for r in scored if r["max_score"]), default=0)
    title = evidence.attendance[0]["title"] if evidence.attendance else ""
    return ChartData(
        title=title,
        likert=likert,
        questionnaire=(len(answered), len(sent)),
        quiz=(len(scored), len(quiz_sent)),
        scores=dict(sorted(Counter(int(r["score"]) for r in scored).items())),
        max_score=max_score,
        items=rows,
    )


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def _likert_panel(axes: Axes, data: ChartData, locale: str) -> None:
    if not data.items:
        axes.set_axis_off()
        axes.text(0.5, 0.5, t(locale, "This questionnaire has no 1–5 rating."), ha="center", color=INK)
        return
    names = [_short(item_name(q, locale)) for q in data.items]
    shares = []
    for q in data.items:
        counts = data.likert[q["key"]]
        total = sum(counts) or 1
        shares.append([100 * c / total for c in counts])
    # Diverging: disagreement (1, 2 and half the neutral 3) to the left of zero, agreement to the right.
    lefts = [-(s[0] + s[1] + s[2] / 2) for s in shares]
    for level in range(5):
        widths = [s[level] for s in shares]
        axes.barh(names, widths, left=lefts, color=LIKERT_COLOURS[level], label=str(level + 1), edgecolor=CARD)
        lefts = [left + w for left, w in zip(lefts, widths, strict=True)]
    axes.axvline(0, color=INK, linewidth=0.8)
    axes.set_xlim(-100, 100)
    axes.invert_yaxis()
    axes.set_xlabel(t(locale, "share of answers (%)"), color=INK)
    axes.set_title(
        t(locale, "Questionnaire: {count} answer(s), 1 = disagree … 5 = agree", count=data.questionnaire[0]),
        color=INK,
        loc="left",
    )
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{abs(x):.0f}"))  # both sides are shares
    axes.legend(ncols=5, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, labelcolor=INK, fontsize=9)


def render(data: ChartData, locale: str) -> bytes:
    """The PNG: Likert items on top, response rates and retention scores side by side below."""
    fig = Figure(figsize=SIZE_INCHES, dpi=DPI, facecolor=CARD, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.3, 1))
    _likert_panel(fig.add_subplot(grid[0, :]), data, locale)

    rates = fig.add_subplot(grid[1, 0])
    kinds = [t(locale, "questionnaire"), t(locale, "retention quiz")]
    pairs = [data.questionnaire, data.quiz]
    percents = [100 * a / s if s else 0 for a, s in pairs]
    bars = rates.bar(kinds, percents, color=LIKERT_COLOURS[4])
    rates.bar_label(bars, labels=[f"{a}/{s}" for a, s in pairs], color=INK)
    rates.set_ylim(0, 110)
    rates.set_ylabel(t(locale, "response rate (%)"), color=INK)
    rates.set_title(t(locale, "Response rate"), color=INK, loc="left")

    scores = fig.add_subplot(grid[1, 1])
    values = list(range(data.max_score + 1))
    counts = [data.scores.get(v, 0) for v in values]
    score_bars = scores.bar([str(v) for v in values], counts, color=LIKERT_COLOURS[3], edgecolor=LIKERT_COLOURS[4])
    scores.bar_label(score_bars, color=INK)
    scores.set_xlabel(t(locale, "score out of {max}", max=data.max_score), color=INK)
    scores.set_ylabel(t(locale, "learners"), color=INK)
    scores.set_title(t(locale, "Retention quiz scores"), color=INK, loc="left")

    for axes in fig.axes:
        axes.set_facecolor(CARD)
        axes.tick_params(colors=INK)
        for spine in axes.spines.values():
            spine.set_color(INK)
    fig.suptitle(data.title, color=INK, fontweight="bold")
    out = BytesIO()
    fig.savefig(out, format="png", facecolor=CARD, metadata={"Software": None})
    return out.getvalue()


def session_chart(evidence: Evidence, locale: str) -> bytes:
    return render(chart_data(evidence), locale)


@dataclass(frozen=True)
class Trend:
    """One session's point on the cohort's trend chart (None: nothing to show yet, e.g. no quiz answered)."""

    label: str
    attendance: float | None  # share present, 0–1
    satisfaction: float | None  # mean rating, 1–5
    retention: float | None  # mean score, 0–1


def trends_chart(title: str, trends: list[Trend], locale: str) -> bytes:
    """The cohort across its sessions: attendance and retention rates (%), and satisfaction (1–5) below."""
    fig = Figure(figsize=(9.0, 6.0), dpi=DPI, facecolor=CARD, layout="constrained")
    FigureCanvasAgg(fig)
    rates, satisfaction = fig.subplots(2, 1, sharex=True, height_ratios=(1.4, 1))
    labels = [trend.label for trend in trends]
    for values, name, colour, marker in (
        ([t_.attendance for t_ in trends], t(locale, "attendance rate"), LIKERT_COLOURS[4], "o"),
        ([t_.retention for t_ in trends], t(locale, "retention score"), LIKERT_COLOURS[0], "s"),
    ):
        points = [(x, 100 * v) for x, v in zip(labels, values, strict=True) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            rates.plot(xs, ys, marker=marker, color=colour, label=name)
            for x, y in points:
                rates.annotate(f"{y:.0f}%", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", color=INK)
    rates.set_ylim(0, 110)
    rates.set_ylabel("%", color=INK)
    rates.legend(loc="lower left", frameon=False, labelcolor=INK)
    rates.set_title(t(locale, "Attendance and retention by session"), color=INK, loc="left")
    points = [(x, v) for x, v in zip(labels, [t_.satisfaction for t_ in trends], strict=True) if v is not None]
    if points:
        xs, ys = zip(*points, strict=True)
        satisfaction.plot(xs, ys, marker="D", color=LIKERT_COLOURS[3], markeredgecolor=LIKERT_COLOURS[4])
        for x, y in points:
            value = format_decimal(round(y, 1), format="0.0", locale=locale)
            satisfaction.annotate(value, (x, y), textcoords="offset points", xytext=(0, 6), ha="center", color=INK)
    satisfaction.set_ylim(1, 5.4)
    satisfaction.set_ylabel(t(locale, "satisfaction (1–5)"), color=INK)
    satisfaction.set_title(t(locale, "Satisfaction by session"), color=INK, loc="left")
    satisfaction.set_xticks(range(len(labels)), labels)
    for axes in fig.axes:
        axes.set_facecolor(CARD)
        axes.tick_params(colors=INK)
        for spine in axes.spines.values():
            spine.set_color(INK)
    fig.suptitle(title, color=INK, fontweight="bold")
    out = BytesIO()
    fig.savefig(out, format="png", facecolor=CARD, metadata={"Software": None})
    return out.getvalue()
