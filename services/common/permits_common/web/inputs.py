"""Request values exactly as strict as the JSON Schema the OpenAPI document shows for them.

Pydantic's lax mode takes `true` for the integer 1, which the document's `integer` does not
allow; the store cannot hold a NUL character, so identifiers that reach it refuse control
characters up front (422) instead of failing there (500).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]+$"


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]
"""An integer in a JSON body: 3 or 3.0, never `true`."""
