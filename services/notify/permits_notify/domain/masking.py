"""Masking of contact data, so logs, events and the ops API never show a full phone or email."""

from __future__ import annotations

import hashlib


def mask_phone(phone: str) -> str:
    """Keep the country code (when there is one) and the last four digits: +852****4567."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "****"
    tail = digits[-4:]
    if phone.strip().startswith("+"):
        country = _country_code(digits)
        return f"+{country}****{tail}"
    return f"****{tail}"


def _country_code(digits: str) -> str:
    """Country calling codes this service meets: 852 HK, 853 MO, 886 TW, 86 mainland."""
    for code in ("852", "853", "886", "86"):
        if digits.startswith(code):
            return code
    return digits[:2]


def mask_email(email: str) -> str:
    """Keep the first character of the local part and the domain: c***@example.com."""
    local, at, domain = email.strip().partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_contact(channel: str, contact: str) -> str:
    """Mask a phone for SMS and an email address for email."""
    return mask_phone(contact) if channel == "sms" else mask_email(contact)


def contact_key(contact: str) -> str:
    """A stable pseudonym of a contact, to count messages per recipient without storing it."""
    normalized = "".join(contact.split()).lower()
    return hashlib.sha256(normalized.encode()).hexdigest()[:24]
