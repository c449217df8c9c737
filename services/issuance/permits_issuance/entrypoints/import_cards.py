"""`./permits import-cards FILE`: the earlier system's cards into the register.

Shows a progress bar (lines, rate, time left), ends with a summary, writes refused lines to
FILE.rejects.jsonl. Exit 0 when the whole file was read (rejects included), 2 when it could not
be (no such file, store or Kafka unreachable, interrupted: run it again to resume).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from permits_common.events.topics import TopicSpec
from permits_common.kafka import EventPublisher, ensure_topics
from permits_common.logs import configure_logging
from permits_common.mongo import mongo_client
from permits_issuance.adapters.earlier_cards_store import EarlierCardsStore
from permits_issuance.adapters.store import IssuanceStore
from permits_issuance.config import IssuanceSettings
from permits_issuance.service.earlier_cards import (
    EVENT_BATCH_BYTES,
    CardImport,
    Summary,
    rejects_path,
)

SOURCE = "/permits/import"
EXIT_READ = 0
EXIT_NOT_READ = 2


async def import_file(
    path: Path, size: int, settings: IssuanceSettings, console: Console
) -> Summary:
    """Connect, import with a progress bar, disconnect."""
    client = mongo_client(settings)
    publisher = EventPublisher(settings, SOURCE, linger_ms=20, max_batch_bytes=EVENT_BATCH_BYTES)
    try:
        await ensure_topics(settings)
        await ensure_topics(
            settings, [TopicSpec(settings.cards_topic, "card number", "Card issues.")]
        )
        await publisher.start()
        issuance = IssuanceStore(client[settings.mongo_database])
        await issuance.ensure_indexes()
        run = CardImport(EarlierCardsStore(issuance), publisher, settings.cards_topic)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("importing", total=size, count="", rate="")
            started = time.monotonic()
            first_line: int | None = None

            def advance(offset: int, summary: Summary) -> None:
                nonlocal first_line
                first_line = first_line or summary.resumed_at
                done = summary.lines - first_line + 1
                rate = done / max(time.monotonic() - started, 1e-3)
                bar.update(
                    task,
                    completed=offset,
                    count=f"line {summary.lines:,}: {summary.imported:,} imported, "
                    f"{summary.already_present:,} present, {summary.rejected:,} rejected",
                    rate=f"{rate:,.0f} lines/s",
                )

            summary = await run.run(path, advance)
            bar.update(task, completed=size)
        return summary
    finally:
        await publisher.stop()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    """Run the import; the exit code says whether the whole file was read."""
    parser = argparse.ArgumentParser(prog="permits import-cards", description=__doc__)
    parser.add_argument("file", type=Path, help="JSON Lines export of the earlier system")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    path: Path = args.file
    if not path.is_file():
        console.print(f"[red]error:[/red] no such file: {path}")
        return EXIT_NOT_READ
    settings = IssuanceSettings()
    configure_logging("WARNING", settings.json_logs)
    try:
        summary = asyncio.run(import_file(path, path.stat().st_size, settings, console))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: run the same command again to resume")
        return EXIT_NOT_READ
    except Exception as exc:
        console.print(f"[red]error:[/red] the import stopped: {type(exc).__name__}: {exc}")
        console.print("run the same command again to resume")
        return EXIT_NOT_READ
    resumed = ""
    if summary.resumed_at > summary.lines:
        resumed = " (this file was imported to the end before)"
    elif summary.resumed_at > 1:
        resumed = f" (resumed at line {summary.resumed_at:,})"
    print(
        f"imported: {summary.imported}, already present: {summary.already_present}, "
        f"rejected: {summary.rejected}{resumed}"
    )
    if summary.rejected:
        print(f"rejected lines: {rejects_path(path)}")
    return EXIT_READ


if __name__ == "__main__":
    sys.exit(main())
