"""The topic catalog of contract.md: names are binding and never change within a version."""

from __future__ import annotations

from dataclasses import dataclass

from permits_common.domain.agencies import Agency

APPLICATIONS = "permits.applications.v1"
CARDS = "permits.cards.v1"
SLA = "permits.sla.v1"
NOTIFICATIONS = "permits.notifications.v1"
CALENDAR = "permits.calendar.v1"
DEADLETTER = "permits.deadletter.v1"
AUDIT = "permits.audit.v1"


def rights_topic(agency: Agency | str) -> str:
    """One feed per agency, so each can be given read access to its own topic only."""
    return f"permits.rights.{Agency(agency).value}.v1"


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
