"""A string that never shows itself in repr, str, f-strings or logs."""

from __future__ import annotations


class Secret:
    """Holds a token, key or password; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def mask(value: str | None, keep: int = 4) -> str:
    """``ASIA****WXYZ``-style mask of an identifier: enough to tell two apart, not to use one."""
    if not value:
        return "<none>"
    if len(value) <= 2 * keep:
        return "*" * len(value)
    return value[:keep] + "****" + value[-keep:]


def redact(text: str, *secrets: str | Secret | None) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for s in secrets:
        raw = s.reveal() if isinstance(s, Secret) else s
        if raw and len(raw) >= 4:
            text = text.replace(raw, "***")
    return text
