"""Use cases: remember recipients, turn events into deliveries, send what is due."""
