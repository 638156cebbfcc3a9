"""What an adapter raises when an outside system could not do what was asked.

The job queue reads one flag: ``retryable``. A transient failure (5xx, 408, 429, a timeout, a
refused or dropped connection) may succeed later, and because every call carries the order's
idempotency key a retry never applies twice. A permanent failure (any other 4xx, a malformed
answer) will fail the same way again, so retrying only delays the order's failure.
"""

from __future__ import annotations

# 408 and 429 are the 4xx answers that say "not now" rather than "never".
RETRYABLE_4XX = frozenset({408, 429})


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_4XX


class AdapterError(Exception):
    def __init__(self, message: str, *, retryable: bool, status: int | None = None, system: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.system = system

    @classmethod
    def for_status(cls, status: int, message: str, system: str = "") -> AdapterError:
        if is_retryable_status(status):
            return TransientAdapterError(message, status=status, system=system)
        return PermanentAdapterError(message, status=status, system=system)

    def __reduce__(self):
        # Keyword-only arguments defeat Exception's default pickling, which RQ may need.
        return _restore, (type(self), str(self), self.retryable, self.status, self.system)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self)!r}, retryable={self.retryable}, "
                f"status={self.status}, system={self.system!r})")


class TransientAdapterError(AdapterError):
    def __init__(self, message: str, *, status: int | None = None, system: str = ""):
        super().__init__(message, retryable=True, status=status, system=system)


class PermanentAdapterError(AdapterError):
    def __init__(self, message: str, *, status: int | None = None, system: str = ""):
        super().__init__(message, retryable=False, status=status, system=system)


def _restore(cls: type[AdapterError], message: str, retryable: bool, status: int | None,
             system: str) -> AdapterError:
    error = AdapterError.__new__(cls)
    AdapterError.__init__(error, message, retryable=retryable, status=status, system=system)
    return error
