"""Incoming mail authentication and filtering: SPF, DKIM, ARC and DMARC checks, the
Authentication-Results header, refusal of forged mail from our own domains, and spam
filtering through rspamd. Checks run once per message, where the client's address is
known (port 25, or our LMTP behind a Postfix edge with XFORWARD)."""
