"""What the Swift client raises: ``SwiftError`` (with the answer's ``status``) and its
permission and not-found kinds, the hints added to some statuses, and the failures a bulk
delete reports inside a 200 answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._transport import StorageError, StorageNotFoundError, StoragePermissionError

HINTS = {
    400: "Swift takes container names of 1-256 bytes without '/' and object names of up to "
    "1024 bytes: use a shorter or other name",
    413: "the object is larger than the cluster takes in one piece (its max_file_size): pass "
    "segment_size= below that limit to write it as a Static Large Object",
    422: "the data arrived different from what was sent (its MD5 did not match): it was "
    "corrupted on the way and not stored; write it again",
}


class SwiftError(StorageError):
    """Swift answered with an error status (``status``; 0 when it could not be reached)."""


class SwiftPermissionError(SwiftError, StoragePermissionError):
    """Swift refused the operation (403), or rejected the credentials (401) after re-auth."""


class SwiftNotFoundError(SwiftError, StorageNotFoundError):
    """The container or object does not exist (404)."""


KINDS = (SwiftError, SwiftPermissionError, SwiftNotFoundError)


def check_bulk(result: Mapping[str, Any], container: str, who: Callable[[], str]) -> None:
    """Raise for the failures a bulk/SLO delete reports in its (200) answer body; ``who()``
    describes the credentials."""
    errors = [(n, str(s)) for n, s in result.get("Errors") or [] if not str(s).startswith("404")]
    status = str(result.get("Response Status") or "200")
    if not errors and status[:1] in "24":
        return
    first = errors[0][1] if errors else status
    code = int(first[:3]) if first[:3].isdigit() else 0
    if any(s[:3] in ("401", "403") for _, s in errors):
        raise SwiftPermissionError(
            f"Swift refused delete in container {container!r} ({first}): "
            f"{who()} has no rights for that there",
            status=code,
        )
    sample = ", ".join(f"{n} ({s})" for n, s in errors[:3])
    more = (
        f" failed for {len(errors)} object(s): {sample}" if errors else f": Swift answered {status}"
    )
    raise SwiftError(f"delete in container {container!r}{more}", status=code)
