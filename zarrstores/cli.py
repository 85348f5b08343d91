"""The ``zarrstores`` command: ``serve`` local servers, show the ``token``, print exports."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .auth import (
    ZarrstoresError,
    format_exports,
    s3_credentials,
    s3_exports,
    swift_auth,
    swift_exports,
    token_source,
)
from .auth.loading import keystone_for_token


def _cmd_token(args: argparse.Namespace) -> int:
    source = token_source(token_file=args.token_file) if args.token_file else token_source()
    info = source.info()
    source.get()  # raises the clear error when empty, not a JWT, or expired
    fields = {name: getattr(info, name) for name in ("source", "subject", "issuer", "audience")}
    at, left = info.expires_at, info.expires_in
    fields["expires_at"] = datetime.fromtimestamp(at, UTC).isoformat() if at else None
    fields["expires_in"] = None if left is None else str(timedelta(seconds=int(left)))
    keystone = keystone_for_token(source)  # OS_AUTH_TYPE=v3oidcaccesstoken or such an OS_CLOUD
    if keystone is not None:
        who = keystone.identity()
        fields |= {
            "keystone_user": f"{who.user} (domain {who.user_domain}, id {who.user_id})",
            "keystone_project": f"{who.project} (domain {who.project_domain}, id {who.project_id})",
            "keystone_roles": ", ".join(who.roles),
        }
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        width = max(map(len, fields))
        for name, value in fields.items():
            print(f"{name:>{width}}: {value if value is not None else '-'}")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    if args.backend == "swift":
        auth = swift_auth(authurl=args.authurl, user=args.user, key=args.key)
        print(format_exports(swift_exports(auth.get(), auth), args.shell))
        return 0
    provider, endpoint = s3_credentials(
        args.endpoint, token_file=args.token_file, mc_alias_name=args.mc_alias
    )
    creds = provider.get()
    if creds is None:
        raise ZarrstoresError("anonymous access has no credentials to export")
    print(format_exports(s3_exports(creds, endpoint, alias=args.alias), args.shell))
    if creds.expires_at:
        left = timedelta(seconds=int(creds.expires_at - time.time()))
        print(f"# these credentials expire in {left}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def local_servers(args: argparse.Namespace) -> Iterator[tuple[dict[str, str], dict[str, dict]]]:
    """Start the servers of ``zarrstores serve`` (``args``: its parsed arguments); yield their
    exports and, by heading, alternatives to them."""
    from .devserver.oidc import OIDCIssuer
    from .devserver.rgw import RGWServer
    from .devserver.s3 import S3Server
    from .devserver.swift import SwiftServer

    base = Path(args.dir).resolve() if args.dir else None
    exports: dict[str, str] = {}
    alternatives: dict[str, dict[str, str]] = {}
    keystone = args.swift and args.keystone
    with contextlib.ExitStack() as stack:
        issuer = None
        if args.s3 or keystone or args.rgw:  # Keystone is federated with the issuer STS trusts
            issuer = stack.enter_context(OIDCIssuer())
            token_file = Path(args.token_file or (base or Path.cwd() / ".zarrstores") / "token")
            token_file.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(
                issuer.refresh_token_file(
                    token_file, every=args.refresh, expires_in=args.token_life
                )
            )
            exports["BEARER_TOKEN_FILE"] = str(token_file)
        if args.swift:
            swift = stack.enter_context(
                SwiftServer(
                    base / "swift" if base else None,
                    keystone=keystone,
                    oidc_issuer=issuer if keystone else None,
                )
            )
            exports |= swift.st_env()
            if keystone:
                unset = "(unset ST_AUTH ST_USER ST_KEY first):"
                oidc = f"# Keystone with the OIDC token of BEARER_TOKEN_FILE {unset}"
                alternatives[f"# Keystone v3 instead of tempauth {unset}"] = swift.os_env()
                alternatives[oidc] = swift.os_env("oidc")
        if args.s3:
            s3 = stack.enter_context(S3Server(issuer, base / "s3" if base else None))
            exports |= {"AWS_ENDPOINT_URL": s3.endpoint, "AWS_DEFAULT_REGION": s3.region}
        if args.rgw:
            rgw = stack.enter_context(RGWServer(issuer, base / "rgw" if base else None))
            both = rgw.st_env() | rgw.sts_env(token_file)
            if args.swift or args.s3:
                heading = "# Ceph RGW (Swift, and S3 with STS) instead of the servers above:"
                alternatives[heading] = both
            else:
                exports |= both
        yield exports, alternatives


def _cmd_serve(args: argparse.Namespace) -> int:
    if not (args.swift or args.s3 or args.rgw):
        raise ZarrstoresError("nothing to serve: drop --no-swift or --no-s3, or add --rgw")
    # SIGTERM stops as Ctrl-C does, so the context managers always stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    try:
        with local_servers(args) as (exports, alternatives):
            ready = f"ready in {time.monotonic() - started:.1f} s"
            lines = [f"# zarrstores local servers ({ready})", format_exports(exports)]
            for heading, more in alternatives.items():
                lines.append(heading)
                lines += ["# " + line for line in format_exports(more).splitlines()]
            lines.append("# Ctrl-C stops the servers.")
            text = "\n".join(lines)
            if args.env_file:
                Path(args.env_file).write_text(text + "\n")
            print(text, flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("# stopped", flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``zarrstores`` command's argument parser."""
    p = argparse.ArgumentParser(prog="zarrstores", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("token", help="where the OIDC token was found, its subject, time left")
    t.add_argument("--token-file", help="read this file instead of discovering the token")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=_cmd_token)

    e = sub.add_parser("env", help="print shell exports for swift / aws / mc / rclone")
    e.add_argument("backend", choices=["s3", "swift"])
    e.add_argument("--endpoint", help="S3 endpoint (default: AWS_ENDPOINT_URL[_S3])")
    e.add_argument("--token-file", help="OIDC token file (default: discovery)")
    e.add_argument("--mc-alias", help="take endpoint and keys from this mc alias")
    e.add_argument("--alias", default="zarrstores", help="name of the mc alias / rclone remote")
    e.add_argument("--authurl", help="Swift auth URL (default: ST_AUTH / OS_* variables)")
    e.add_argument("--user", help="Swift user (account:user for v1 auth)")
    e.add_argument("--key", help="Swift key (prefer ST_KEY: arguments show in `ps`)")
    e.add_argument("--shell", choices=["sh", "fish"], default="sh")
    e.set_defaults(func=_cmd_env)

    s = sub.add_parser("serve", help="run local Swift, Keystone and S3+STS servers")
    s.add_argument("--dir", help="keep data and config here (default: a temp dir, removed)")
    s.add_argument("--no-swift", dest="swift", action="store_false", help="no Swift")
    s.add_argument("--no-keystone", dest="keystone", action="store_false", help="no Keystone")
    s.add_argument("--no-s3", dest="s3", action="store_false", help="no S3/STS server")
    s.add_argument("--rgw", action="store_true", help="also Ceph RGW (needs the Ceph packages)")
    s.add_argument("--token-file", help="where to keep the OIDC token (default: DIR/token)")
    s.add_argument("--refresh", type=float, default=300, help="rewrite the token every N s")
    s.add_argument("--token-life", type=float, default=3600, help="token lifetime in s")
    s.add_argument("--env-file", help="also write the exports to this file")
    s.set_defaults(func=_cmd_serve)

    from .commands import register
    from .frames.cli import add_frames_parser

    register(sub)
    add_frames_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zarrstores`` console script."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ZarrstoresError, OSError) as e:
        print(f"zarrstores: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zarrstores: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
