"""Accepting applications at an acceptance point, and handing out the finished card.

Acceptance is one document write holding the application, its idempotency answer, the person's
open-application lock and the `application.accepted` event (outbox); the relay publishes it.
A submission costs at most three store commands, a retry included: the card view (for the
rules that need it), the insert, and only when the insert finds the key taken, the reading of
the answer given before. Refusals are kept under the id the key would have given the
application, so the insert itself tells a retry from a new submission. When the insert finds
the person held, the holding application is read: a closed one had its release lost (see
`IntakeStore.release_person`) and is released, and the submission is inserted again.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from permits_common.clock import Clock
from permits_common.domain import travel_permit
from permits_common.domain.card import ApplicationKind, ApplicationStatus
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.envelope import derived_event_id, new_event
from permits_common.events.models import ApplicationAccepted, ApplicationCollected
from permits_common.kafka import EventPublisher
from permits_common.mongo import Document
from permits_common.web.auth import Principal
from permits_common.web.problems import ProblemError, problem_body
from permits_intake.adapters.store import IntakeStore, StoredAnswer, outbox_entry
from permits_intake.domain.cards import card_refusals
from permits_intake.domain.collection import (
    collected_from,
    collection_of,
    collection_refusals,
)
from permits_intake.domain.eligibility import Refusal, eligibility_refusals
from permits_intake.domain.forms import ApplicationForm
from permits_intake.domain.progress import StatusStep
from permits_intake.service.calendar import CalendarBook
from permits_intake.service.metrics import APPLICATIONS

SOURCE = "intake"


_APPLICATION_ID_NAMESPACE = uuid.UUID("0b6f3c52-6d2e-4a8e-9d55-7c1b2f3e4a90")


def application_id_for(scoped_key: str) -> str:
    """The id an application gets from its (role-scoped) idempotency key: a retry finds the
    first answer by primary key, the one lookup every store (FerretDB too) answers from an
    index, instead of searching by key."""
    return str(uuid.uuid5(_APPLICATION_ID_NAMESPACE, scoped_key))


@dataclass(frozen=True, slots=True)
class Answer:
    """The status and body a submission is answered with (and answered again on retry)."""

    status: int
    body: dict[str, Any]


def body_hash(form: ApplicationForm) -> str:
    """A fingerprint of the submitted content, independent of key order and whitespace."""
    content = form.model_dump(mode="json")
    if content.get("collection") is None:
        content.pop("collection", None)  # the same hash as before collection by post existed
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def forbidden_point() -> ProblemError:
    """A clerk bound to one acceptance point acting for another."""
    return ProblemError(
        403, "forbidden", "Forbidden", "This clerk token is bound to another acceptance point"
    )


class OutboxWriter(Protocol):
    """The relay that publishes what an accepted application stored in its outbox."""

    def writing(self) -> AbstractAsyncContextManager[str]:
        """The token to store the application with, held for the length of the insert."""
        ...

    def signal(self, application_id: str, entries: Sequence[Document], batch: str) -> None:
        """The application was stored with these entries under this token."""
        ...


class ApplicationIntake:
    """The clerk's use cases on applications."""

    def __init__(
        self,
        store: IntakeStore,
        clock: Clock,
        calendar: CalendarBook,
        *,
        publisher: EventPublisher,
        known_points: Collection[str],
        jinan_districts: Collection[str],
        outbox: OutboxWriter,
    ) -> None:
        self._store = store
        self._clock = clock
        self._calendar = calendar
        self._publisher = publisher
        self._points = known_points
        self._districts = jinan_districts
        self._outbox = outbox

    async def submit(self, principal: Principal, key: str, form: ApplicationForm) -> Answer:
        """Accept or refuse; a retry with the same key and body gets the first answer again."""
        if not principal.may_act_for_point(form.acceptance_point):
            raise forbidden_point()
        scoped_key = f"{principal.role}|{key}"
        application_id = application_id_for(scoped_key)
        digest = body_hash(form)
        today = self._clock.today()
        refusals = [
            *eligibility_refusals(form, today, self._points, self._districts),
            *collection_refusals(form.collection),
        ]
        if not refusals:
            refusals = await self._register_refusals(form)
        if refusals:
            return await self._refuse(application_id, scoped_key, digest, form, refusals)

        now = self._clock.now()
        due = self._calendar.due_date(today)
        person = travel_permit.base_number(form.applicant.travel_permit_number)
        collection = form.collection or collection_of(None)
        accepted = ApplicationAccepted(
            application_id=application_id,
            acceptance_point=form.acceptance_point,
            kind=form.kind,
            card_number=form.card_number if form.kind is not ApplicationKind.FIRST else None,
            renewal_reason=form.renewal_reason if form.kind is ApplicationKind.RENEWAL else None,
            accepted_on=today,
            due_date=due.due_date,
            due_date_provisional=due.provisional,
            applicant=form.applicant_record(),
            guardian=form.guardian,
            residence=form.residence,
            bases=form.bases,
            biometrics=form.biometrics_record(),
            collection=collection,
        )
        event = new_event(accepted, source=SOURCE, time=now)
        response = {
            "id": application_id,
            "status": ApplicationStatus.ACCEPTED.value,
            "accepted_on": today.isoformat(),
            "due_date": due.due_date.isoformat(),
            "due_date_provisional": due.provisional,
        }
        outbox = [outbox_entry(event.id, event.to_json())]
        document = {
            "_id": application_id,
            "idempotency_key": scoped_key,
            "body_hash": digest,
            "response": response,
            "kind": form.kind.value,
            "acceptance_point": form.acceptance_point,
            "person": person,
            "open_person": person,
            "accepted_on": today.isoformat(),
            "due_date": due.due_date.isoformat(),
            "due_date_provisional": due.provisional,
            "collection": collection.model_dump(mode="json"),
            "calendar": self._calendar.stamp(today, due.due_date).as_document(),
            "outbox": outbox,
            "created_at": now,
        }
        inserted = await self._insert(document)
        if not inserted:
            stored = await self._store.stored_answer(application_id)
            if stored is not None:
                return replay(stored, digest)
            inserted = await self._release_if_closed(person) and await self._insert(document)
        if not inserted:
            duplicate = Refusal(
                RuleCode.DUPLICATE_OPEN_APPLICATION,
                "applicant.travel_permit_number",
                "this person already has an open application",
            )
            return await self._refuse(application_id, scoped_key, digest, form, [duplicate])
        APPLICATIONS.labels(form.kind.value, "accepted", "none", form.acceptance_point).inc()
        return Answer(201, response)

    async def _insert(self, document: Document) -> bool:
        """Store an accepted application under the relay's current token and hand its outbox
        to the relay; False when a unique key of it is taken."""
        async with self._outbox.writing() as batch:
            inserted = await self._store.insert_application(document, batch)
            if inserted:
                self._outbox.signal(document["_id"], document["outbox"], batch)
        return inserted

    async def _release_if_closed(self, person: str) -> bool:
        """The person is held by another application: release them if that application is
        closed (its release was lost to a concurrent write in place, see
        `IntakeStore.release_person`); True when released."""
        holder = await self._store.holder_of_person(person)
        if holder is None:
            return True
        if ApplicationStatus(holder.shown()["status"]).is_open:
            return False
        await self._store.release_person(holder.stored["_id"])
        return True

    async def _register_refusals(self, form: ApplicationForm) -> list[Refusal]:
        """Rules that need the card view: renewals name this person's card; a first
        application is refused while the person holds a card in force."""
        if form.kind is ApplicationKind.FIRST:
            person = travel_permit.base_number(form.applicant.travel_permit_number)
            if await self._store.active_card_of(person) is not None:
                return [
                    Refusal(
                        RuleCode.DUPLICATE_OPEN_APPLICATION,
                        "applicant.travel_permit_number",
                        "this person already holds a valid card; apply for a renewal or reissue",
                    )
                ]
            return []
        assert form.card_number is not None
        return card_refusals(form, await self._store.card(form.card_number))

    async def _refuse(
        self,
        application_id: str,
        scoped_key: str,
        digest: str,
        form: ApplicationForm,
        refusals: list[Refusal],
    ) -> Answer:
        first = refusals[0]
        duplicate = any(r.code is RuleCode.DUPLICATE_OPEN_APPLICATION for r in refusals)
        status = 409 if duplicate else 422
        code = RuleCode.DUPLICATE_OPEN_APPLICATION if duplicate else first.code
        body = problem_body(
            status,
            code.value,
            "Application refused",
            "; ".join(f"{r.field}: {r.message}" for r in refusals),
            [r.as_error() for r in refusals],
        )
        answer = StoredAnswer(digest, status, body)
        if not await self._store.record_refusal(
            application_id, scoped_key, answer, self._clock.now()
        ):
            stored = await self._store.stored_answer(application_id)
            if stored is not None:
                return replay(stored, digest)
        point = form.acceptance_point if form.acceptance_point in self._points else "unknown"
        APPLICATIONS.labels(form.kind.value, "refused", code.value, point).inc()
        return Answer(status, body)

    async def collect(self, principal: Principal, application_id: str) -> dict[str, Any]:
        """The applicant collects the card (from `ready`), or its delivery by post is confirmed
        (from `dispatched`). `application.collected` is on Kafka before the answer (its id
        derives from the application, so a retry is the same fact); the step it adds and the
        person's release are written here at once, and again, harmlessly, by the status views
        when they consume the event."""
        record = await self._store.application(application_id)
        if record is None:
            raise application_not_found()
        shown = record.shown()
        if not principal.may_act_for_point(shown["acceptance_point"]):
            raise forbidden_point()
        card = shown.get("card")
        collection = collection_of(shown.get("collection"))
        if shown["status"] != collected_from(collection).value or not card:
            raise invalid_state(shown["status"])
        now = self._clock.now()
        collected = ApplicationCollected(
            application_id=application_id,
            acceptance_point=shown["acceptance_point"],
            card_number=card["number"],
            collected_on=self._clock.today(),
            method=collection.method,
        )
        await self._publisher.publish(
            new_event(
                collected,
                source=SOURCE,
                event_id=derived_event_id(application_id, collected.event_type()),
                time=now,
            )
        )
        step = StatusStep(ApplicationStatus.COLLECTED, now)
        await self._store.append_steps([(application_id, step)])
        await self._store.release_person(application_id)
        return record.with_steps([step]).shown()


def replay(stored: StoredAnswer, digest: str) -> Answer:
    """The first answer again, unless the key is being reused for different content."""
    if stored.body_hash != digest:
        raise ProblemError(
            422,
            RuleCode.IDEMPOTENCY_KEY_REUSED.value,
            "Idempotency key reused",
            "This Idempotency-Key was already used with a different request body",
            errors=[
                {
                    "field": "Idempotency-Key",
                    "code": RuleCode.IDEMPOTENCY_KEY_REUSED.value,
                    "message": "use a new key for a new request",
                }
            ],
        )
    return Answer(stored.status, stored.body)


def application_not_found() -> ProblemError:
    """Unknown id, or (for the applicant) a permit number that does not match: same answer."""
    return ProblemError(404, "not_found", "Not found", "No such application")


def invalid_state(status: str, action: str = "collected") -> ProblemError:
    """An action the application's current status does not allow."""
    return ProblemError(
        409,
        RuleCode.INVALID_STATE.value,
        "Invalid state",
        f"The application is {status}; the card cannot be {action} now "
        "(a card collected at the counter from ready, a posted card dispatched from ready "
        "and delivered from dispatched)",
    )
