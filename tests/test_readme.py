"""Every ```python and ```sh block of README.md and docs/*.md, run against the local servers.

Each block is one test. HTML comments on the lines right above a fence say how to run it:

    <!-- env: NAME [NAME ...] -->    the variables its recipe states (``ENVS``; several combine;
                                     default ``serve``)
    <!-- requires: TOOL [TOOL ...] -->  run only if TOOL is on PATH, else the test is skipped
    <!-- skip: REASON -->            never run (long-running, needs Docker, runs this suite...)

Blocks tagged ```python or ```py run as Python, ```sh, ```bash or ```shell as shell; other
languages (```text, ```console...) are not run. Per document, one fresh Python process runs
the blocks in order, as a reader would: Python blocks share one namespace, shell blocks run in
``bash -e -o pipefail``, all in one scratch directory. A block sees only the variables of its
env, plus PATH (the venv's bin first, so ``zarrstores`` and ``swift`` resolve), HOME, the
locale and the login names. When the env changes between blocks, fsspec's cached filesystems
are dropped: a reader starts a recipe with its variables already set. The first block that
fails fails its test; the blocks after it are reported as not run.

Run as a script (``python test_readme.py SPEC RESULTS``) this module is that process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if p.exists()]

# What each env sets (the fixture ``recipe_envs`` gives the values of the local servers).
ENVS = {
    "serve": "what `zarrstores serve` prints: tempauth's, s3's and AWS_DEFAULT_REGION",
    "tempauth": "ST_AUTH, ST_USER, ST_KEY",
    "keystone-password": "OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_*_DOMAIN_NAME",
    "keystone-appcred": "OS_AUTH_URL, OS_AUTH_TYPE=v3applicationcredential, "
    "OS_APPLICATION_CREDENTIAL_ID, OS_APPLICATION_CREDENTIAL_SECRET",
    "keystone-oidc": "OS_AUTH_URL, OS_AUTH_TYPE=v3oidcaccesstoken, OS_IDENTITY_PROVIDER, "
    "OS_PROTOCOL, OS_PROJECT_NAME, OS_PROJECT_DOMAIN_NAME, BEARER_TOKEN_FILE",
    "swift-preauth": "OS_STORAGE_URL, OS_AUTH_TOKEN (a tempauth token)",
    "swift-anonymous": "OS_STORAGE_URL only",
    "s3": "AWS_ENDPOINT_URL, BEARER_TOKEN_FILE",
    "sts-wire": "AWS_ENDPOINT_URL, and a valid token in ./.token while the block runs",
    "mc-alias": "MC_HOST_local (static keys and the endpoint)",
    "aws-profile": "AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE: profile site (keys, endpoint)",
    "s3-anonymous": "AWS_ENDPOINT_URL only",
    "rgw": "Ceph RGW: ST_AUTH, ST_USER, ST_KEY, AWS_ENDPOINT_URL, AWS_ROLE_ARN, BEARER_TOKEN_FILE",
    "none": "nothing",
}
DEFAULT_ENV = ("serve",)
DOCUMENT_TIMEOUT = 240  # seconds for all the blocks of one document
LANGUAGES = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
# Commands that start servers or this very suite: a block with them must say skip.
NEVER_RUN = re.compile(r"^\s*(make\b|docker\b|zarrstores serve\b|\.venv/bin/zarrstores serve\b)")

_FENCE = re.compile(r"^(?P<indent>\s*)```\s*(?P<lang>[\w+-]*)\s*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<key>[a-z][\w-]*)\s*:\s*(?P<value>.*?)\s*-->\s*$")
_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced code block: ``line`` is the line of its opening fence (1-based)."""

    doc: str
    line: int
    lang: str
    code: str
    env: tuple[str, ...] = DEFAULT_ENV
    requires: tuple[str, ...] = ()
    skip: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"


