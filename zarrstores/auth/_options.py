"""Option names users pass that nothing takes (a typo, or another tool's name): a message that
names the likely one and those there are, before any login or request."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigurationError
from .keystone import plugin_options
from .loading import s3_credentials, swift_auth

# The named options of swift_auth and s3_credentials (env: the environment read, no option).
_SWIFT_AUTH = tuple(
    p.name
    for p in inspect.signature(swift_auth).parameters.values()
    if p.kind != p.VAR_KEYWORD and p.name != "env"
)
_S3_CREDENTIALS = tuple(p for p in inspect.signature(s3_credentials).parameters if p != "env")


def unknown_swift_option(options: Mapping[str, Any], *, also: Iterable[str] = ()) -> str | None:
    """The message for a name in Swift ``options`` that nothing takes (a typo, most often),
    or None. Without ``auth_type``, ``auth_url`` or ``cloud``, other names go to Keystone's
    ``password`` login, whose own check would list only its options; ``also``: names the
    caller takes besides ``swift_auth``'s, for the suggestion."""
    if any(options.get(k) for k in ("auth_type", "auth_url", "cloud", "auth")):
        return None  # the auth type chosen checks its own options
    extra = set(options) - set(_SWIFT_AUTH)
    if not extra or not (unknown := sorted(extra - set(plugin_options("password")))):
        return None
    keystone = ", and with auth_type= a Keystone auth type's own"
    return unknown_option_text("Swift", unknown[0], [*_SWIFT_AUTH, *also], more=keystone)


# Names other tools use for an option, where spelling alone would suggest another.
_SYNONYMS = {
    "anonymous": "anon",
    "endpoint": "endpoint_url",
    "access_key": "key",
    "aws_access_key_id": "key",
    "secret_key": "secret",
    "aws_secret_access_key": "secret",
    "ca_bundle": "verify",
}


def unknown_option_text(kind: str, name: str, known: Iterable[str], more: str = "") -> str:
    """'unknown {kind} storage option {name!r} (did you mean ...?)' and the known names."""
    close = [_SYNONYMS[name]] if _SYNONYMS.get(name) in known else []
    close = close or difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    names = ", ".join(sorted(set(known)))
    return f"unknown {kind} storage option {name!r}{hint}\nThe options are {names}{more}."


def check_s3_options(options: Mapping[str, Any], *, also: Iterable[str] = ()) -> None:
    """``ConfigurationError`` for a name in ``options`` that ``s3_credentials`` does not take
    (``also``: the caller's own names, for the suggestion)."""
    if unknown := sorted(set(options) - set(_S3_CREDENTIALS)):
        shown = [p for p in _S3_CREDENTIALS if p != "mc_alias_name"]  # stores say mc_alias
        raise ConfigurationError(unknown_option_text("S3", unknown[0], [*shown, *also]))
