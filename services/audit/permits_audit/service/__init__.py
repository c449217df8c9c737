"""Use cases: append a batch of entries, answer questions about the trail, prune old entries."""
