"""The store of the trail and the Kafka consumer that feeds it."""
