"""The PDF page every document shares: A4, a Unicode font, a footer with page numbers and the fingerprint."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos

# fpdf2's built-in fonts are Latin-1 only; learners' names are not. Matplotlib, a dependency already, ships
# DejaVu Sans (a free Unicode font), so the PDFs embed it instead of a font file of our own.
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT = "DejaVu"


class EvidencePDF(FPDF):
    """A4 portrait with DejaVu Sans; `footer_text` (the evidence fingerprint) is printed on every page.

    The caller adds the pages (`new_section`), so a document of several sheets changes the footer between them."""

    def __init__(self, title: str, author: str, created: datetime, footer_text: str = "") -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_title(title)
        self.set_author(author)
        self.set_creator("peerbot")
        self.set_creation_date(created)  # the session's date, not "now": the same evidence gives the same file
        self.footers: list[tuple[int, str]] = [(1, footer_text)]  # (from page, text)
        self.set_auto_page_break(auto=True, margin=18)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT, size=7)
        text = next((t for first, t in reversed(self.footers) if first <= self.page_no()), "")
        if text:
            self.cell(0, 4, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(0, 4, f"{self.page_no()}/{{nb}}", align="R")

    def new_section(self, footer_text: str) -> None:
        """A new page whose footer (and that of the pages that follow) carries `footer_text`."""
        self.add_page()
        self.footers.append((self.page_no(), footer_text))

    def heading(self, text: str, size: int = 14) -> None:
        self.set_font(FONT, "B", size)
        self.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def field(self, name: str, value: str) -> None:
        """One "name: value" line of a document's header block."""
        self.set_font(FONT, "B", 9)
        self.cell(42, 5, name)
        self.set_font(FONT, size=9)
        self.multi_cell(0, 5, value or "—", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def paragraph(self, text: str, size: int = 9) -> None:
        self.set_font(FONT, size=size)
        self.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def to_bytes(self) -> bytes:
        return bytes(self.output())
