"""IMAP4rev1 (RFC 3501) with IDLE, UIDPLUS, MOVE, NAMESPACE, SPECIAL-USE, LITERAL+, ENABLE,
ID, CHILDREN, UNSELECT and QUOTA: grammar in `parser`, state machine in `session`,
responses in `fetch`/`search`/`mime`, listeners in `server`."""