def extract_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The python and shell blocks of a Markdown file, with their directives."""
    lines = path.read_text().splitlines()
    doc = str(path.relative_to(root))
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent = i, len(m["indent"])
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            i += 1
        lang = LANGUAGES.get(m["lang"].lower())
        if lang is not None:
            code = "\n".join(line[indent:] for line in lines[start + 1 : i]) + "\n"
            blocks.append(_with_directives(Block(doc, start + 1, lang, code), lines, start))
        i += 1
    return blocks


def _with_directives(block: Block, lines: list[str], fence: int) -> Block:
    found: dict[str, str] = {}
    problems: list[str] = []
    j = fence - 1
    while j >= 0 and _COMMENT.match(lines[j]):
        m = _DIRECTIVE.match(lines[j])
        if m and m["key"] in ("env", "requires", "skip"):
            found[m["key"]] = m["value"]
        elif m:
            problems.append(f"unknown directive {m['key']!r} (env, requires or skip)")
        j -= 1
    env = tuple(found["env"].split()) if "env" in found else DEFAULT_ENV
    problems += [
        f"unknown env {name!r} (one of {', '.join(ENVS)})" for name in env if name not in ENVS
    ]
    skip = found.get("skip")
    if skip is not None and not skip:
        problems.append("<!-- skip: ... --> needs a reason")
    if skip is None and block.lang == "sh":
        problems += [
            f"{line.strip()!r} starts servers or the test suite: mark the block "
            "<!-- skip: reason -->"
            for line in block.code.splitlines()
            if NEVER_RUN.match(line)
        ]
    return Block(
        block.doc,
        block.line,
        block.lang,
        block.code,
        env=env,
        requires=tuple(found.get("requires", "").split()),
        skip=skip,
        problems=tuple(problems),
    )


BLOCKS = [block for path in DOCUMENTS for block in extract_blocks(path)]


# -- the test side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Env:
    """Variables, and files put in the working directory while a block runs."""

    variables: dict[str, str]
    files: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="session")
def recipe_envs(
    swift_server, s3_server, rgw_server, oidc_issuer, tmp_path_factory
) -> dict[str, Env]:
    """The values of each env in ``ENVS`` for the session's local servers."""
    token_file = tmp_path_factory.mktemp("recipes-token") / "token"
    oidc_issuer.write_token(token_file)  # valid for an hour: longer than any run
    storage_url, token = swift_server.get_token()
    tempauth = swift_server.st_env()
    endpoint = {"AWS_ENDPOINT_URL": s3_server.endpoint}
    s3 = {**endpoint, "BEARER_TOKEN_FILE": str(token_file)}
    keys = ":".join(
        quote(k, safe="") for k in (s3_server.admin_access_key, s3_server.admin_secret_key)
    )
    envs = {
        "serve": Env({**tempauth, **s3, "AWS_DEFAULT_REGION": s3_server.region}),
        "tempauth": Env(tempauth),
        "keystone-password": Env(swift_server.os_env("password")),
        "keystone-appcred": Env(swift_server.os_env("application_credential")),
        "keystone-oidc": Env({**swift_server.os_env("oidc"), "BEARER_TOKEN_FILE": str(token_file)}),
        "swift-preauth": Env({"OS_STORAGE_URL": storage_url, "OS_AUTH_TOKEN": token}),
        "swift-anonymous": Env({"OS_STORAGE_URL": storage_url}),
        "s3": Env(s3),
        "sts-wire": Env(endpoint, files={".token": oidc_issuer.mint()}),
        "mc-alias": Env({"MC_HOST_local": f"http://{keys}@{urlsplit(s3_server.endpoint).netloc}"}),
        "aws-profile": Env(
            {"AWS_CONFIG_FILE": "aws-config", "AWS_SHARED_CREDENTIALS_FILE": "aws-credentials"},
            files={
                "aws-config": f"[profile site]\nendpoint_url = {s3_server.endpoint}\n",
                "aws-credentials": f"[site]\naws_access_key_id = {s3_server.admin_access_key}\n"
                f"aws_secret_access_key = {s3_server.admin_secret_key}\n",
            },
        ),
        "s3-anonymous": Env(endpoint),
        "rgw": Env(rgw_server.st_env() | rgw_server.sts_env(token_file)),
        "none": Env({}),
    }
    assert envs.keys() == ENVS.keys()
    return envs


