"""`python -m permits_audit`."""

from permits_audit.main import main

main()
