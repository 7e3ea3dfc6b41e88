"""The mail plane's inbound side: SMTP/LMTP listeners, routing of accepted mail to
Maildirs, forwards and automatic replies, and the platform's own notices."""
