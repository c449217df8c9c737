"""`python -m permits_notify` starts the worker with its HTTP app."""

from permits_notify.main import main

main()
