"""Message catalogues: one JSON file per language, looked up by key.

Staff pages are in Simplified Chinese; the applicant's page in `zh-Hant` (default), `zh-Hans`
or `en`. Every key of the applicant's page exists in all three (a test checks); a staff key
missing from another catalogue falls back to Simplified Chinese.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-Hant", "zh-Hans", "en")
STAFF_LANGUAGE = "zh-Hans"
APPLICANT_DEFAULT = "zh-Hant"
HTML_LANG = {"zh-Hant": "zh-Hant", "zh-Hans": "zh-Hans", "en": "en"}
_HERE = Path(__file__).resolve().parent


@cache
def catalogue(language: str) -> dict[str, str]:
    """The messages of one language."""
    loaded: dict[str, str] = json.loads((_HERE / f"{language}.json").read_text("utf-8"))
    return loaded


def translator(language: str) -> Callable[..., str]:
    """`t(key, **values)` for one language; an unknown key shows as itself, so it is seen."""
    own = catalogue(language)
    fallback = catalogue(STAFF_LANGUAGE)

    def t(key: str, **values: object) -> str:
        text = own.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def applicant_language(requested: str | None) -> str:
    """The applicant's language from `?lang=`, zh-Hant unless one of the three is asked for."""
    return requested if requested in LANGUAGES else APPLICANT_DEFAULT
