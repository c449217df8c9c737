"""Intake: acceptance points take applications, answer status, and record holder changes."""
