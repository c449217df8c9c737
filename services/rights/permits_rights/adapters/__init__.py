"""I/O at the edges: the store, Kafka (register changelog), agency webhooks, the policy file."""
