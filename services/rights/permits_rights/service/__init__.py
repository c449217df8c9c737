"""Use cases: apply card events, feed agencies, deliver webhooks, verify, reconcile."""
