"""FastAPI building blocks every service shares: auth by role, problem details, ops endpoints."""
