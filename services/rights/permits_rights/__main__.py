"""Entry point: `python -m permits_rights`."""

from permits_rights.main import main

main()
