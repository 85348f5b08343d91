"""Run the reliability tests and write their figures into README.md's "Reliability" section.

    .venv/bin/python scripts/reliability_figures.py            # run the tests, then rewrite
    .venv/bin/python scripts/reliability_figures.py --from F   # rewrite from a figures file

The tests (``tests/test_reliability_*.py``) record what they did into a JSON file
(``$ZARRSTORES_FIGURES``, see ``tests/_figures.py``); this script sums it up between the
markers ``<!-- reliability:start -->`` and ``<!-- reliability:end -->`` (added at the end of
README.md, under a "Reliability" heading, when missing). When a test fails, README.md is left
as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"
TESTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_reliability_*.py"))


def run_tests(figures: Path, basetemp: Path) -> tuple[int, str, float]:
    """Run the reliability tests; (exit code, pytest's last line, seconds)."""
    figures.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", *TESTS, f"--basetemp={basetemp}"]
    command += ["-p", "no:cacheprovider", "-q"]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "ZARRSTORES_FIGURES": str(figures)},
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    summary = lines[-1].strip("= ") if lines else "no output"
    if result.returncode != 0:
        sys.stdout.write(result.stdout[-20000:] + result.stderr[-5000:])
    return result.returncode, summary, seconds


def by_section(data: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """section -> backend -> the figures of its tests, numbers added up."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for figures in data.values():
        entry = out[figures.get("section", "other")][figures.get("backend", "both")]
        for name, value in figures.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                entry[name] = entry.get(name, 0) + value
            elif name not in ("section", "backend"):
                entry.setdefault(name, value)
    return out


def n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(data: dict[str, dict[str, Any]], summary: str, when: str) -> str:
    s = by_section(data)
    total = defaultdict(int)
    for figures in data.values():
        for name in ("expiries_survived", "faults_injected", "bad_inputs", "objects_lost"):
            total[name] += figures.get(name, 0)
        total["objects_verified"] += figures.get("objects_verified", 0)
        total["secrets_found"] += figures.get("secrets_found", 0)
    outages = len(s["outage"])
    cases = {f["case"] for f in data.values() if f.get("section") == "bad_input" and "case" in f}
    kinds = sorted(
        {f["kind"] for f in data.values() if f.get("section") == "secrets" and "kind" in f}
    )

    def cell(section: str, backend: str, text: str) -> str:
        figures = s[section].get(backend)
        if not figures:
            return "—"
        try:
            return text.format(**{k: n(v) for k, v in figures.items()})
        except KeyError as e:
            raise SystemExit(
                f"figure {e} of {section!r} ({backend}) missing: run {TESTS}"
            ) from None

    rows = [
        (
            "Credentials expiring again and again during a long zarr write",
            "expiry",
            "{expiries_survived} expiries ({how}): {failed_writes} of {chunks_written} chunk "
            "writes failed, {objects_verified} read back equal, {objects_lost} lost",
        ),
        (
            "The server gone in the middle of a write",
            "outage",
            "{how}, {retries} retries: first run {first_run}; after a second run "
            "{objects_verified} chunks read back equal, {objects_wrong} wrong, "
            "{objects_lost} lost",
        ),
        (
            "503 / 500, connection resets, answers slower than the timeout",
            "faults",
            "{faults_injected} faults injected: {faults_recovered} transient ones ridden out "
            "by retries with backoff, {persistent_faults_failing_clearly} persistent ones "
            "failed with a clear error within the bounded time",
        ),
        (
            "A PUT body corrupted on the way (one byte flipped)",
            "corrupt",
            "{corrupted_writes_refused} writes refused ({faults_injected} corrupted bodies), "
            "{corrupted_objects_stored} stored, {objects_lost} changed",
        ),
        (
            "64 concurrent writers to one store",
            "concurrency",
            "{writes} writes of {objects_written} objects, {objects_verified} verified, "
            "{objects_lost} lost",
        ),
        (
            "Token file rewritten (truncate, then write) under 64 concurrent readers",
            "token_file",
            "{token_reads} token reads during {token_file_rewrites} rewrites: "
            "{failed_reads} failed",
        ),
        (
            "Bad input: an error naming the problem and the fix, nothing stored changed",
            "bad_input",
            "{bad_inputs} tried, {changed_stored_data} changed stored data",
        ),
        (
            "Secrets in reprs, DEBUG logs, error messages, tracebacks",
            "secrets",
            "{secret_values_searched} secret values searched in {texts_searched} texts: "
            "{secrets_found} found",
        ),
    ]
    lines = [
        "What `tests/test_reliability_*.py` prove against the real local servers (Swift with",
        "tempauth and Keystone, SeaweedFS S3 with STS, Ceph RGW), with the counts of the last",
        "run",
        f"({summary}, {when}; regenerated by `scripts/reliability_figures.py`). Every write is",
        "read back through an independent client.",
        "",
        f"**{n(total['expiries_survived'])} credential expiries survived, "
        f"{n(total['faults_injected'] + outages)} faults injected, "
        f"{n(total['bad_inputs'])} bad inputs tried ({len(cases)} cases), "
        f"{n(total['objects_verified'])} objects verified, "
        f"{n(total['objects_lost'])} objects lost, {n(total['secrets_found'])} secrets found.**",
        "",
    ]
    # Ceph RGW's columns when its backends ran (tests/backends.py: rgw-swift, rgw-s3).
    columns = [("swift", "Swift"), ("s3", "S3")]
    rgw = [("rgw-swift", "Swift on RGW"), ("rgw-s3", "S3 on RGW")]
    columns += [(b, t) for b, t in rgw if any(b in by_backend for by_backend in s.values())]
    lines.append("| What is tested | " + " | ".join(t for _, t in columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    for title, section, text in rows:
        cells = " | ".join(cell(section, b, text) for b, _ in columns)
        lines.append(f"| {title} | {cells} |")
    odd = s["bad_input"].get("both", {}).get("odd_keys_round_tripped", 0)
    log_lines = s["secrets"].get("swift", {}).get("server_log_lines", 0)
    lines += [
        "",
        f"Auth kinds searched for secrets: {', '.join(kinds)}; also the servers' own logs "
        f"({n(log_lines)} lines, no secret). TLS verification is on by default for every kind "
        "(each refuses a self-signed server, naming `verify=`/`cacert=`) and a CA bundle is "
        "honoured; a token file others can read is warned about. Keys with spaces, `?`, `#`, "
        f"`%` and non-ASCII letters round-trip on both backends ({odd} checks).",
    ]
    return "\n".join(lines)


def update_readme(readme: Path, section: str) -> None:
    text = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{section}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Reliability\n\n" + block + "\n"
    readme.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="figures JSON of a past run")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    summary = "figures from a past run"
    if not args.source:
        work = Path(tempfile.mkdtemp(prefix="zs-reliability-"))
        try:
            code, summary, seconds = run_tests(work / "reliability.json", work / "pytest")
            if code != 0:
                print(f"reliability tests failed ({summary}): {args.readme} not changed")
                return code
            data = json.loads((work / "reliability.json").read_text())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        summary = f"{summary.split(' in ')[0]} in {seconds:.0f} s"
    else:
        data = json.loads(args.source.read_text())
    update_readme(args.readme, render(data, summary, when))
    print(f"{args.readme}: Reliability section written ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
