"""Use cases: approve, allocate, produce, issue, keep the clock; frameworks stay outside."""
