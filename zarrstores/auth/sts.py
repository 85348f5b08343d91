"""STS ``AssumeRoleWithWebIdentity`` as MinIO does it, and credentials that stay fresh."""

from __future__ import annotations

import copy
import getpass
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime

from ._refresh import CachedCredentials, RefreshingCache, expires_at
from ._secret import Secret, redact
from .errors import ConfigurationError, STSError
from .s3 import S3CredentialProvider, S3Credentials, check_endpoint
from .tokens import TokenSource, token_source

log = logging.getLogger("zarrstores.auth")

MIN_DURATION, MAX_DURATION = 900, 43200

_HINTS = {
    "InvalidIdentityToken": "the server did not accept the OIDC token: check that it comes "
    "from the identity provider this server trusts and is meant for it (iss, aud)",
    "ExpiredToken": "the OIDC token has expired: check that sts-wire / oidc-agent refreshes it",
    "InvalidParameterValue": "the server rejected a parameter of the request (token, "
    "DurationSeconds, RoleSessionName or Policy)",
}
_ROLE_HINT_WITHOUT = (
    "the token grants no policy here (its `policy` claim) and no role was named: pass "
    "role_arn= or set AWS_ROLE_ARN (Ceph RGW always needs a role)"
)
_ROLE_HINT_WITH = (
    "the role was refused: check role_arn / AWS_ROLE_ARN, and that the role trusts the "
    "token's issuer and audience (aud)"
)


def _session_name() -> str:
    name = f"zarrstores-{getpass.getuser()}-{os.getpid()}"
    return re.sub(r"[^\w+=,.@-]", "-", name)[:64]


def _check_duration(duration: int) -> None:
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ConfigurationError(
            f"duration={duration} is outside {MIN_DURATION}..{MAX_DURATION} seconds"
        )


def _find(root: ET.Element, name: str) -> str:
    return (root.findtext(f".//{{*}}{name}") or "").strip()  # in any namespace, or none


def assume_role_with_web_identity(
    endpoint_url: str,
    token: str,
    *,
    role_arn: str | None = None,
    session_name: str | None = None,
    duration: int = 3600,
    session_policy: str | None = None,
    verify: bool | str = True,
    timeout: float = 30.0,
    proxy: str | None = None,
) -> S3Credentials:
    """Exchange an OIDC access token for temporary S3 keys at ``endpoint_url``.

    A form POST to the S3 endpoint itself (as MinIO serves STS); ``role_arn`` is optional.
    Raises ``STSError`` (server's code and message), ``AuthConnectionError`` (TLS) or
    ``TransientError`` (unreachable, 5xx: worth a retry). The token is in no message.
    """
    _check_duration(duration)
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "WebIdentityToken": token,
        "RoleSessionName": session_name or _session_name(),
        "DurationSeconds": str(duration),
    }
    form |= {k: v for k, v in (("RoleArn", role_arn), ("Policy", session_policy)) if v}
    url = check_endpoint(endpoint_url) + "/"
    from .._transport import auth_request

    r = auth_request(
        "POST",
        url,
        data=form,
        what=f"the STS endpoint {endpoint_url}",
        check="endpoint_url",
        verify=verify,
        proxy=proxy,
        read=timeout,
        origin=endpoint_url,
    )
    text = redact(r.text, token)
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise STSError(
            f"STS endpoint {endpoint_url} answered {r.status_code} with no STS XML: is it an "
            "S3/MinIO endpoint with STS enabled?",
            status=r.status_code,
        ) from None
    if r.status_code != 200 or root.tag.endswith("ErrorResponse"):
        # MinIO answers <ErrorResponse><Error>..., Ceph RGW a bare S3-style <Error> with an
        # empty Message, and AccessDenied for every refusal (token, audience, role).
        code = _find(root, "Code") or "Unknown"
        message = _find(root, "Message")
        hint = _HINTS.get(code, "")
        if code == "AccessDenied":
            hint = _ROLE_HINT_WITH if role_arn else _ROLE_HINT_WITHOUT
        raise STSError(
            f"STS AssumeRoleWithWebIdentity at {endpoint_url} failed: {code}"
            + (f": {message}" if message else "")
            + (f" ({hint})" if hint else ""),
            code=code,
            status=r.status_code,
        )
    fields = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    access_key, secret, session_token, expiration = (_find(root, name) for name in fields)
    if not access_key or not secret:
        raise STSError(f"STS response from {endpoint_url} holds no credentials", status=200)
    return S3Credentials(
        access_key=access_key,
        secret_key=Secret(secret),
        session_token=Secret(session_token) if session_token else None,
        expires_at=datetime.fromisoformat(expiration).timestamp() if expiration else None,
    )


class STSCredentials(CachedCredentials[S3Credentials], S3CredentialProvider):
    """Temporary S3 keys from an OIDC token, exchanged again before they expire.

    The token is read from its source at every exchange (never refreshed here). Safe to share
    between threads and event loops: concurrent callers share one exchange (``exchanges``).
    """

    can_refresh = True

    def __init__(
        self,
        endpoint_url: str,
        token: str | TokenSource | Callable[[], str] | None = None,
        *,
        token_file: str | os.PathLike[str] | None = None,
        role_arn: str | None = None,
        duration: int = 3600,
        session_policy: str | None = None,
        verify: bool | str = True,
        advisory: float | None = None,
        mandatory: float | None = None,
        proxy: str | None = None,
    ) -> None:
        self.endpoint_url = check_endpoint(endpoint_url)
        self.token_source = token_source(token, token_file)
        self.role_arn = role_arn
        self.duration = duration
        self.session_policy = session_policy
        self.verify = verify
        self.proxy = proxy  # of the exchanges; None: HTTPS_PROXY... from the environment
        self._cache: RefreshingCache[S3Credentials] = RefreshingCache(
            self._exchange, expires_at, advisory=advisory, mandatory=mandatory
        )
        _check_duration(duration)

    def _exchange(self) -> S3Credentials:
        token = self.token_source.get()
        log.debug(
            "STS exchange at %s with token from %s", self.endpoint_url, self.token_source.describe()
        )
        return assume_role_with_web_identity(
            self.endpoint_url,
            token,
            role_arn=self.role_arn,
            duration=self.duration,
            session_policy=self.session_policy,
            verify=self.verify,
            proxy=self.proxy,
        )

    def with_proxy(self, proxy: str | None) -> STSCredentials:
        """These credentials exchanged through ``proxy``: a copy with a cache of its own (this
        object is left as it is), or this object when ``proxy`` is already its own."""
        if proxy == self.proxy:
            return self
        clone = copy.copy(self)
        clone.proxy = proxy
        cache = self._cache
        clone._cache = RefreshingCache(
            clone._exchange, expires_at, advisory=cache._advisory, mandatory=cache._mandatory
        )
        return clone

    def describe(self) -> str:
        return f"STS credentials from the OIDC token in {self.token_source.describe()}"

    def __repr__(self) -> str:
        return f"STSCredentials({self.endpoint_url!r}, token_source={self.token_source!r})"
