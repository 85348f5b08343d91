"""Token-refresher sidecar: keep an OIDC access token file fresh, as sts-wire keeps ``.token``.

Every ``REFRESH_EVERY`` seconds (sooner when tokens live shorter) it asks ``TOKEN_URL`` for a
token by the client-credentials grant and replaces ``TOKEN_FILE`` atomically: a temporary
file in the same directory, mode 0600, renamed over the old one, so a reader never sees a
half-written token. Run as root (the container's default), it gives the file to the owner of
its directory: on the host, the user who owns ``docker/tokens/``.

``--once`` writes one token and exits; ``--check`` (the container's health check) exits 0
when the file holds a token written recently enough. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

RETRY_AFTER = 10.0


def _settings() -> dict[str, str]:
    return {
        "token_url": os.environ.get("TOKEN_URL", ""),
        "client_id": os.environ.get("CLIENT_ID", ""),
        "client_secret": os.environ.get("CLIENT_SECRET", ""),
        "scope": os.environ.get("SCOPE", "openid"),
        "token_file": os.environ.get("TOKEN_FILE", "/tokens/token"),
        "every": os.environ.get("REFRESH_EVERY", "600"),
    }


def fetch_token(
    token_url: str, client_id: str, client_secret: str, scope: str = "openid"
) -> tuple[str, float | None]:
    """A new access token and its lifetime in seconds (None when the server gives none)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if scope:
        form["scope"] = scope
    request = urllib.request.Request(
        token_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError(f"no access_token in the answer (keys: {sorted(body)})")
    expires_in = body.get("expires_in")
    return token, float(expires_in) if isinstance(expires_in, int | float) else None


def write_token(path: str, token: str) -> None:
    """Replace ``path`` with ``token`` atomically, readable by its owner only."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".token-")  # created with mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        if os.geteuid() == 0:
            owner = os.stat(directory)
            # An unmapped id (rootless engines) fails: the file then stays root's.
            with contextlib.suppress(OSError):
                os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def next_wait(every: float, expires_in: float | None) -> float:
    """Seconds until the next refresh: ``every``, or half the token's life when shorter."""
    if expires_in is None:
        return every
    return max(5.0, min(every, expires_in / 2))


def check(path: str, every: float) -> int:
    """0 when ``path`` holds a token written within two refresh periods (plus a margin)."""
    try:
        age = time.time() - os.stat(path).st_mtime
        with open(path) as f:
            token = f.read().strip()
    except OSError as e:
        print(f"token file {path}: {e}", file=sys.stderr)
        return 1
    if token.count(".") != 2:
        print(f"token file {path} does not hold a JWT", file=sys.stderr)
        return 1
    if age > 2 * every + 60:
        print(f"token file {path} is {age:.0f} s old", file=sys.stderr)
        return 1
    return 0


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}", flush=True)


def main(argv: list[str]) -> int:
    s = _settings()
    every = float(s["every"])
    if "--check" in argv:
        return check(s["token_file"], every)
    missing = [name for name in ("token_url", "client_id", "client_secret") if not s[name]]
    if missing:
        print(f"set {', '.join(n.upper() for n in missing)}", file=sys.stderr)
        return 2
    # PID 1 in a container ignores SIGTERM unless it has a handler: stop at once on it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    once = "--once" in argv
    while True:
        try:
            token, expires_in = fetch_token(
                s["token_url"], s["client_id"], s["client_secret"], s["scope"]
            )
            write_token(s["token_file"], token)
        except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
            if once:
                print(f"no token: {e}", file=sys.stderr)
                return 1
            _log(f"no token ({e}); trying again in {RETRY_AFTER:.0f} s")
            time.sleep(RETRY_AFTER)
            continue
        wait = next_wait(every, expires_in)
        life = "?" if expires_in is None else f"{expires_in:.0f}"
        _log(f"wrote {s['token_file']} (lives {life} s); next in {wait:.0f} s")
        if once:
            return 0
        time.sleep(wait)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
