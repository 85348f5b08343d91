"""What both backends share about the network: CA trust, proxies, byte ranges, error types and
per-event-loop aiohttp sessions. The protocols are the libraries' (obstore for S3, aiohttp for
Swift, requests and keystoneauth1 for auth); this module decides the policy they get, once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import ssl
import tempfile
import urllib.request
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import requests
from yarl import URL

from .auth._urls import hide_userinfo
from .auth.errors import AuthConnectionError, ConfigurationError, TransientError, ZarrstoresError

CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AWS_CA_BUNDLE")  # read in this order


class StorageError(ZarrstoresError, OSError):
    """The storage server answered with an error: ``status`` (0 when it could not be reached)
    and, where the server says one, its error ``code`` (S3's ``NoSuchBucket``...)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:  # status and code survive pickling (dask)
        return functools.partial(type(self), status=self.status, code=self.code), (str(self),)


class StoragePermissionError(StorageError, PermissionError):
    """The server refused the operation (403) or the credentials (401)."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The object, container or bucket does not exist (404)."""


def error_for_status(
    message: str,
    status: int,
    code: str = "",
    *,
    kinds: tuple[type[StorageError], type[StorageError], type[StorageError]],
) -> StorageError:
    """The one status -> exception mapping, with ``status`` and ``code``: 404 -> the
    ``FileNotFoundError`` kind of ``kinds``, 401/403 -> the ``PermissionError`` one, else plain."""
    plain, denied, missing = kinds
    cls = missing if status == 404 else denied if status in (401, 403) else plain
    return cls(message, status=status, code=code)


def check_header_values(what: str, *values: str | None) -> None:
    """Raise ``ConfigurationError`` when a credential that travels in a header holds a control
    character (a CR LF would split it into two headers): the libraries refuse to send it."""
    if any(v and not v.isprintable() for v in values):
        raise ConfigurationError(
            f"the {what} contains a control character (a line break?): check where it came "
            "from (a file with Windows line ends, a pasted value) and remove it"
        )


def tls_error_text(origin: str, detail: str = "") -> str:
    """The one message for a server certificate that is not trusted (auth and data alike)."""
    return (
        f"TLS verification failed for {origin}: pass verify='/path/to/ca.pem' or cacert= (a CA "
        "file or directory) or set SSL_CERT_FILE (verify=False skips the check)"
    ) + (f"\n{detail}" if detail else "")


# -- CA trust ---------------------------------------------------------------------------------
def ca_location(verify: bool | str | os.PathLike[str] | None = True) -> bool | str:
    """The CA policy for every request, auth and data alike: ``False`` (no checking, only when
    asked), a path (a PEM bundle or a directory of certificates) from ``verify`` or else
    ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` / ``AWS_CA_BUNDLE``, or ``True`` for the
    system store. Raises ``ConfigurationError`` for a path that does not exist."""
    if verify is False:
        return False
    if verify is None or verify is True:
        verify = next((os.environ[v] for v in CA_ENV_VARS if os.environ.get(v)), True)
        if verify is True:
            return True
    path = os.fspath(verify)
    if not os.path.exists(path):
        raise ConfigurationError(
            f"CA bundle {path!r} does not exist: pass verify= (or cacert=) the path of a PEM "
            "file or a directory of certificates"
        )
    return path


def ca_file(where: str) -> str:
    """A PEM file of the certificates at ``where``: the file itself, or for a directory its
    certificates gathered into one file (any names: no ``c_rehash`` needed)."""
    if not os.path.isdir(where):
        return where
    files = (p.read_bytes() for p in sorted(Path(where).iterdir()) if p.is_file())
    bundle = b"".join(f.strip() + b"\n" for f in files if b"-----BEGIN CERTIFICATE-----" in f)
    digest = hashlib.sha256(bundle).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"zarrstores-ca-{digest}.pem"
    if not path.exists():
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(bundle)
        part.replace(path)
    return str(path)


def ssl_context(verify: bool | str | os.PathLike[str] | None = True) -> ssl.SSLContext:
    """An ``SSLContext`` for ``ca_location(verify)``, shared while its CA file is unchanged
    (loading the system store takes ~20 ms: once, not at every new session)."""
    where = ca_location(verify)
    cafile = ca_file(where) if isinstance(where, str) else None
    file = os.stat(cafile) if cafile else None  # a file replaced or rewritten is read again
    return _context(where is False, cafile, file and (file.st_ino, file.st_mtime_ns, file.st_size))


@functools.lru_cache(maxsize=16)
def _context(unverified: bool, cafile: str | None, _: object) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if unverified:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


AUTH_CONNECT_TIMEOUT = 5.0
"""Seconds an auth request waits for each of a host's addresses to connect. requests (urllib3)
tries them one after another, without happy eyeballs (urllib3 issue 797): this is what a broken
IPv6 route costs a login before it goes over IPv4."""


def requests_options(
    verify: bool | str | os.PathLike[str] | None, proxy: str | None, url: str, read: float = 30.0
) -> dict[str, Any]:
    """``verify=``, ``proxies=`` and ``timeout=`` for requests (and keystoneauth1's session):
    the CA and proxy policy of the data path, with the system store (not certifi's) by
    default; ``AUTH_CONNECT_TIMEOUT`` per address to connect, ``read`` seconds to answer."""
    where = ca_location(verify)
    if where is True:
        paths = ssl.get_default_verify_paths()
        where = paths.cafile or paths.capath or True
    elif isinstance(where, str):
        where = ca_file(where)  # requests reads only c_rehash'ed directories
    chosen = proxy_for(url, proxy)
    return {
        "verify": where,
        "proxies": {"http": chosen, "https": chosen} if chosen else None,
        "timeout": (min(AUTH_CONNECT_TIMEOUT, read), read),
    }


def auth_request(
    method: str,
    url: str,
    *,
    what: str,
    check: str,
    verify: bool | str | os.PathLike[str] | None,
    proxy: str | None,
    read: float = 30.0,
    origin: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One auth request through requests (Swift v1 auth, STS) with the data path's CA and proxy
    policy. An untrusted certificate (of ``origin``, else ``url``) is ``AuthConnectionError``;
    no answer, or a 5xx, is ``TransientError`` (worth a retry), but not 501: the address does
    not do this at all. ``what`` names the service in messages, ``check`` the option to fix."""
    try:
        r = requests.request(method, url, **requests_options(verify, proxy, url, read), **kwargs)
    except requests.exceptions.SSLError:
        raise AuthConnectionError(tls_error_text(origin or url)) from None
    except requests.exceptions.RequestException as e:
        raise TransientError(
            f"cannot reach {what} ({type(e).__name__}): {check_unreachable(url, proxy, check)}"
        ) from None
    if r.status_code >= 500 and r.status_code != 501:
        raise TransientError(f"{what} answered {r.status_code}")
    return r


# -- proxies ----------------------------------------------------------------------------------
def check_unreachable(url: str, proxy: str | None, check: str) -> str:
    """What to check when ``url`` gave no answer: ``check`` and the server, or, when a proxy
    is in the way (``proxy=`` or the environment), that proxy, shown without a password."""
    if via := proxy_for(url, proxy):
        return f"check the proxy {hide_userinfo(via)} (proxy=/HTTPS_PROXY) and {check}"
    return f"check {check} and that the server is up"


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_PROXY_VARS += tuple(v.lower() for v in _PROXY_VARS)
# os.environ.get raises and catches a KeyError for each absent name (10 us a request for the
# eight): its own dict of encoded names is read instead, the same values without the detour.
_PROXY_KEYS = tuple(os.environ.encodekey(name) for name in _PROXY_VARS)


def proxy_for(url: str | URL, proxy: str | None = None) -> str | None:
    """The proxy for ``url``: ``proxy`` (the ``proxy=`` option), else ``HTTP_PROXY`` /
    ``HTTPS_PROXY`` / ``ALL_PROXY`` (either case) as urllib reads them; None when there is none
    or ``NO_PROXY`` exempts the host. Cached while those variables stay the same (aiohttp's
    ``trust_env`` reads them, and ~/.netrc, again at every request: twice the CPU per chunk)."""
    snapshot = tuple(map(os.environ._data.get, _PROXY_KEYS))
    if not proxy and not any(snapshot):
        return None
    target = url if isinstance(url, URL) else URL(url)
    return _proxy(snapshot, target.scheme, target.host or "", proxy)


@functools.lru_cache(maxsize=256)
def _proxy(
    snapshot: tuple[str | None, ...], scheme: str, host: str, proxy: str | None
) -> str | None:
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxy or proxies.get(scheme) or proxies.get("all")


# -- byte ranges ------------------------------------------------------------------------------
def http_range(start: int, end: int | None) -> str | None:
    """The ``Range`` header for fsspec's ``(start, end)`` (end exclusive, negative start = the
    last bytes; both >= 0 or a suffix): None for the whole object."""
    if start < 0:
        return f"bytes={start}"
    if end is None:
        return f"bytes={start}-" if start else None
    return f"bytes={start}-{end - 1}"


def slice_whole(body: bytes, start: int, end: int | None) -> bytes:
    """The requested bytes of a whole object (a server that ignored ``Range`` sent it all)."""
    return body[slice(*absolute_range(start, end, len(body)))]


def absolute_range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """fsspec's (start, end) against a known size: negatives count from the end."""
    first = max(0, size + start) if start < 0 else start
    last = size if end is None else (size + end if end < 0 else end)
    return first, min(last, size)


def check_version(
    url: str, expected: str | None, got: str | None, error: type[StorageError]
) -> None:
    """``error`` (status 412) when an answer's ETag ``got`` is not the ``expected`` one (both
    compared here: Ceph RGW refuses ``If-Match`` with its own SLO ETags). Either missing: not
    checked; a part without an ETag is checked by its length only."""
    if expected and got and got.strip('"') != expected.strip('"'):
        text = f"{url} changed while it was read (no longer ETag {expected}): read it again"
        raise error(text, status=412)


# -- aiohttp sessions, one per event loop -----------------------------------------------------
def call_on_loop(loop: asyncio.AbstractEventLoop, close: Callable[..., None], *args: Any) -> None:
    """Run ``close(*args)`` (a finalizer closing sockets) on ``loop``'s thread if that loop
    runs in another thread, else right here."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if loop.is_running() and loop is not here:
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(close, *args)
            return
    close(*args)


def _close_now(session: aiohttp.ClientSession) -> None:
    connector = session.connector
    if connector is not None and not connector.closed:
        with contextlib.suppress(RuntimeError):
            # close() would schedule a task to await TLS goodbyes: impossible on a stopped loop.
            connector._close(abort_ssl=True)  # type: ignore[call-arg]


def _discard(sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession]) -> None:
    for loop, session in list(sessions.items()):
        call_on_loop(loop, _close_now, session)
    sessions.clear()


class LoopSessions:
    """One aiohttp session per event loop (sessions cannot cross loops), closed when the owner
    is dropped or the loop is gone. Proxies: pass ``proxy=proxy_for(url, ...)`` per request
    (the environment's, cached, instead of aiohttp's ``trust_env``)."""

    def __init__(self, verify: Any = True, limit: int = 64, timeout: float = 60.0) -> None:
        self.verify = verify
        self.limit = limit
        # No total limit, which would cut off large objects on slow links: a request fails
        # when connecting, or waiting for the next bytes of the answer, takes too long.
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        weakref.finalize(self, _discard, self._sessions)

    def __reduce__(self) -> tuple[Any, ...]:  # a copy starts without sessions
        return LoopSessions, (self.verify, self.limit, self.timeout.sock_read)

    def get(self) -> aiohttp.ClientSession:
        """The running loop's session (made on first use)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            for old in [lp for lp in list(self._sessions) if lp.is_closed()]:
                gone = self._sessions.pop(old, None)
                if gone is not None:
                    _close_now(gone)
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.limit,
                    ssl=ssl_context(self.verify),
                    ttl_dns_cache=300,
                    happy_eyeballs_delay=0.25,  # IPv4 fallback when an IPv6 route is broken
                ),
                timeout=self.timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        return session

    async def close(self) -> None:
        """Close the running loop's session."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()
