"""agentstated's errors as exceptions: one class per engine code (docs/http-api.md, "Errors").

Every exception carries the HTTP status (0 when the server did not answer) and the engine's
stable code; its message names the problem and never holds the token.
"""

from __future__ import annotations


class AgentstateError(Exception):
    """An error answered by agentstated (or its absence)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InvalidArgumentError(AgentstateError, ValueError):
    """400: a bad id, state, parameter or header."""


class UnauthenticatedError(AgentstateError):
    """401: no token, or one that is unknown or revoked."""


class ForbiddenError(AgentstateError):
    """403: the token's role may not use the route."""


class NotFoundError(AgentstateError, KeyError):
    """404: no such run, thread, checkpoint or route."""

    __str__ = Exception.__str__  # KeyError would quote the message


class ConflictError(AgentstateError):
    """409: a stale version, a completed run, an idempotency key reused, a forked thread."""


class TooLargeError(AgentstateError):
    """413 or 431: a body or headers over the server's limit."""


class RateLimitedError(AgentstateError):
    """429 after the retries the deadline allowed."""


class CorruptionError(AgentstateError):
    """500 corruption: stored bytes failed their checksum."""


class NotImplementedByStoreError(AgentstateError):
    """501: the server's store has no checkpoint model."""


class UnavailableError(AgentstateError, ConnectionError):
    """503, or no answer at all: the server or a tier of its store is down."""


class DeadlineError(AgentstateError, TimeoutError):
    """504: the store call's deadline passed; a write may or may not have landed."""


_BY_CODE: dict[str, type[AgentstateError]] = {
    "invalid_argument": InvalidArgumentError,
    "bad_request": InvalidArgumentError,
    "unauthenticated": UnauthenticatedError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "content_too_large": TooLargeError,
    "header_too_large": TooLargeError,
    "rate_limited": RateLimitedError,
    "pool_exhausted": RateLimitedError,
    "corruption": CorruptionError,
    "not_implemented": NotImplementedByStoreError,
    "unavailable": UnavailableError,
    "timeout": DeadlineError,
}


def error_for(code: str, status: int) -> type[AgentstateError]:
    """The exception class of an engine code (by status when the code is unknown)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    return {400: InvalidArgumentError, 404: NotFoundError, 409: ConflictError, 503: UnavailableError}.get(
        status, AgentstateError
    )
