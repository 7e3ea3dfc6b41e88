"""Statistics: what the mail plane did (received, delivered, forwarded, refused by
reason, greylisted, sent) per hour and per day, disk use per domain and mailbox per
day, and the queue's size, for the provider's and the owners' Statistics pages and
the API."""
