"""Edges: the HTTP API (FastAPI) and the cards.v1 agent (Faust)."""
