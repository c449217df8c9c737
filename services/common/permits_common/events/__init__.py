"""The event contract: CloudEvents envelope, topic catalog and one model per event type."""
