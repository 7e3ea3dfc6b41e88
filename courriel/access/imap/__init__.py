"""IMAP4rev1 (RFC 3501) and, after ENABLE IMAP4rev2, IMAP4rev2 (RFC 9051, `rev2`), with
IDLE, UIDPLUS, MOVE, NAMESPACE, SPECIAL-USE, LITERAL+, ENABLE, ID, CHILDREN, UNSELECT,
QUOTA, NOTIFY (RFC 5465) and the rest of Dovecot 2.3's extensions (the list is
`session.AUTH_CAPABILITIES`): grammar in `parser`, state machine in `session`,
responses in `fetch`/`search`/`mime`, NOTIFY in `notify`, listeners in `server`."""
