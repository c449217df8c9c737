"""Issuance rules without I/O: register decisions, numbering, deadlines, production retries."""
