"""Figures for Prometheus (and anything that reads its text format) at `/metrics`."""
