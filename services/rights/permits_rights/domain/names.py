"""Name comparison for verification: what a desk clerk types rarely matches byte for byte."""

from __future__ import annotations

import unicodedata


def normalize_name(raw: str) -> str:
    """Trim, collapse inner whitespace, fold width (NFKC) and case, so `  chan  tai man ` equals
    `CHAN TAI MAN` and a full-width `ＣＨＡＮ` equals `CHAN`; Chinese characters are unchanged."""
    return " ".join(unicodedata.normalize("NFKC", raw).split()).casefold()


def name_matches(presented: str, *known: str | None) -> bool:
    """True when the presented name equals any known form (Chinese or latin) after normalising."""
    wanted = normalize_name(presented)
    return bool(wanted) and any(wanted == normalize_name(name) for name in known if name)
