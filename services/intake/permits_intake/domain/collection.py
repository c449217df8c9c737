"""How the card reaches the applicant (领证方式): at the acceptance point, or by post (邮寄领取).

A posted card goes `ready` → `dispatched` (the clerk records the carrier's tracking number) →
`collected` (delivery confirmed); a card collected at the counter goes `ready` → `collected`.
"""

from __future__ import annotations

import re

from permits_common.domain.card import ApplicationStatus, CollectionMethod
from permits_common.domain.rule_codes import RuleCode
from permits_common.events.models import Collection
from permits_intake.domain.eligibility import Refusal

AT_THE_COUNTER = Collection()
_POSTCODE = re.compile(r"[0-9]{6}")
"""Mainland postcodes (邮政编码) are six digits."""
_PHONE = re.compile(r"\+?[0-9][0-9 -]{5,30}")
_ADDRESS_FIELDS = ("recipient", "phone", "address", "postcode")


def collection_refusals(collection: Collection | None) -> list[Refusal]:
    """A card to be posted needs a recipient, a phone, an address and a valid postcode."""
    if collection is None or collection.method is CollectionMethod.COUNTER:
        return []
    missing = [name for name in _ADDRESS_FIELDS if not (getattr(collection, name) or "").strip()]
    refusals = [
        Refusal(
            RuleCode.COLLECTION_ADDRESS_INVALID,
            f"collection.{name}",
            f"a card sent by post needs the {name}",
        )
        for name in missing
    ]
    postcode = (collection.postcode or "").strip()
    if postcode and not _POSTCODE.fullmatch(postcode):
        refusals.append(
            Refusal(
                RuleCode.COLLECTION_ADDRESS_INVALID,
                "collection.postcode",
                "a postcode is six digits",
            )
        )
    phone = (collection.phone or "").strip()
    if phone and not _PHONE.fullmatch(phone):
        refusals.append(
            Refusal(
                RuleCode.COLLECTION_ADDRESS_INVALID,
                "collection.phone",
                "the recipient's phone number is not a phone number",
            )
        )
    return refusals


def collection_of(stored: dict[str, object] | None) -> Collection:
    """The stored choice; applications accepted before posting existed collect at the counter."""
    return Collection.model_validate(stored) if stored else AT_THE_COUNTER


def may_dispatch(status: ApplicationStatus, collection: Collection) -> bool:
    """Only a ready card that the applicant asked to have posted is handed to a carrier."""
    return collection.method is CollectionMethod.POST and status is ApplicationStatus.READY


def collected_from(collection: Collection) -> ApplicationStatus:
    """The status from which the card counts as collected: handed over at the counter once
    ready, or delivered once dispatched."""
    if collection.method is CollectionMethod.POST:
        return ApplicationStatus.DISPATCHED
    return ApplicationStatus.READY
