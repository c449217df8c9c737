"""Pure rules of the audit trail: how entries are chained and how a chain is checked."""
