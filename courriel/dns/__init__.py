"""One DNS resolver for the whole platform (see `resolver.py`)."""
