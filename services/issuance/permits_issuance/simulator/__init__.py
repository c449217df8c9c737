"""A stand-in for the card production centre: a real HTTP server for local runs and tests."""
