"""Use cases of the account model. The CLI, the panel, the API and the mail plane call
these functions and nothing else to change accounts: each checks permissions and plan
limits, runs in one transaction and writes the audit log."""
