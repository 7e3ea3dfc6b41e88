"""Production mode: Postfix and Dovecot in front, Courriel behind them (`[general]
mode = "edge"`). Generated configuration for both, and the look-ups Postfix asks us."""
