"""Framework edges: the Faust agents and timer, and the FastAPI routes."""
