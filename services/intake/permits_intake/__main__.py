"""`python -m permits_intake` runs the intake service."""

from permits_intake.main import run

run()
