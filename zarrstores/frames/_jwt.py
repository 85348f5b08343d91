"""JWT authentication of the Flight server, as Shoots does it: HS256 tokens signed with the
server's secret, ``"type": "admin"``; the client sends its token in the Flight handshake and
then with every call (``auth-token-bin``), and every call is checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from pyarrow import flight


def admin_token(secret: str, server: str, days: int = 365) -> str:
    """An admin JWT for ``server`` (its URI), valid for ``days``."""
    now = datetime.now(UTC)
    claims = {"exp": now + timedelta(days=days), "iat": now, "server": server, "type": "admin"}
    return jwt.encode(claims, secret, algorithm="HS256")


class JWTAuthHandler(flight.ServerAuthHandler):
    """Accepts a call only with a valid admin JWT signed with ``secret``."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def authenticate(
        self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader
    ) -> None:
        self.is_valid(incoming.read())

    def is_valid(self, token: bytes) -> bytes:
        if not token:
            raise flight.FlightUnauthenticatedError("No authentication token: pass token= (a JWT)")
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"])
        except jwt.PyJWTError as e:
            raise flight.FlightUnauthenticatedError(f"invalid token: {e}") from None
        if claims.get("type") != "admin":
            raise flight.FlightUnauthenticatedError("token has incorrect permissions")
        return b"admin"

    def __repr__(self) -> str:
        return "JWTAuthHandler(secret=***)"
