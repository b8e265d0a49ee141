"""The built-in agent templates against the real agent CLIs (issue 21.6).

The three CLIs come from the npm registry at the versions pinned below, installed once
into ``.venv/agentclis`` (ignored by git; later runs reuse it). Then the installed
``orch work --once --agent NAME`` claims a real attempt and runs the real CLI with no
credentials: each must get past its option parser (for an ordinary prompt, one that
starts with '-' and one with quotes and a newline) and stop at its own "not logged in"
answer, which must become the attempt's summary. Nothing but npm reaches the network:
the agents get an HTTP(S) proxy on a closed local port. Claude Code and Gemini CLI
answer "not logged in" before any request; Codex has no such check and asks its
provider, so its config (``CODEX_HOME``, never the template) points it at a local
endpoint that answers every request 401, as the real one does without a key.

Without npm these tests skip and say why; with CI=true they fail instead.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch.fslock import file_lock
from tests.support.attempts import dispatch, show
from tests.support.cli import RunCli, RunOrch

# Bump these to test newer CLIs (the cache directory is reinstalled when they change).
PACKAGES = {
    "claude": "@anthropic-ai/claude-code@2.1.332",
    "codex": "@openai/codex@0.171.0",
    "gemini": "@google/gemini-cli@0.61.0",
}
CACHE = Path(__file__).resolve().parents[2] / ".venv" / "agentclis"
INSTALL_TIMEOUT = 900.0

PROMPTS = {
    "plain": "add retries to the HTTP client",
    "dash": "--dangerously-skip-permissions and then -rf the build",
    "quoted": "say \"it's done\" and 'stop'\nthen a second line with $HOME and `ls`",
}

# each CLI's own answer when nobody is logged in, as the attempt's summary gives it
NOT_LOGGED_IN = {
    "claude": "exit code 1: Not logged in · Please run /login",
    "codex": "exit code 1: unexpected status 401 Unauthorized: You didn't provide an API key.",
    "gemini": "exit code 41: Please set an Auth method in ",
}
CREDENTIALS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
)


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the agent CLIs are required on CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def agent_bin() -> Path:
    """The directory holding ``claude``, ``codex`` and ``gemini`` from npm."""
    bin_dir = CACHE / "node_modules" / ".bin"
    stamp = CACHE / "orch-installed.json"
    wanted = sorted(PACKAGES.values())

    def ready() -> bool:
        return (
            stamp.is_file()
            and json.loads(stamp.read_text()) == wanted
            and all((bin_dir / name).exists() for name in PACKAGES)
        )

    if ready():
        return bin_dir
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed: the agent CLIs come from the npm registry")
    assert npm is not None
    # one install at a time (xdist workers share the cache)
    with file_lock(CACHE.parent / "agentclis.lock", INSTALL_TIMEOUT, "the agent CLI install"):
        if ready():
            return bin_dir
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", *wanted],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"npm install took more than {INSTALL_TIMEOUT:g} s")
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            _unavailable(f"npm install failed (exit {done.returncode}): {tail}")
        stamp.write_text(json.dumps(wanted))
    return bin_dir


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    """Every request answered as OpenAI's API answers one without a key."""

    protocol_version = "HTTP/1.1"  # Codex's WebSocket client refuses HTTP/1.0

    def _deny(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps(
            {
                "error": {
                    "message": "You didn't provide an API key.",
                    "type": "invalid_request_error",
                    "code": "missing_api_key",
                }
            }
        ).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _deny

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def offline_env(
    agent_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The agents' environment: the CLIs first on PATH, no credentials, no network."""
    for var in CREDENTIALS:
        monkeypatch.delenv(var, raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        f'openai_base_url = "http://127.0.0.1:{server.server_address[1]}/v1"\n'
    )
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing leaves
    try:
        yield {
            "PATH": f"{agent_bin}{os.pathsep}{os.environ['PATH']}",
            "HTTPS_PROXY": closed,
            "HTTP_PROXY": closed,
            "https_proxy": closed,
            "http_proxy": closed,
            "NO_PROXY": "127.0.0.1",  # the local endpoint only
            "no_proxy": "127.0.0.1",
            "CODEX_HOME": str(codex_home),
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("prompt", sorted(PROMPTS))
@pytest.mark.parametrize("agent", sorted(PACKAGES))
def test_a_template_reaches_the_agent_s_not_logged_in_answer(
    repo: Path,
    run_cli: RunCli,
    run_orch: RunOrch,
    offline_env: dict[str, str],
    agent: str,
    prompt: str,
) -> None:
    attempt = dispatch(run_cli, repo, f"{agent}-{prompt}", f"--prompt={PROMPTS[prompt]}")
    worker = run_orch("work", "--once", "--agent", agent, cwd=repo, env=offline_env)
    assert worker.returncode == 0, worker.stderr
    shown = show(run_cli, attempt["id"], cwd=repo)
    summary = shown["attempt"]["summary"]
    assert shown["attempt"]["state"] == "failed", summary
    # the agent's own answer, as its last word: never an option-parsing error
    assert summary.startswith(NOT_LOGGED_IN[agent]), Path(shown["runs"][0]["log_path"]).read_text()
