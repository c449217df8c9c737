"""The intake's HTTP API (FastAPI routes, request and response schemas)."""
