"""HTTP routes and the consumer loop."""
