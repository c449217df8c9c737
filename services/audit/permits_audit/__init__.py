"""The audit service: the trail of who saw whose data."""
