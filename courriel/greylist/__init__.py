"""Greylisting (chapter 13 of the manual): the engine shared by our SMTP server and
the Postfix policy service, its whitelists, its store and its panel/CLI services."""
