"""The REST API (/api/v1/): the services of the panel, over HTTPS with bearer tokens."""
