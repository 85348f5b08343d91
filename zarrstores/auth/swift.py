"""Swift auth kinds behind one interface: tempauth v1, pre-authenticated, anonymous (Keystone:
``keystone.py``). Each gives ``SwiftCredentials``, cached and refreshed before expiry; after a 401
the backend calls ``refresh_after_failure`` and retries once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from ._refresh import CachedCredentials, RefreshingCache, expires_at
from ._secret import Secret
from ._urls import check_url
from .errors import ConfigurationError, SwiftAuthError

_EXAMPLE = "https://swift.example.org/v1/AUTH_<project>"


@dataclass(frozen=True)
class SwiftCredentials:
    """The account's URL and the token to use there (None: anonymous; never in the repr)."""

    storage_url: str
    token: Secret | None = field(default=None, repr=False)
    expires_at: float | None = None


class SwiftAuth(CachedCredentials[SwiftCredentials]):
    """Base of the Swift auth kinds: ``get()`` credentials, ``refresh_after_failure()``."""

    def __init__(self, *, storage_url: str | None = None, verify: bool | str = True) -> None:
        self.storage_url_override = storage_url and check_url(storage_url, "storage_url", _EXAMPLE)
        self.verify = verify
        self.proxy: str | None = None  # of the auth requests: the client's proxy= sets it
        self._cache = RefreshingCache(self._fetch, expires_at)

    def _fetch(self) -> SwiftCredentials:
        """A login's credentials, at ``storage_url_override`` when one is given."""
        raise NotImplementedError

    def describe(self) -> str:
        """The kind and who, for messages."""
        raise NotImplementedError

    def login_key(self) -> tuple[Any, ...] | None:
        """What a login depends on, secrets included: auths with equal keys may share one
        login (``shared_login``). None: never shared."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class TempAuth(SwiftAuth):
    """Swift v1 auth (tempauth, swauth, and the v1 front of most clusters): ``ST_AUTH`` etc."""

    def __init__(
        self,
        authurl: str,
        user: str,
        key: str,
        *,
        storage_url: str | None = None,
        verify: bool | str = True,
    ) -> None:
        if ":" not in user:
            raise ConfigurationError(
                f"tempauth user {user!r} must be of the form 'account:user' (e.g. 'test:tester')"
            )
        check_url(authurl, "authurl", "https://swift.example.org/auth/v1.0")
        self.authurl = authurl
        self.user = user
        self._key = Secret(key)
        super().__init__(storage_url=storage_url, verify=verify)

    def _fetch(self) -> SwiftCredentials:
        from .._transport import auth_request

        r = auth_request(
            "GET",
            self.authurl,
            headers={"X-Auth-User": self.user, "X-Auth-Key": self._key.reveal()},
            what=f"Swift auth at {self.authurl}",
            check="the URL",
            verify=self.verify,
            proxy=self.proxy,
        )
        if r.status_code in (401, 403):
            raise SwiftAuthError(
                f"Swift auth at {self.authurl} rejected user {self.user!r} ({r.status_code}): "
                "check ST_USER / ST_KEY (user is 'account:user', key is its password)"
            )
        # Swift answers 200, Ceph RGW 204: any 2xx with the two headers is a login.
        login = all(h in r.headers for h in ("X-Storage-Url", "X-Auth-Token"))
        if not 200 <= r.status_code < 300 or not login:
            raise SwiftAuthError(
                f"{self.authurl} answered {r.status_code} without X-Storage-Url: is it a Swift "
                "v1 auth URL (usually ending in /auth/v1.0)?"
            )
        expires = r.headers.get("X-Auth-Token-Expires")
        return SwiftCredentials(
            storage_url=self.storage_url_override or r.headers["X-Storage-Url"].rstrip("/"),
            token=Secret(r.headers["X-Auth-Token"]),
            expires_at=time.time() + float(expires) if expires else None,
        )

    def describe(self) -> str:
        return f"tempauth user {self.user!r} at {self.authurl}"

    def login_key(self) -> tuple[Any, ...]:
        return (self.authurl, self.user, self._key, self.storage_url_override, self.verify)


class _FixedAuth(SwiftAuth):
    """Credentials given once, never renewed: a rejection is final, its message says what to do."""

    _KIND: str  # what they are, for describe()
    _REJECTED: str  # the message when the server refuses them, of {url}

    def __init__(self, url: str, token: str | None, *, verify: bool | str = True) -> None:
        url = check_url(url, "storage_url", _EXAMPLE)
        self._creds = SwiftCredentials(url, Secret(token) if token is not None else None)
        super().__init__(verify=verify)

    def _fetch(self) -> SwiftCredentials:
        return self._creds

    def _rejected(self) -> str:
        return self._REJECTED.format(url=self._creds.storage_url)

    def refresh_after_failure(self, failed: SwiftCredentials | None) -> SwiftCredentials:
        raise SwiftAuthError(self._rejected())

    def describe(self) -> str:
        return f"{self._KIND} {self._creds.storage_url}"


class PreAuth(_FixedAuth):
    """A storage URL and token obtained elsewhere (``OS_STORAGE_URL`` + ``OS_AUTH_TOKEN``).

    Cannot re-authenticate: a rejected token's error says to get a new one. With ``from_env``
    (as ``swift_auth_from_env`` makes it) a newer token in those variables, as ``acquire_token``
    or ``eval $(swift auth)`` leave it, is used first: a long-lived notebook picks it up.
    """

    def __init__(
        self, storage_url: str, token: str, *, verify: bool | str = True, from_env: bool = False
    ) -> None:
        super().__init__(storage_url, token, verify=verify)
        self.from_env = from_env

    def refresh_after_failure(self, failed: SwiftCredentials | None) -> SwiftCredentials:
        if self.from_env:
            url, token = os.environ.get("OS_STORAGE_URL"), os.environ.get("OS_AUTH_TOKEN")
            if url and token and Secret(token) != self._creds.token:
                self._creds = SwiftCredentials(url.rstrip("/"), Secret(token))
                return self._cache.refresh_after_failure(failed)
        return super().refresh_after_failure(failed)

    _KIND = "pre-authenticated token for"
    _REJECTED = (
        "Swift rejected the pre-authenticated token for {url}: it has expired or was revoked. "
        "Get a new one (`swift auth`, `zarrstores env swift`, or zarrstores.acquire_token(...)) "
        "or pass authurl/user/key so zarrstores can re-authenticate by itself"
    )


class AnonymousSwift(_FixedAuth):
    """No token: for public containers (read ACL ``.r:*``, listings with ``.rlistings``)."""

    def __init__(self, storage_url: str, *, verify: bool | str = True) -> None:
        super().__init__(storage_url, None, verify=verify)

    _KIND = "anonymous access to"
    _REJECTED = (
        "anonymous access to {url} was refused: the container is not public (its owner can run "
        "zarrstores.make_public(...)); pass credentials otherwise"
    )
