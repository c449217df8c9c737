"""Local stand-ins for the parties outside the system: a mail server and an SMS gateway.

They are real servers (SMTP and HTTP on 127.0.0.1) used by development and by the tests;
production points PERMITS_SMTP_* and PERMITS_SMS_* at the city's relay and gateway instead.
"""
