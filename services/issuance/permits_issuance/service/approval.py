"""Approval: the register's last word on an accepted application, and its card number.

Every step is keyed so a redelivered `application.accepted` (or a second worker racing on the
same one) ends in the same decision: the person's open-application slot is a claim keyed by
travel-permit base number, a new number is a claim keyed by the number, and the decision is a
record keyed by application id whose first insert wins; a repeat re-reads it and re-emits the
same events with the same derived ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from permits_common.clock import Clock
from permits_common.domain.card import ApplicationKind
from permits_common.domain.permit_number import SequenceExhaustedError
from permits_common.domain.rule_codes import RuleCode
from permits_common.domain.travel_permit import base_number
from permits_common.events.envelope import Event, derived_event_id
from permits_common.events.models import (
    ApplicationAccepted,
    ApplicationApproved,
    ApplicationRejected,
)
from permits_common.kafka import EventPublisher
from permits_common.logs import get_logger
from permits_common.mongo import Document
from permits_issuance.adapters.store import IssuanceStore, token_of
from permits_issuance.domain.register import Approval, Decision, Refusal, decide
from permits_issuance.service.deadlines import DeadlineService
from permits_issuance.service.numbers import (
    CounterHints,
    NumberRequest,
    allocate_number,
    allocate_numbers,
)
from permits_issuance.service.production import ProductionService

log = get_logger("approval")

APPROVED = "approved"
REJECTED = "rejected"


class ApprovalService:
    """Handles `application.accepted`: deadline, decision, number, production order."""

    def __init__(
        self,
        store: IssuanceStore,
        publisher: EventPublisher,
        clock: Clock,
        deadlines: DeadlineService,
        production: ProductionService,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._deadlines = deadlines
        self._production = production
        self._hints = CounterHints()

    async def handle_accepted(
        self, accepted: ApplicationAccepted, *, redelivered: bool = True
    ) -> Document:
        """Decide once, publish the outcome, and start production when approved.

        An event this consumer claims for the first time (`redelivered=False`) cannot have a
        decision yet, so the look-up is skipped; the decision's insert still decides if another
        worker got there first."""
        application_id = accepted.application_id
        deadline = await self._deadlines.start_clock(
            application_id,
            accepted.acceptance_point,
            accepted.accepted_on,
            redelivered=redelivered,
        )
        record = None
        if redelivered:
            record = await self._store.issuances.find_one({"_id": application_id})
        if record is None:
            record = await self._decide_and_record(accepted)
        await self._publisher.publish(self._outcome_event(record))
        if record["outcome"] == APPROVED:
            await self._production.open_order(record, deadline)
        else:
            await self._deadlines.stop_clock(application_id)
            await self._store.release_person(record["travel_permit_base"], application_id)
        log.info("application decided", application_id=application_id, outcome=record["outcome"])
        return record

    async def handle_fresh_batch(self, batch: Sequence[ApplicationAccepted]) -> None:
        """`handle_accepted` for acceptances this consumer claims for the first time, each of
        another application and another person, with one command per step for the batch
        instead of one per application: the deadlines, the person claims, the markers of the
        people seen (a person seen for the first time needs no register look-up), the number
        claims, the decisions, the orders and their schedule entries are each one
        `insert_many`, and all events go out with one wait for the broker, before the orders
        are sent.

        The keys decide exactly as one by one: an insert refused because of an earlier one
        reads that one back (a second worker racing on the same application gets its
        decision and number), so running a batch again, whole or one event at a time, ends
        in the same decisions and card numbers."""
        now = self._clock.now()
        deadlines = await self._deadlines.start_clocks(
            [(a.application_id, a.acceptance_point, a.accepted_on) for a in batch]
        )
        bases = {a.application_id: base_number(a.applicant.travel_permit_number) for a in batch}
        holding = await self._store.claim_persons(
            [
                (bases[a.application_id], a.application_id, token_of(deadlines[a.application_id]))
                for a in batch
            ]
        )
        never_seen = await self._store.mark_seen(
            [bases[a.application_id] for a in batch if a.application_id in holding]
        )
        decisions = dict(
            zip(
                [a.application_id for a in batch],
                await asyncio.gather(
                    *(
                        self._decide_claimed(
                            a,
                            bases[a.application_id],
                            a.application_id in holding,
                            never_seen=bases[a.application_id] in never_seen,
                        )
                        for a in batch
                    )
                ),
                strict=True,
            )
        )
        numbers = await allocate_numbers(
            self._store,
            self._hints,
            [
                NumberRequest(
                    a.application_id, a.applicant.region, a.applicant.birth_date, a.applicant.sex
                )
                for a in batch
                if _needs_number(decisions[a.application_id])
            ],
            now=now,
        )
        for application_id, number in numbers.items():
            decisions[application_id] = _numbered(decisions[application_id], number)
        records = await self._store.insert_all_first(
            self._store.issuances,
            [
                _record(a, bases[a.application_id], decisions[a.application_id], self._clock)
                for a in batch
            ],
        )
        approved = [
            (records[a.application_id], deadlines[a.application_id])
            for a in batch
            if records[a.application_id]["outcome"] == APPROVED
        ]
        created, existing = await self._production.open_orders(approved)
        await self._publisher.publish_all(
            [self._deadlines.scheduled_event(deadlines[a.application_id]) for a in batch]
            + [self._outcome_event(records[a.application_id]) for a in batch]
            + [self._production.in_production_event(order) for order in created]
        )
        refused = [a for a in batch if records[a.application_id]["outcome"] != APPROVED]
        await self._deadlines.stop_clocks([deadlines[a.application_id] for a in refused])
        await self._store.release_persons(
            [
                (
                    str(records[a.application_id]["travel_permit_base"]),
                    a.application_id,
                    token_of(deadlines[a.application_id]),
                )
                for a in refused
            ]
        )
        for a in batch:
            log.info(
                "application decided",
                application_id=a.application_id,
                outcome=records[a.application_id]["outcome"],
            )
        for record, deadline in existing:
            await self._production.open_order(record, deadline)
        await asyncio.gather(*(self._production.send_first(order) for order in created))

    async def _decide_and_record(self, accepted: ApplicationAccepted) -> Document:
        base = base_number(accepted.applicant.travel_permit_number)
        decision = await self._decide(accepted, base)
        if isinstance(decision, Approval) and decision.card_number is None:
            try:
                number = await allocate_number(
                    self._store,
                    self._hints,
                    application_id=accepted.application_id,
                    region=accepted.applicant.region,
                    birth_date=accepted.applicant.birth_date,
                    sex=accepted.applicant.sex,
                    now=self._clock.now(),
                )
                decision = Approval(number, decision.issue_count)
            except SequenceExhaustedError:
                decision = _exhausted()
        return await self._store.insert_first(
            self._store.issuances, _record(accepted, base, decision, self._clock)
        )

    async def _decide(self, accepted: ApplicationAccepted, base: str) -> Decision:
        claimed = await self._store.claim_person(base, accepted.application_id)
        return await self._decide_claimed(accepted, base, claimed)

    async def _decide_claimed(
        self,
        accepted: ApplicationAccepted,
        base: str,
        holds_person: bool,
        *,
        never_seen: bool = False,
    ) -> Decision:
        """The decision once the person's claim is known (no number allocated yet); a person
        never seen before (`IssuanceStore.mark_seen`) has no register entry to look up."""
        if not holds_person:
            return Refusal(
                RuleCode.DUPLICATE_OPEN_APPLICATION,
                "another application of this person is still open",
            )
        holder = None if never_seen else await self._store.holder(base)
        belongs_to_other = False
        requested = accepted.card_number
        unknown_to_holder = holder is None or holder.card_number != requested
        if accepted.kind is not ApplicationKind.FIRST and requested and unknown_to_holder:
            owner = await self._store.holder_by_card(requested)
            belongs_to_other = owner is not None and owner.travel_permit_base != base
        return decide(
            accepted.kind,
            requested,
            holder,
            requested_card_belongs_to_other=belongs_to_other,
            today=self._clock.today(),
        )

    def _outcome_event(self, record: Document) -> Event[Any]:
        application_id = str(record["_id"])
        if record["outcome"] == APPROVED:
            return self._publisher.event(
                ApplicationApproved(
                    application_id=application_id,
                    acceptance_point=record["acceptance_point"],
                    kind=ApplicationKind(record["kind"]),
                    card_number=record["card_number"],
                    issue_count=int(record["issue_count"]),
                ),
                event_id=derived_event_id(application_id, "application.approved"),
            )
        return self._publisher.event(
            ApplicationRejected(
                application_id=application_id,
                acceptance_point=record["acceptance_point"],
                code=record["code"],
                message=record["message"],
                field=record.get("field"),
            ),
            event_id=derived_event_id(application_id, "application.rejected"),
        )


def _needs_number(decision: Decision) -> bool:
    return isinstance(decision, Approval) and decision.card_number is None


def _numbered(decision: Decision, number: str | SequenceExhaustedError) -> Decision:
    """An approval with its new number, or the refusal when none is left."""
    if isinstance(number, SequenceExhaustedError) or not isinstance(decision, Approval):
        return _exhausted()
    return Approval(number, decision.issue_count)


def _exhausted() -> Refusal:
    return Refusal(
        RuleCode.SEQUENCE_EXHAUSTED,
        "no permit number is left for this birth date and sex; "
        "the issuing authority must assign one by hand",
    )


def _record(accepted: ApplicationAccepted, base: str, decision: Decision, clock: Clock) -> Document:
    record: Document = {
        "_id": accepted.application_id,
        "kind": accepted.kind.value,
        "acceptance_point": accepted.acceptance_point,
        "travel_permit_base": base,
        "decided_at": clock.now(),
        "accepted": accepted.model_dump(mode="json"),
    }
    if isinstance(decision, Approval):
        assert decision.card_number is not None
        record.update(
            outcome=APPROVED,
            card_number=decision.card_number,
            issue_count=decision.issue_count,
            supersedes_issue_count=decision.supersedes_issue_count,
        )
    else:
        record.update(
            outcome=REJECTED,
            code=decision.code.value,
            message=decision.message,
            field=decision.field,
        )
    return record
