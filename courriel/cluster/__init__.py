"""Several hosting servers, one platform (the README's "Several hosting servers").

Each domain's mail lives on one hosting server (its `Domain.server`); every server
accepts mail and logins for every domain and hands them to that one. The pieces:
which server this process is (`identity`), where a mailbox lives (`placement`), the
authenticated TLS link between servers (`peers`, `lmtp`, `rpc`), the live status of
every server (`heartbeat`, `status`), domain moves (`moves`), work done once for the
whole platform (`once`), and the IMAP/POP3 proxy (`proxy`).
"""
