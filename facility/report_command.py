"""`facility report`: a site's monthly quality report (§9.1) as a PDF, printed by a headless chromium."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from console.i18n import LANGUAGES
from console.pages.quality import printable
from ground.settings import Settings
from quality.monthly import MONTH, monthly_report
from quality.records import QualityRecords
from records.db import Database, database_url, migrate

CHROMIUM = os.environ.get("FACILITY_CHROMIUM", "/usr/bin/chromium")
# A closed network: without these chromium reaches for Google's hosts at start. No sandbox: it
# prints only the report this command wrote, and a container's root cannot start chromium's sandbox.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
]
PRINT_TIMEOUT_S = 120


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `report` subcommand."""
    report = sub.add_parser("report", help="a site's monthly service quality report (§9.1) as PDF or HTML")
    report.add_argument("--site", required=True)
    report.add_argument("--month", required=True, help="YYYY-MM, in FACILITY_TIMEZONE")
    report.add_argument("--pdf", type=Path, help="write the PDF here")
    report.add_argument("--html", type=Path, help="write the printable HTML here")
    report.add_argument("--language", choices=LANGUAGES, default="zh-Hant")
    report.add_argument("--chromium", default=CHROMIUM, help=f"the browser that prints (default {CHROMIUM})")


def print_pdf(html: str, pdf: Path, chromium: str) -> None:
    """Print an HTML document to a PDF file with a headless chromium; RuntimeError saying why not."""
    with tempfile.TemporaryDirectory(prefix="facility-report-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(html, encoding="utf-8")
        command = [
            chromium,
            *CHROMIUM_ARGS,
            f"--user-data-dir={Path(folder) / 'profile'}",
            f"--print-to-pdf={pdf.resolve()}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PRINT_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{chromium}: {exc}") from None
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"{chromium} did not print the report: {done.stderr.strip()[-500:]}")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Render the report; 2 for a bad month or nothing asked, 1 when the PDF could not be printed."""
    if not MONTH.fullmatch(args.month):
        print(f"facility report: --month {args.month!r}: give it as YYYY-MM", file=sys.stderr)
        return 2
    if args.pdf is None and args.html is None:
        print("facility report: give --pdf FILE or --html FILE", file=sys.stderr)
        return 2
    zone = ZoneInfo(settings.timezone)
    db = Database(database_url(settings.database_url, settings.data_dir))
    try:
        migrate(db.engine)
        report = monthly_report(QualityRecords(db, zone), args.site, args.month)
    finally:
        db.close()
    html = printable(report, args.language, zone)
    if args.html is not None:
        args.html.write_text(html, encoding="utf-8")
    if args.pdf is not None:
        try:
            print_pdf(html, args.pdf, args.chromium)
        except RuntimeError as exc:
            print(f"facility report: {exc}", file=sys.stderr)
            return 1
    written = ", ".join(str(p) for p in (args.pdf, args.html) if p is not None)
    tickets = report.figures["tickets"]["total"]
    print(f"{args.site} {args.month}: {tickets} tickets, {len(report.overdue)} overdue now → {written}")
    return 0
