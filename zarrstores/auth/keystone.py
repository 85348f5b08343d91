"""Keystone auth for Swift: any auth type keystoneauth1 ships, built by its own loaders.

A ``v3oidcaccesstoken`` token is read again before every login (oidc-agent or sts-wire keep its
file fresh), so a long job keeps going.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ._secret import Secret
from ._urls import check_url
from .errors import AuthConnectionError, ConfigurationError, SwiftAuthError, TransientError
from .swift import SwiftAuth, SwiftCredentials
from .tokens import TokenSource, sharing_key, token_source

OIDC_ACCESS_TOKEN = "v3oidcaccesstoken"


def _discovery_warning_only_when_debugging(record: logging.LogRecord) -> bool:
    """keystoneauth warns at each login attempt that a Keystone it cannot reach has no version
    document (4 lines before our error, on stderr of a notebook); kept for debug logging."""
    if record.levelno == logging.WARNING and str(record.msg).startswith("Failed to discover"):
        return logging.getLogger("keystoneauth").isEnabledFor(logging.DEBUG)
    return True


logging.getLogger("keystoneauth.identity.generic.base").addFilter(
    _discovery_warning_only_when_debugging
)

_INTERFACES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin"}
_USER = ("username", "user_id")
_WHO = (*_USER, "application_credential_id", "application_credential_name")
# What a login needs beyond the loader's required options (keystoneauth leaves these optional
# because several alternatives exist): auth type -> alternatives, one of each tuple.
_NEEDED: dict[str, tuple[tuple[str, ...], ...]] = {
    **dict.fromkeys(("password", "v3password", "v2password"), (("password",), _USER)),
    **dict.fromkeys(("token", "v3token", "v2token"), (("token",),)),
    "v3totp": (("passcode",), _USER),
    "v3applicationcredential": (("application_credential_id", "application_credential_name"),),
}


def env_var(option: str) -> str:
    """The ``OS_*`` variable of a keystoneauth1 option (``project_name`` -> OS_PROJECT_NAME)."""
    return "OS_" + option.replace("-", "_").upper()


def plugin_loader(auth_type: str) -> Any:
    """keystoneauth1's loader of ``auth_type``; ConfigurationError naming the known ones."""
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import loading

    try:
        return loading.get_plugin_loader(auth_type)
    except ks_exc.NoMatchingPlugin:
        known = ", ".join(sorted(loading.get_available_plugin_names()))
        raise ConfigurationError(
            f"unknown Keystone auth type {auth_type!r}: set OS_AUTH_TYPE / auth_type to one "
            f"keystoneauth1 knows:\n  {known}"
        ) from None


def plugin_options(auth_type: str, methods: list[str] | None = None) -> dict[str, Any]:
    """The options of ``auth_type`` (and of each of ``methods``: v3multifactor) by ``dest``."""
    names = [auth_type, *(methods or ())]
    return {opt.dest: opt for name in names for opt in plugin_loader(name).get_options()}


def _methods(value: Any) -> list[str]:
    if isinstance(value, str):
        return [m.strip() for m in value.split(",") if m.strip()]
    return list(value or ())


@dataclass(frozen=True)
class KeystoneIdentity:
    """Who a Keystone login is: user, project and how (for ``zarrstores token``)."""

    user: str | None
    user_id: str | None
    user_domain: str | None
    project: str | None
    project_id: str | None
    project_domain: str | None
    roles: tuple[str, ...]
    federated: bool


