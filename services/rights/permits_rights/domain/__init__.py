"""Pure rules of the rights service: holder status, verification, agency policies."""
