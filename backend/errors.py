"""Domain errors: refusals a user can understand, each with a stable, machine-readable ``code``.

They know no transport.  The edges turn them into answers (``backend/http.py``: an HTTP status
and body), and a refusal that crosses a process (the trading bus) travels as its code and
message and comes back as the same class (``rebuilt``).
"""

from __future__ import annotations

from typing import Any

_CLASSES: dict[str, type[DomainError]] = {}
"""code -> the class that declares it (``rebuilt``)."""


class DomainError(Exception):
    """A refusal the user can understand; ``code`` is stable and machine-readable.

    A class that declares its own ``code`` is the only one to declare it, so that a code names
    one class wherever it is read.  An instance may carry a finer code than its class's."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            return
        known = _CLASSES.get(cls.code)
        # The same class defined again (its module reloaded) takes its own place back.
        if known is not None and _name(known) != _name(cls):
            raise TypeError(f"{_name(cls)}: the code {cls.code!r} is {_name(known)}'s")
        _CLASSES[cls.code] = cls


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def rebuilt(code: str, message: str) -> DomainError:
    """The refusal ``code`` names, carrying ``message``: the class that declares the code, else
    a ``DomainError`` with it.  Only the code and the message travel (not, say, a
    ``RateLimited``'s ``retry_after``), so the class's own ``__init__`` is not run."""
    cls = _CLASSES.get(code, DomainError)
    error = cls.__new__(cls)
    DomainError.__init__(error, message, code=code)
    return error


class BadRequest(DomainError):
    """The request itself is malformed."""

    code = "bad_request"


class NulCharacter(BadRequest):
    """PostgreSQL cannot store U+0000 in text; SQLite can, so both refuse it alike."""

    code = "nul_character"

    def __init__(self, where: str) -> None:
        super().__init__(f"{where}: text may not contain the NUL character (U+0000)")


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds until the next attempt may pass."""


# PostgreSQL's codes for a transaction that lost a race (deadlock, serialization failure):
# nothing was written, and the same request will very likely pass when sent again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
