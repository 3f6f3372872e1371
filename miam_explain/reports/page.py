"""What a report shows: a :class:`ReportPage` of findings and sections, and its one self-contained HTML file.

A page is what a report's ``render_*`` function returns; :func:`page_html` turns it into HTML
with the figures embedded as base64 PNG (and closed).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["ReportPage", "Section", "page_html"]

_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 980px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.summary { background: #f4f7fb; border-left: 4px solid #3b6ea5; padding: 0.6em 1em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; } th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
.meta { color: #666; font-size: 0.85em; }
"""


@dataclass
class Section:
    """One titled part of a report.

    Attributes:
        title: Heading.
        paragraphs: Plain-text paragraphs (escaped).
        figures: Matplotlib figures, embedded as PNG (and closed).
        tables: Tables (after the figures), numbers with 4 decimals.
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)


@dataclass
class ReportPage:
    """A rendered report: what the HTML page shows.

    Attributes:
        title: Page title.
        findings: Sentences of the findings, shown first (and stored in ``summary.json``).
        sections: The parts of the report, in order.
        meta: Provenance shown at the bottom (model, data, split, seed, version …).
    """

    title: str
    findings: list[str]
    sections: list[Section]
    meta: dict

    @property
    def figures(self) -> list:
        """Every figure of the page, in order."""
        return [figure for section in self.sections for figure in section.figures]

    def close(self) -> None:
        """Close every figure (after a failed write; :func:`page_html` closes them as it embeds them)."""
        import matplotlib.pyplot as plt

        for figure in self.figures:
            plt.close(figure)


def _figure_png(figure, dpi: int = 110) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def page_html(page: ReportPage, *, figure_dir: Path | None = None) -> str:
    """The page as one self-contained HTML document; figures are also saved as PNG files in ``figure_dir`` when given.

    Args:
        page: The rendered report.
        figure_dir: Folder for PNG copies of the figures (``figure_1.png`` …).
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(page.title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(page.title)}</h1>"]
    parts.append("<div class='summary'>" + "".join(f"<p>{html.escape(s)}</p>" for s in page.findings) + "</div>")
    n_figure = 0
    for section in page.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        for figure in section.figures:
            n_figure += 1
            png = _figure_png(figure)
            if figure_dir is not None:
                (figure_dir / f"figure_{n_figure}.png").write_bytes(png)
            parts.append(f"<img alt='figure {n_figure}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
        for table in section.tables:
            parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, na_rep="–"))
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in page.meta.items())
    parts.append(f"<h2>Provenance</h2><table class='meta'>{rows}</table></body></html>")
    return "\n".join(parts)
