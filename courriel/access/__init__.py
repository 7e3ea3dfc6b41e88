"""Reading mail: our own asyncio IMAP and POP3 servers over the Maildirs."""
