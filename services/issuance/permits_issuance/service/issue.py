"""Issue: the centre confirmed the card, so it exists, waits at the point, and replaces the old.

The ready day is fixed once per order (the first confirmation wins, kept in the store), so a
repeated confirmation re-emits exactly the same events: `application.ready`, `card.issued`
(valid from the ready day for five years, signed by the point's branch) and, for a renewal or
reissue, `card.superseded` for the previous issue.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
from permits_issuance.adapters.store import HolderIssue, IssuanceStore, day_of, iso, token_of
from permits_issuance.metrics import CARDS_ISSUED
from permits_issuance.service.deadlines import DeadlineService, ReadyCard

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
        await self.cards_ready([order])

    async def cards_ready(self, orders: Sequence[Document]) -> None:
        """`card_ready` for several orders (of different applications) at once: their
        completions with one insert, their events with one wait for the broker, their
        deadlines closed together (`DeadlineService.cards_ready`), the register entries of
        people met for the first time with one insert (the others updated one by one), their
        people released with one delete. Each order's steps keep their order: completion,
        events, deadline, register, release."""
        orders = list({order["_id"]: order for order in orders}.values())
        token = uuid.uuid4().hex
        completions = await self._store.insert_all_first(
            self._store.completions,
            [
                {"_id": order["_id"], "ready_on": iso(self._clock.today()), "token": token}
                for order in orders
            ],
        )
        issues = []
        for order in orders:
            completion = completions[order["_id"]]
            application_id = str(order["application_id"])
            record = order.get("decision") or await self._store.issuances.find_one(
                {"_id": application_id}
            )
            if record is None:
                raise LookupError(f"no decision recorded for application {application_id}")
            accepted = ApplicationAccepted.model_validate(record["accepted"])
            first_time = completion.get("token") == token
            issues.append((order, record, accepted, day_of(completion["ready_on"]), first_time))
        await self._publisher.publish_all(
            [
                event
                for _, record, accepted, ready_on, _ in issues
                for event in self._events(
                    record,
                    accepted,
                    str(record["card_number"]),
                    int(record["issue_count"]),
                    ready_on,
                )
            ]
        )
        await self._deadlines.cards_ready(
            [
                ReadyCard(accepted.application_id, ready_on, first_time, order.get("deadline"))
                for order, _, accepted, ready_on, first_time in issues
            ]
        )
        await self._store.record_issues(
            [
                HolderIssue(
                    base=str(record["travel_permit_base"]),
                    card_number=str(record["card_number"]),
                    issue_count=int(record["issue_count"]),
                    valid_until=valid_until(ready_on),
                    application_id=accepted.application_id,
                    region=accepted.applicant.region.value,
                )
                for _, record, accepted, ready_on, _ in issues
            ]
        )
        await self._store.release_persons(
            [
                (
                    str(record["travel_permit_base"]),
                    accepted.application_id,
                    token_of(order.get("deadline")),
                )
                for order, record, accepted, _, _ in issues
            ]
        )
        for _, record, accepted, _, first_time in issues:
            if first_time:
                CARDS_ISSUED.labels(accepted.kind.value, accepted.applicant.region.value).inc()
                log.info(
                    "card issued",
                    application_id=accepted.application_id,
                    issue_count=int(record["issue_count"]),
                )

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
