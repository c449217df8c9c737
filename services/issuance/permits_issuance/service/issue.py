"""Issue: the centre confirmed the card, so it exists, waits at the point, and replaces the old.

The ready day is fixed once per order (the first confirmation wins, kept in the store), so a
repeated confirmation re-emits exactly the same events: `application.ready`, `card.issued`
(valid from the ready day for five years, signed by the point's branch) and, for a renewal or
reissue, `card.superseded` for the previous issue.
"""

from __future__ import annotations

import uuid
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.card import ApplicationKind, valid_until
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import (
    ApplicationAccepted,
    ApplicationReady,
    CardIssued,
    CardSuperseded,
)
from permits_common.kafka import EventPublisher
from permits_common.logs import get_logger
from permits_common.mongo import Document
from permits_common.reference import acceptance_points_by_code
from permits_issuance.adapters.store import IssuanceStore, day_of, iso
from permits_issuance.metrics import CARDS_ISSUED
from permits_issuance.service.deadlines import DeadlineService

log = get_logger("issue")


class IssueService:
    """Turns a confirmed production order into the card's events and the register entry."""

    def __init__(
        self,
        store: IssuanceStore,
        publisher: EventPublisher,
        clock: Clock,
        deadlines: DeadlineService,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._deadlines = deadlines

    async def card_ready(self, order: Document) -> None:
        """Publish the issue once (repeats carry the same ids) and update the register."""
        token = uuid.uuid4().hex
        completion = await self._store.insert_first(
            self._store.completions,
            {"_id": order["_id"], "ready_on": iso(self._clock.today()), "token": token},
        )
        first_time = completion.get("token") == token
        ready_on = day_of(completion["ready_on"])
        application_id = str(order["application_id"])
        record = order.get("decision") or await self._store.issuances.find_one(
            {"_id": application_id}
        )
        if record is None:
            raise LookupError(f"no decision recorded for application {application_id}")
        accepted = ApplicationAccepted.model_validate(record["accepted"])
        card_number = str(record["card_number"])
        issue_count = int(record["issue_count"])
        until = valid_until(ready_on)
        await self._publisher.publish_all(
            self._events(record, accepted, card_number, issue_count, ready_on)
        )
        await self._deadlines.card_ready(
            application_id, ready_on, first_time=first_time, scheduled=order.get("deadline")
        )
        await self._store.record_issue(
            str(record["travel_permit_base"]),
            card_number,
            issue_count,
            until,
            application_id,
            accepted.applicant.region.value,
        )
        await self._store.release_person(str(record["travel_permit_base"]), application_id)
        if first_time:
            CARDS_ISSUED.labels(accepted.kind.value, accepted.applicant.region.value).inc()
            log.info("card issued", application_id=application_id, issue_count=issue_count)

    def _events(
        self,
        record: Document,
        accepted: ApplicationAccepted,
        card_number: str,
        issue_count: int,
        ready_on: Any,
    ) -> list[Event[Any]]:
        application_id = accepted.application_id
        point = acceptance_points_by_code()[accepted.acceptance_point]
        applicant = accepted.applicant
        events: list[Event[Any]] = [
            self._publisher.event(
                ApplicationReady(
                    application_id=application_id,
                    acceptance_point=accepted.acceptance_point,
                    card_number=card_number,
                    issue_count=issue_count,
                    ready_on=ready_on,
                ),
                event_id=derived_event_id(application_id, "application.ready"),
            ),
            self._publisher.event(
                CardIssued(
                    card_number=card_number,
                    issue_count=issue_count,
                    application_id=application_id,
                    kind=ApplicationKind(record["kind"]),
                    name=applicant.name,
                    name_latin=applicant.name_latin,
                    sex=applicant.sex,
                    birth_date=applicant.birth_date,
                    region=applicant.region,
                    address=accepted.residence.address,
                    district=accepted.residence.district,
                    travel_permit_number=applicant.travel_permit_number,
                    photo_ref=accepted.biometrics.photo_ref,
                    fingerprints_ref=accepted.biometrics.fingerprints_ref,
                    valid_from=ready_on,
                    valid_until=valid_until(ready_on),
                    issuing_authority=point.issuing_authority,
                    acceptance_point=accepted.acceptance_point,
                ),
                event_id=derived_event_id(card_number, issue_count, "card.issued"),
            ),
        ]
        previous = record.get("supersedes_issue_count")
        if previous:
            events.append(
                self._publisher.event(
                    CardSuperseded(
                        card_number=card_number,
                        issue_count=int(previous),
                        superseded_by_issue_count=issue_count,
                        application_id=application_id,
                    ),
                    event_id=derived_event_id(card_number, previous, "card.superseded"),
                )
            )
        return events
