"""Panel forms: they parse what people type (sizes, dates, lists); the services
hold the rules."""
