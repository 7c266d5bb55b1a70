"""`sveta audit`: the listings whose photos contradict what they state, as a table, JSON or an HTML report."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from sveta.cli._common import catalog, console, print_json, settings

if TYPE_CHECKING:
    from sveta.engines.audit import AuditReport, Finding

THUMB_PX = 96


def audit(
    name: str = typer.Option("catalog", "--name", help="The trained model (see sveta train)."),
    limit: int = typer.Option(20, "--limit", min=0, help="Findings shown (and put in --json / --html); 0: all."),
    html_path: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="End with one JSON line: n_products, n_findings, findings."),
) -> None:
    """Listings whose category / colour / gender / occasion the photo model confidently contradicts."""
    from sveta.cli.learn import staged_progress
    from sveta.engines.audit import run_audit

    with staged_progress("features") as report_progress:
        report = run_audit(catalog(), settings(), name, on_progress=report_progress)
    shown = report.findings[: limit or None]
    table = Table("product", "attribute", "stated (origin: evidence)", "p", "photo says", "conf.", "title")
    for f in shown:
        stated = f"{escape(f.stated)} [dim]({escape(f.origin)}: {escape(f.evidence)})[/]"
        table.add_row(
            str(f.product_id), f.attribute, stated, f"{f.stated_probability:.3f}", escape(f.photo_value),
            f"{f.confidence:.3f}", escape(f.title[:48]),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"{len(report.findings)} findings in {report.n_products} products "
        f"(photo >= {settings().audit_min_confidence:.2f} sure; {report.model}; {report.seconds:.1f} s)"
    )
    if html_path is not None:
        html_path.write_text(audit_html(report, shown), encoding="utf-8")
        console.print(f"report: {html_path}")
    if as_json:
        print_json(report.as_dict(limit or None))


def audit_html(report: AuditReport, findings: list[Finding]) -> str:
    """One self-contained page: each flagged product's thumbnail (inline JPEG), both values, both confidences."""
    rows = "\n".join(_html_row(f) for f in findings)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sveta audit</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: left; }}
img {{ width: {THUMB_PX}px; height: {THUMB_PX}px; object-fit: contain; background: #f4f4f4; }}
.stated {{ color: #b00020; }} .photo {{ color: #0a6b2e; }} .dim {{ color: #777; font-size: 12px; }}
</style></head><body>
<h1>Listing audit</h1>
<p>{report.n_products} products audited with {html.escape(report.model)}: {len(report.findings)} listings where the
photo model confidently disagrees with what is stated; {len(findings)} shown, most certain first.</p>
<table><tr><th>photo</th><th>product</th><th>attribute</th><th>stated</th><th>photo says</th><th>evidence</th></tr>
{rows}
</table></body></html>
"""


def _html_row(f: Finding) -> str:
    return (
        f"<tr><td>{_thumbnail(Path(f.photo))}</td>"
        f"<td>{f.product_id}<br><span class=dim>{html.escape(f.title)}</span></td>"
        f"<td>{html.escape(f.attribute)}</td>"
        f"<td class=stated>{html.escape(f.stated)}<br><span class=dim>p = {f.stated_probability:.3f}</span></td>"
        f"<td class=photo>{html.escape(f.photo_value)}<br><span class=dim>p = {f.confidence:.3f}</span></td>"
        f"<td>{html.escape(f.origin)}: {html.escape(f.evidence)}"
        f"{'<br><span class=dim>the title agrees with the photo</span>' if f.title_agrees_with == 'photo' else ''}"
        "</td></tr>"
    )


def _thumbnail(path: Path) -> str:
    """A ~96 px JPEG as a data: URI, so the report is one file; a photo that is gone shows as a dash."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        image.thumbnail((THUMB_PX, THUMB_PX))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
    except Exception:  # Pillow raises many types; the report must still be written
        return "&ndash;"
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/jpeg;base64,{data}">'
