"""`python -m permits_console` serves the console."""

from permits_console.main import run

run()
