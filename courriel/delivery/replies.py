"""SMTP outcomes with their RFC 3463 enhanced status codes: the one shape every part
of the mail plane (content checks, routing, LMTP, the queue) answers in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    code: int
    enhanced: str
    text: str

    def reply(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"

    @property
    def ok(self) -> bool:
        return self.code < 400


class TemporaryFailure(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.text)
        self.outcome = outcome
