"""``FrameServer``: an Arrow Flight server speaking Shoots' protocol over a ``FrameStore``, so
that ``shoots_client.ShootsClient`` works unchanged against Swift or S3.

The protocol (from Shoots 0.1.1): ``do_put`` with a JSON command ``{"name", "mode", "bucket"}``;
``do_get`` with a JSON ticket ``{"name", "bucket", "sql"?}``; ``list_flights`` with criteria
``{"bucket", "regex"}``; actions ``delete``, ``buckets``, ``delete_bucket``, ``resample``,
``ping`` and ``shutdown``, JSON in and out. Errors the client translates carry
``{"type": ..., "message": ...}`` as the ``FlightServerError``'s extra info.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pyarrow import flight

from ._jwt import JWTAuthHandler, admin_token
from ._modes import BucketNotEmptyError, SQLError, put_mode
from .store import FrameStore

__all__ = ["FrameServer"]

_ACTIONS = [
    ("delete", "Delete a dataframe"),
    ("buckets", "List buckets"),
    ("delete_bucket", "Delete a bucket"),
    ("shutdown", "Shutdown the server"),
    ("resample", "Conversion and resampling of time series or with a sql query"),
    ("ping", "Convenience action for testing if the server is functional"),
]


class FrameServer(flight.FlightServerBase):
    """A Shoots-compatible Flight server storing in ``root`` (``swift://...`` or
    ``minio://...``; ``storage_options`` as for ``FrameStore``). ``location``: a
    ``pyarrow.flight.Location`` or URI (``grpc://127.0.0.1:8081``, ``grpc+tls://...`` with
    ``certs``, a ``(certificate PEM, key PEM)`` pair). ``secret``: require a JWT signed with it
    on every call (needs TLS, as in Shoots; ``generate_admin_jwt()`` makes one). Run
    ``serve()`` (e.g. in a thread); ``shutdown()`` stops it."""

    def __init__(
        self,
        location: flight.Location | str,
        root: str,
        *,
        certs: tuple[str | bytes, str | bytes] | None = None,
        secret: str | None = None,
        **storage_options: Any,
    ) -> None:
        if secret is not None and certs is None:
            raise ValueError("a secret needs TLS (Shoots sends tokens only over TLS): pass certs")
        if not isinstance(location, flight.Location):
            location = flight.Location(location)
        self.location = location
        self.store = FrameStore(root, **storage_options)
        self._secret = secret
        super().__init__(
            location,
            auth_handler=None if secret is None else JWTAuthHandler(secret),
            tls_certificates=None if certs is None else [certs],
        )

    def __repr__(self) -> str:
        return f"FrameServer({self.location.uri.decode()}, {self.store!r})"

    def generate_admin_jwt(self) -> str:
        """An admin JWT for this server, valid for a year (``ValueError`` without a secret)."""
        if self._secret is None:
            raise ValueError("Server must be started with a secret to use JWTs")
        return admin_token(self._secret, self.location.uri.decode())

    # -- Flight methods ------------------------------------------------------------------------
    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.RecordBatchStream:
        info = _json(ticket.ticket)
        name, bucket = info.get("name"), info.get("bucket")
        table = _translated(lambda: self.store.get(name, info.get("sql"), bucket, output="arrow"))
        return flight.RecordBatchStream(table)

    def do_put(
        self,
        context: Any,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        command = _json(descriptor.command)
        mode = _translated(lambda: put_mode(command.get("mode", "error")))
        table = reader.read_all()
        _translated(lambda: self.store.put(command["name"], table, mode, command.get("bucket")))

    def list_flights(self, context: Any, criteria: bytes) -> Iterator[flight.FlightInfo]:
        info = _json(criteria) if criteria else {}
        frames = _translated(lambda: self.store.list(info.get("bucket"), info.get("regex")))
        for frame in frames:
            descriptor = flight.FlightDescriptor.for_path(frame["name"])
            yield flight.FlightInfo(frame["schema"], descriptor, [], -1, -1)

    def list_actions(self, context: Any) -> list[flight.ActionType]:
        return [flight.ActionType(name, description) for name, description in _ACTIONS]

    def do_action(self, context: Any, action: flight.Action) -> list[flight.Result]:
        body = action.body.to_pybytes() if action.body is not None else b""
        info = _json(body) if body else {}
        handler = getattr(self, f"_action_{action.type}", None)
        if handler is None:
            raise flight.FlightServerError(f"unknown action {action.type!r}")
        return _translated(lambda: handler(info))

    # -- actions (their errors translated by do_action) ----------------------------------------
    def _action_ping(self, info: dict[str, Any]) -> list[flight.Result]:
        return [flight.Result(b"pong")]

    def _action_delete(self, info: dict[str, Any]) -> list[flight.Result]:
        self.store.delete(info.get("name"), info.get("bucket"))
        return _result({"success": True, "message": f"deleted {info.get('name')}"})

    def _action_buckets(self, info: dict[str, Any]) -> list[flight.Result]:
        return _result(self.store.buckets())

    def _action_delete_bucket(self, info: dict[str, Any]) -> list[flight.Result]:
        self.store.delete_bucket(info.get("name"), info.get("mode", "error"))
        return _result({"message": f"bucket {info.get('name')} deleted"})

    def _action_resample(self, info: dict[str, Any]) -> list[flight.Result]:
        keys = ("rule", "time_col", "aggregation_func", "source_bucket", "target_bucket")
        options = {k: info.get(k) for k in keys} | {"sql": info.get("sql") or None}
        source, target, mode = info.get("source"), info.get("target"), info.get("mode", "append")
        return _result(self.store.resample(source, target, mode=mode, **options))

    def _action_shutdown(self, info: dict[str, Any]) -> list[flight.Result]:
        # From inside a call: stop in another thread, or shutdown() would wait for this call.
        threading.Thread(target=self.shutdown, daemon=True).start()
        return _result(["shutdown command received"])


def _json(data: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise flight.FlightServerError("request is not JSON: is this a Shoots client?") from None
    if not isinstance(value, dict):
        raise flight.FlightServerError("the request must be a JSON object")
    return value


def _result(value: Any) -> list[flight.Result]:
    return [flight.Result(json.dumps(value).encode())]


# Errors the Shoots client raises by name (as FileNotFoundError, ...) from the extra info.
_SHOOTS_ERRORS = {
    FileExistsError: "FileExistsError",
    FileNotFoundError: "FileNotFoundError",
    BucketNotEmptyError: "BucketNotEmptyError",
    SQLError: "DataFusionError",
}


def _translated(call: Callable[[], Any]) -> Any:
    """``call()``, with its errors as the Flight errors a Shoots client translates."""
    try:
        return call()
    except flight.FlightError:
        raise
    except tuple(_SHOOTS_ERRORS) as e:
        kind = next(name for cls, name in _SHOOTS_ERRORS.items() if isinstance(e, cls))
        info = json.dumps({"type": kind, "message": str(e)}).encode()
        raise flight.FlightServerError(str(e), extra_info=info) from None
    except PermissionError as e:
        raise flight.FlightUnauthorizedError(str(e)) from None
    except Exception as e:  # a one-line reason for the client, not a server traceback
        raise flight.FlightServerError(f"{type(e).__name__}: {e}") from None
