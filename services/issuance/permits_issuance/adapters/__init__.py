"""Edges to the outside: the document store and the card production centre."""
