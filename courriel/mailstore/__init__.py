"""Maildir storage shared by delivery, IMAP/POP3 and backups (Dovecot-compatible layout)."""