def base_env(python: str = sys.executable) -> dict[str, str]:
    """What every block sees: PATH with the venv's bin first, HOME, the locale, pyenv's shims."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TERM", "TMPDIR")
        or k.startswith("PYENV_")
    }
    env["PATH"] = os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])
    return env


@dataclass
class DocumentRun:
    """What the document's process reported: per block line, status and detail."""

    results: dict[int, dict[str, Any]]
    output: str

    def output_of(self, block: Block) -> str:
        marker = f"===== {block.name} "
        _, _, after = self.output.partition(marker)
        return (marker + after.split("\n===== ", 1)[0]) if after else ""


@pytest.fixture(scope="session")
def run_document(
    recipe_envs: dict[str, Env], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], DocumentRun]:
    """Runs a document's blocks once (on first use) and returns what each did."""
    runs: dict[str, DocumentRun] = {}

    def run(doc: str) -> DocumentRun:
        if doc not in runs:
            runs[doc] = _run(doc, recipe_envs, tmp_path_factory.mktemp("doc"))
        return runs[doc]

    return run


def _run(
    doc: str, envs: dict[str, Env], workdir: Path, python: str = sys.executable
) -> DocumentRun:
    """Run the blocks of ``doc`` in one process of ``python`` (tests/test_installed.py passes
    an installed wheel's interpreter), in ``workdir``."""
    base = base_env(python)
    blocks = []
    for block in (b for b in BLOCKS if b.doc == doc):
        if block.problems:
            break  # a malformed block stops the document, as a failing one does
        variables = {**base}
        files: dict[str, str] = {}
        for name in block.env:
            variables |= envs[name].variables
            files |= envs[name].files
        blocks.append(
            {
                "line": block.line,
                "lang": block.lang,
                "code": block.code,
                "env": variables,
                "files": files,
                "requires": list(block.requires),
                "skip": block.skip,
            }
        )
    scratch = workdir / "cwd"
    scratch.mkdir()
    spec, results = workdir / "spec.json", workdir / "results.jsonl"
    spec.write_text(json.dumps({"doc": doc, "blocks": blocks}))
    try:
        output = subprocess.run(
            [python, __file__, str(spec), str(results)],
            cwd=scratch,
            env=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=DOCUMENT_TIMEOUT,
        ).stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace")
        output += f"\n(stopped: still running after {DOCUMENT_TIMEOUT} s)"
    reported = (
        [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    )
    return DocumentRun({r["line"]: r for r in reported}, output)


# Blocks marked skip are not tests: each names in its reason what runs it instead.
RUN = [b for b in BLOCKS if not b.skip or b.problems]


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_block(block: Block, run_document: Callable[[str], DocumentRun]) -> None:
    if block.problems:
        pytest.fail(f"{block.name}: " + "; ".join(block.problems), pytrace=False)
    run = run_document(block.doc)
    result = run.results.get(block.line)
    if result is None:
        unreported = [
            b for b in BLOCKS if b.doc == block.doc and not b.skip and b.line not in run.results
        ]
        failed = any(r["status"] == "failed" for r in run.results.values())
        if failed or block is not unreported[0]:
            pytest.skip(f"{block.name}: not run, an earlier block of {block.doc} failed")
        pytest.fail(f"{block.name}: the document's process stopped:\n{run.output[-3000:]}")
    if result["status"] == "missing":
        pytest.skip(f"{block.name}: {result['detail']}")
    if result["status"] == "failed":
        pytest.fail(f"{block.name} failed:\n{run.output_of(block)}", pytrace=False)
    assert result["status"] == "passed"


def test_recipes_are_found() -> None:
    assert DOCUMENTS, "no README.md or docs/*.md found"
    recipes = [b for b in BLOCKS if b.doc == "README.md"]
    assert len(recipes) > 20 and {b.lang for b in recipes} == {"python", "sh"}


def test_markers_are_parsed(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- env: tempauth s3 -->\n<!-- requires: mc -->\n```sh\nmc ls x\n```\n\n"
        "<!-- skip: needs Docker -->\n```bash\ndocker compose up\n```\n\n"
        "```console\n$ not run\n```\n\n"
        "<!-- evn: tempauth -->\n```python\nprint(1)\n```\n\n"
        "1. In a list:\n\n   ```py\n   x = 1\n   ```\n\n"
        "```sh\nmake test\n```\n"
    )
    sh, docker, typo, listed, unmarked = extract_blocks(page, root=tmp_path)
    assert (sh.line, sh.env, sh.requires, sh.code) == (5, ("tempauth", "s3"), ("mc",), "mc ls x\n")
    assert (docker.lang, docker.skip, docker.problems) == ("sh", "needs Docker", ())
    assert typo.problems == ("unknown directive 'evn' (env, requires or skip)",)
    assert (listed.lang, listed.code, listed.env) == ("python", "x = 1\n", DEFAULT_ENV)
    assert "mark the block <!-- skip: reason -->" in unmarked.problems[0]


# -- the document's process -------------------------------------------------------------------


def _use_env(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    fsspec = sys.modules.get("fsspec")
    if fsspec is not None:
        for cls in fsspec.registry.values():
            cls.clear_instance_cache()


def _run_block(block: dict[str, Any], doc: str, namespace: dict[str, Any]) -> tuple[str, str]:
    """("passed" | "failed", detail)."""
    if block["lang"] == "python":
        # Leading newlines: tracebacks then give the line numbers of the document.
        code = compile("\n" * block["line"] + block["code"], doc, "exec")
        try:
            exec(code, namespace)
        except BaseException:
            return "failed", traceback.format_exc()
        return "passed", ""
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block["code"]],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    print(proc.stdout, end="", flush=True)
    if proc.returncode:
        return "failed", f"exit status {proc.returncode}"
    return "passed", ""


def run_document_blocks(spec_path: Path, results_path: Path) -> int:
    """Run the blocks of a spec in order; write one JSON line per block to ``results_path``."""
    spec = json.loads(spec_path.read_text())
    sys.path[0] = ""  # imports resolve as in `python` started in the working directory
    namespace: dict[str, Any] = {"__name__": "__main__"}
    env: dict[str, str] | None = None
    with results_path.open("w") as results:
        for block in spec["blocks"]:
            print(f"\n===== {spec['doc']}:{block['line']} ({block['lang']}) =====", flush=True)
            print(block["code"], flush=True)
            if block["skip"]:
                continue
            missing = [
                t for t in block["requires"] if not shutil.which(t, path=block["env"]["PATH"])
            ]
            if missing:
                status, detail = "missing", f"needs {', '.join(missing)} on PATH"
            else:
                if block["env"] != env:
                    env = block["env"]
                    _use_env(env)
                for name, text in block["files"].items():
                    Path(name).write_text(text)
                    Path(name).chmod(0o600)
                try:
                    status, detail = _run_block(block, spec["doc"], namespace)
                finally:
                    for name in block["files"]:
                        Path(name).unlink(missing_ok=True)
                sys.stdout.flush()
                sys.stderr.flush()
                if detail and status == "failed":
                    print(detail, flush=True)
            results.write(json.dumps({"line": block["line"], "status": status, "detail": detail}))
            results.write("\n")
            results.flush()
            if status == "failed":
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_document_blocks(Path(sys.argv[1]), Path(sys.argv[2])))
