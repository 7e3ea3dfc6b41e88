"""The outbound queue: a durable spool on disk, retries with back-off, delivery by MX,
smarthost or transport map, delay notices and bounces (RFC 3464)."""
