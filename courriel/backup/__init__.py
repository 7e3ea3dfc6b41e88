"""Backups (chapter 12 of the manual): rsnapshot-style snapshots of every Maildir with a
dump of the database, rotation, verification, restores, and mailbox downloads.

A snapshot is a complete tree of the mail root in which every message that did not
change since the previous snapshot is a hard link to it, so it costs no space; a
per-snapshot manifest (sizes and checksums) lets `verify` find damaged files.
"""
