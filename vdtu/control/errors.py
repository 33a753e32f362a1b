"""The control API's one error: a request refused, with the HTTP status it is answered with."""

from __future__ import annotations


class ControlError(Exception):
    """A request the API refuses, with its HTTP status (400, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
