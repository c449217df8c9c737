"""The intake's edges to the outside: the document store and the Kafka outbox relay."""
