"""The HTTPS server of the panel and API (uvicorn running Django's ASGI app)."""
