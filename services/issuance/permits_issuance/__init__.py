"""Issuance: card numbers, the card register, production orders and the deadline clock."""