class KeystoneAuth(SwiftAuth):
    """Keystone through keystoneauth1's loaders: every auth type they ship.

    ``options`` are the plugin's options (``username``, ``project_name``, ``identity_provider``...,
    dashes or underscores). The object-store endpoint comes from the catalog (``region_name``,
    ``interface``) unless ``storage_url`` is given. For ``v3oidcaccesstoken``, ``access_token``
    may also be a ``TokenSource`` or a callable, ``access_token_file`` a token file; without
    either, token discovery finds the token, read again before every login.
    Raises ConfigurationError for an unknown auth type, an unknown or a missing option.
    """

    def __init__(
        self,
        auth_url: str | None = None,
        *,
        auth_type: str = "password",
        region_name: str | None = None,
        interface: str | None = "public",
        storage_url: str | None = None,
        verify: bool | str = True,
        **options: Any,
    ) -> None:
        given = {k.replace("-", "_"): v for k, v in options.items() if v is not None}
        if auth_url:
            given["auth_url"] = auth_url
        known = plugin_options(auth_type, _methods(given.get("auth_methods")))
        self.token_source: TokenSource | None = None
        if auth_type == OIDC_ACCESS_TOKEN:
            # A value, a TokenSource, a callable, a file, or else discovery: read at each login.
            self.token_source = token_source(
                given.pop("access_token", None), given.pop("access_token_file", None)
            )
        _check(auth_type, known, set(given) | ({"access_token"} if self.token_source else set()))
        if given.get("auth_url"):
            url = check_url(given["auth_url"], "auth_url", "https://keystone.example.org:5000/v3")
            # /v3 appended when the URL names no API version (v1/v2 types: left as they are)
            versioned = re.search(r"/v\d+(\.\d+)?$", url) or auth_type.startswith(("v2", "v1"))
            given["auth_url"] = url if versioned else url + "/v3"
        self.auth_url: str = given.get("auth_url", "")
        self.auth_type = auth_type
        self.region_name = region_name
        interface = interface or "public"
        self.interface = _INTERFACES.get(interface, interface)
        self._options = {
            k: (Secret(v) if known[k].secret and isinstance(v, str) else v)
            for k, v in given.items()
        }
        self._identity: KeystoneIdentity | None = None
        super().__init__(storage_url=storage_url, verify=verify)
        self._plugin(access_token="checked at login")  # keystoneauth1's own checks, now

    @property
    def options(self) -> dict[str, Any]:
        """The plugin options given, secret ones as ``Secret``."""
        return dict(self._options)

    def option(self, name: str) -> Any:
        """A non-secret option's value (None if unset); secret ones are never returned."""
        value = self._options.get(name)
        return None if isinstance(value, Secret) else value

    def _plugin(self, access_token: str | None = None) -> Any:
        """keystoneauth1's plugin for these options; ConfigurationError if it refuses them."""
        from keystoneauth1 import exceptions as ks_exc

        options = {k: v.reveal() if isinstance(v, Secret) else v for k, v in self._options.items()}
        if "auth_methods" in options:
            options["auth_methods"] = _methods(options["auth_methods"])
        if self.token_source is not None:
            # Read at every login: the file's writer may have replaced the token since.
            options["access_token"] = access_token or self.token_source.get()
        try:
            return plugin_loader(self.auth_type).load_from_options(**options)
        except (ks_exc.OptionError, ks_exc.AuthPluginException, TypeError, ValueError) as e:
            raise ConfigurationError(
                f"Keystone auth type {self.auth_type!r} options refused: {e}"
            ) from None

    def _fetch(self) -> SwiftCredentials:
        from keystoneauth1 import exceptions as ks_exc
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity.base import BaseIdentityPlugin

        from .._transport import requests_options

        plugin = self._plugin()
        # The one CA and proxy policy of every request, auth included.
        options = requests_options(self.verify, self.proxy, self.auth_url)
        http = requests.Session()
        http.proxies.update(options["proxies"] or {})
        session = ks_session.Session(auth=plugin, verify=options["verify"], session=http)
        # requests' (connect, read) pair, passed on as it is (keystoneauth's timeout= takes one
        # number; without one a login waits minutes per address on a broken IPv6 route).
        session.timeout = options["timeout"]
        try:
            if isinstance(plugin, BaseIdentityPlugin):
                # One login for its token, catalog and identity: asking the session twice would
                # log in twice when Keystone's tokens live under keystoneauth's 120 s margin.
                ref = plugin.get_access(session)
                token, expires = ref.auth_token, ref.expires and ref.expires.timestamp()
                self._identity = KeystoneIdentity(
                    user=ref.username,
                    user_id=ref.user_id,
                    user_domain=ref.user_domain_name,
                    project=ref.project_name,
                    project_id=ref.project_id,
                    project_domain=ref.project_domain_name,
                    roles=tuple(ref.role_names or ()),
                    federated=bool(ref.is_federated),
                )
                endpoint = self.storage_url_override or ref.service_catalog.url_for(
                    service_type="object-store",
                    interface=self.interface,
                    region_name=self.region_name,
                )
            else:  # none, admin_token, http_basic: no login, no catalog
                token, expires = session.get_token(), None
                endpoint = self.storage_url_override or session.get_endpoint(
                    service_type="object-store", interface=self.interface
                )
        except ks_exc.ClientException as e:
            raise self._error(e) from None
        if not endpoint:
            raise ConfigurationError(
                f"Keystone at {self.auth_url} gave no object-store endpoint: pass storage_url"
            )
        return SwiftCredentials(endpoint.rstrip("/"), Secret(token) if token else None, expires)

    def identity(self) -> KeystoneIdentity:
        """Who the current login is (logging in first if this object has not yet)."""
        if self._identity is None:
            self._cache.invalidate()
            self.get()
        assert self._identity is not None, f"{self.auth_type} gives no user or project"
        return self._identity

    def _error(self, e: Exception) -> Exception:
        """The exception to raise for keystoneauth1's ``e``: a first line saying what to check,
        then what Keystone said."""
        from keystoneauth1 import exceptions as ks_exc

        at = f"Keystone at {self.auth_url}"
        http = isinstance(e, ks_exc.HttpError)
        said = (
            "\nKeystone said: " + re.sub(r"\s*\(HTTP \d+\).*", "", str(e.message)) if http else ""
        )
        v3 = "is it Keystone's v3 endpoint, e.g. https://keystone.example.org:5000/v3?"
        if isinstance(e, ks_exc.SSLError):
            from .._transport import tls_error_text

            return AuthConnectionError(tls_error_text(self.auth_url))
        if isinstance(e, ks_exc.ConnectionError):
            from .._transport import check_unreachable

            check = check_unreachable(self.auth_url, self.proxy, "the URL")
            return TransientError(f"cannot reach {at}: {check}")
        if isinstance(e, ks_exc.EndpointNotFound):
            return ConfigurationError(
                f"{at} lists no object-store endpoint (interface={self.interface!r}, "
                f"region={self.region_name!r}); pass region_name/interface, or storage_url"
            )
        if http and e.http_status >= 500:
            return TransientError(f"{at} answered {e.http_status}{said}")
        if http and "identity_provider" in self._options:
            return self._federation_error(e, at, said)
        if isinstance(e, ks_exc.Unauthorized):
            kind = "password" if self.auth_type.endswith("password") else self.auth_type
            return SwiftAuthError(
                f"{at} rejected the {kind} credentials: check "
                f"{self._credential_variables()}, the project and the domains{said}"
            )
        if isinstance(e, ks_exc.Forbidden):
            return SwiftAuthError(
                f"{at} refused the {self.auth_type} login (403): check what these credentials "
                f"may do{said}"
            )
        if isinstance(e, ks_exc.DiscoveryFailure):
            return SwiftAuthError(f"{at} answered no Keystone version document: {v3}\n{e}")
        if http:
            return SwiftAuthError(f"{at} answered {e.http_status}: {v3}{said}")
        return SwiftAuthError(f"Keystone {self.auth_type} login failed: {type(e).__name__}: {e}")

    def _federation_error(self, e: Any, at: str, said: str) -> Exception:
        idp, protocol = self._options["identity_provider"], self._options.get("protocol")
        names = f"identity provider {idp!r}, protocol {protocol!r}"
        if e.http_status == 404:
            return ConfigurationError(
                f"{at} knows no {names}: check OS_IDENTITY_PROVIDER and OS_PROTOCOL{said}"
            )
        if e.http_status == 401 and "unsupported method" in str(e.message):
            return ConfigurationError(
                f"{at} has no auth method for protocol {protocol!r} ({names}): check OS_PROTOCOL "
                f"(usually 'openid' for OIDC){said}"
            )
        where = self.token_source.describe() if self.token_source else "OS_ACCESS_TOKEN"
        return SwiftAuthError(
            f"{at} refused the federated login ({e.http_status}, {names}): check the token "
            f"from {where}{said}\nThe token's issuer must be among the identity provider's "
            "remote_ids, its audience and expiry valid, and its claims must match the mapping."
        )

    def login_key(self) -> tuple[Any, ...]:
        token = self.token_source and sharing_key(self.token_source)
        where = (self.region_name, self.interface, self.storage_url_override, self.verify)
        return (self.auth_type, token, *where, *sorted(self._options.items()))

    def _credential_variables(self) -> str:
        """The ``OS_*`` variables of who logs in and the secret, e.g. OS_USERNAME/OS_PASSWORD."""
        known = plugin_options(self.auth_type, _methods(self._options.get("auth_methods")))
        given = [o for o in known.values() if o.dest in self._options]
        names = [o.name for o in given if o.dest in _WHO] + [o.name for o in given if o.secret]
        text = "/".join(env_var(n) for n in names) or "the credentials"
        if self.auth_type == "v3applicationcredential":
            return f"the application credential ({text})"
        return text

    def describe(self) -> str:
        if self.token_source is not None or "identity_provider" in self._options:
            idp, protocol = self._options.get("identity_provider"), self._options.get("protocol")
            where = f", token from {self.token_source.describe()}" if self.token_source else ""
            return f"Keystone {self.auth_type} via {idp!r}/{protocol!r}{where} at {self.auth_url}"
        who = [str(self._options[k]) for k in _WHO if k in self._options]
        return " ".join(["Keystone", self.auth_type, *who[:1], "at", self.auth_url])


