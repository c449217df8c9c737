"""The topic catalog of contract.md: names are binding and never change within a version.

`PERMITS_TOPIC_NAMESPACE` (empty unless set) is put in front of every name. Production leaves it
empty; a second system started by the tests on the same broker sets it, so neither system
consumes the other's events (each also has its own databases and consumer groups).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from permits_common.domain.agencies import Agency

NAMESPACE = os.environ.get("PERMITS_TOPIC_NAMESPACE", "")
if not re.fullmatch(r"([a-z0-9][a-z0-9-]{0,30}\.)?", NAMESPACE):
    raise ValueError(
        "PERMITS_TOPIC_NAMESPACE must be empty or lowercase letters, digits and '-' "
        f"ending in '.', e.g. 'test-1a2b.'; got {NAMESPACE!r}"
    )


def _named(name: str) -> str:
    return f"{NAMESPACE}{name}"


APPLICATIONS = _named("permits.applications.v1")
CARDS = _named("permits.cards.v1")
SLA = _named("permits.sla.v1")
NOTIFICATIONS = _named("permits.notifications.v1")
CALENDAR = _named("permits.calendar.v1")
DEADLETTER = _named("permits.deadletter.v1")
AUDIT = _named("permits.audit.v1")


def rights_topic(agency: Agency | str) -> str:
    """One feed per agency, so each can be given read access to its own topic only."""
    return _named(f"permits.rights.{Agency(agency).value}.v1")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic is created: partitions, and compaction for feeds rebuilt by key."""

    name: str
    key: str
    description: str
    partitions: int = 4
    compacted: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(APPLICATIONS, "application id", "Life of each application, from acceptance on."),
    TopicSpec(CARDS, "card number", "Life of each card issue: issued, lost, superseded, ..."),
    TopicSpec(SLA, "application id", "The 20-working-day deadline of each application."),
    TopicSpec(NOTIFICATIONS, "application id", "Messages sent to (or failed for) applicants."),
    TopicSpec(CALENDAR, "year", "Official holiday arrangements loaded by operators.", 1),
    TopicSpec(DEADLETTER, "original key", "Events a consumer could not process, with the error."),
    TopicSpec(AUDIT, "subject", "The audit trail: who read or changed whose personal data."),
    *(
        TopicSpec(
            rights_topic(agency),
            "card number",
            f"Holder status for the {agency.value} agency, only the fields it may see.",
            compacted=True,
        )
        for agency in Agency
    ),
)
