"""Courriel: a mail-hosting platform (control panel, SMTP, IMAP, POP3, greylisting, backups)."""

__version__ = "0.1.0"
