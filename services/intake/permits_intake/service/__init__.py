"""Intake use cases: accept applications, keep status views, act on cards, load calendars."""
