"""``zarrstores frames serve``: the Shoots-compatible Flight server from the command line."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from ..auth import ConfigurationError

__all__ = ["add_frames_parser"]


def add_frames_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``frames serve`` to the ``zarrstores`` command's subcommands."""
    frames = sub.add_parser("frames", help="dataframes as Parquet: the Shoots-compatible server")
    actions = frames.add_subparsers(dest="frames_command", required=True)
    s = actions.add_parser("serve", help="serve a frame store over Arrow Flight (Shoots protocol)")
    s.add_argument(
        "--root",
        default=os.environ.get("ZARRSTORES_FRAMES_ROOT"),
        help="swift://container/prefix or minio://bucket/prefix (default: ZARRSTORES_FRAMES_ROOT)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8081, help="port to listen on (Shoots' default)")
    s.add_argument("--tls-cert", help="TLS certificate (PEM file)")
    s.add_argument("--tls-key", help="TLS private key (PEM file)")
    s.add_argument(
        "--secret",
        default=os.environ.get("ZARRSTORES_FRAMES_SECRET"),
        help="require JWTs signed with this (prefer ZARRSTORES_FRAMES_SECRET: "
        "arguments show in `ps`)",
    )
    s.add_argument("--token-file", help="write the admin JWT here (mode 0600)")
    s.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from ._jwt import admin_token
    from .server import FrameServer

    if not args.root:
        raise ConfigurationError("--root URL (or ZARRSTORES_FRAMES_ROOT) is required")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigurationError("give both --tls-cert and --tls-key, or neither")
    if args.secret and not args.tls_cert:
        raise ConfigurationError(
            "--secret needs --tls-cert and --tls-key (Shoots clients send tokens only over TLS)"
        )
    certs = None
    if args.tls_cert:
        certs = (Path(args.tls_cert).read_bytes(), Path(args.tls_key).read_bytes())
    location = f"grpc+{'tls' if certs else 'tcp'}://{args.host}:{args.port}"
    if args.token_file:  # before the port opens: a script waiting for it then reads the token
        if not args.secret:
            raise ConfigurationError("--token-file needs --secret (or ZARRSTORES_FRAMES_SECRET)")
        fd = os.open(args.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before
        with os.fdopen(fd, "w") as f:
            f.write(admin_token(args.secret, location))
        print(f"admin JWT written to {args.token_file}", flush=True)
    server = FrameServer(location, args.root, certs=certs, secret=args.secret)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving {server.store!r} on {location} (Ctrl-C stops)", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        server.shutdown()
    return 0