def _check(auth_type: str, known: Mapping[str, Any], given: set[str]) -> None:
    """ConfigurationError naming an unknown option, or the first missing one and its variable."""
    if unknown := sorted(given - set(known)):
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        raise ConfigurationError(
            f"Keystone auth type {auth_type!r} has no option {', '.join(map(repr, unknown))}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; its options are:\n  {', '.join(sorted(known))}"
        )
    missing = [o for o in known.values() if o.required and o.dest not in given]
    missing += [known[group[0]] for group in _NEEDED.get(auth_type, ()) if not given & set(group)]
    if missing:
        opt = missing[0]
        raise ConfigurationError(
            f"Keystone auth type {auth_type!r} needs option {opt.dest!r}: "
            f"{env_var(opt.name)} is not set (or pass {opt.dest}=... in storage_options)"
        )


def keystone_options_from_env(env: Mapping[str, str], auth_type: str) -> dict[str, Any]:
    """The options of ``auth_type`` found in ``OS_*`` variables, as the openstack CLI reads
    them (an option's own variable, then those of its deprecated names)."""
    known = plugin_options(auth_type, _methods(env.get("OS_AUTH_METHODS")))
    options: dict[str, Any] = {}
    for dest, opt in known.items():
        if value := next((env[var] for var in opt.argparse_envvars if env.get(var)), None):
            options[dest] = value
    # The swift CLI's name for a Keystone token is OS_AUTH_TOKEN.
    if "token" in known and env.get("OS_AUTH_TOKEN"):
        options.setdefault("token", env["OS_AUTH_TOKEN"])
    return options
