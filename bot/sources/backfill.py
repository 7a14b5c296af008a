"""CSV backfill: `leadbot leads import FILE.csv --source NAME [--mapping ENTRY] [--dry-run]`."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError
from rich.progress import Progress
from rq import Queue

from bot.runtime.services import Services
from bot.sources.ingest import Submission, ingest, validate
from bot.sources.mapping import LEAD_FIELDS, Entry, apply
from bot.store.leads import field_errors

PROGRESS_FROM_ROWS = 200  # smaller files finish before a bar would help
NO_CONSENT = "no recorded consent for a call or text: not imported, since leadbot would contact it at once"


@dataclass
class Report:
    """What an import did."""

    imported: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def backfill_queue(svc: Services) -> Queue:
    """The low-priority queue: workers take it after fresh leads, and its sends give way to theirs."""
    return svc.low_queue


def row_submission(source: str, entry: Entry | None, row: dict[str, str]) -> Submission:
    """A CSV row as a Submission: by the entry's mapping, or by columns named like the intake fields."""
    clean = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    if entry is not None:
        data, ids = apply(entry, clean)
    else:
        data = {k: v for k, v in clean.items() if k in LEAD_FIELDS and k != "source" and v != ""}
        ids = {"id": clean.get("external_id") or clean.get("id") or None}
    return Submission(source=source, data=data, external_id=ids.get("id"), campaign_id=ids.get("campaign"),
                      adgroup_id=ids.get("adgroup"), ad_id=ids.get("ad"), form_id=ids.get("form"),
                      fields=clean)


def import_csv(svc: Services, path: Path, source: str, entry: Entry | None, dry_run: bool,
               out: TextIO) -> Report:
    """Validate every row, print each bad one with its line, import (and pace the dials of) the rest."""
    report = Report()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        total = sum(1 for _ in csv.DictReader(fh))
    queue = backfill_queue(svc)
    with path.open(newline="", encoding="utf-8-sig") as fh, \
            Progress(disable=total < PROGRESS_FROM_ROWS, transient=True) as progress:
        task = progress.add_task(f"importing {path.name}", total=total)
        reader = csv.DictReader(fh)
        for row in reader:
            line = reader.line_num
            progress.advance(task)
            sub = row_submission(source, entry, row)
            try:
                lead_in = validate(svc, sub)
            except ValidationError as exc:
                errors = field_errors(exc)
                if "consent" in errors and len(errors) == 1:
                    errors = {"consent": NO_CONSENT}
                report.errors.append(f"{path}:{line}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
                continue
            if dry_run:
                report.imported += 1
                continue
            result = ingest(svc, sub, lead_in, queue=queue)
            if result.created:
                report.imported += 1
            else:
                report.duplicates += 1
    for error in report.errors:
        print(error, file=out)
    what = "would import" if dry_run else "imported"
    print(f"{what} {report.imported} lead(s), {report.duplicates} already known, {len(report.errors)} "
          "row(s) with errors" + (" (dry run: nothing saved)" if dry_run else ""), file=out)
    return report
