"""Edges of the notify service: the store, the template files, the SMTP and SMS channels."""
