"""`python -m permits_issuance` starts the issuance worker."""

from permits_issuance.main import main

main()
