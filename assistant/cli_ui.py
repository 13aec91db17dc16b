"""`assistant ui [streamlit options]`: start the Streamlit review UI on http://127.0.0.1:8501."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys

from assistant.settings import PROJECT_ROOT

APP = PROJECT_ROOT / "ui" / "app.py"
DEFAULTS = {
    "--server.address": "127.0.0.1",
    "--server.port": "8501",
    "--server.headless": "true",
    "--browser.gatherUsageStats": "false",
    # An unexpected exception shows its type in the browser; the traceback goes to the console only.
    "--client.showErrorDetails": "type",
    # No "Deploy" button or developer menu for agents: this is an app, not a notebook.
    "--client.toolbarMode": "minimal",
}


def streamlit_command(extra: list[str]) -> list[str]:
    """`python -m streamlit run ui/app.py` with our defaults; options in `extra` override them."""
    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}
    args = []
    for option, value in DEFAULTS.items():
        if option not in given:
            args += [option, value]
    return [sys.executable, "-m", "streamlit", "run", str(APP), *args, *extra]


def _option(extra: list[str], name: str) -> str:
    for i, arg in enumerate(extra):
        if arg == name and i + 1 < len(extra):
            return extra[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return DEFAULTS[name]


def url(extra: list[str]) -> str:
    return f"http://{_option(extra, '--server.address')}:{_option(extra, '--server.port')}"


def run(args: argparse.Namespace) -> int:
    from assistant.errors import ConfigError

    extra = [a for a in (args.streamlit_args or []) if a != "--"]
    if not APP.is_file():
        raise ConfigError(f"The UI is not part of this installation ({APP} is missing).",
                          hint="Run `assistant ui` from a checkout of the repository.")
    print(f"Support Reply Assistant UI: open {url(extra)}", flush=True)
    env = dict(os.environ)
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    proc = subprocess.Popen(streamlit_command(extra), env=env, cwd=PROJECT_ROOT)

    def forward(signum, frame):  # `kill <pid of assistant ui>` must stop the server too, not orphan it
        proc.send_signal(signum)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), forward)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # pass Ctrl-C on (harmless if the terminal sent it to streamlit too)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ui",
        help="start the review UI (Streamlit) on http://127.0.0.1:8501",
        description="Start the Streamlit review UI. Extra options are passed to `streamlit run`, "
        "e.g. `assistant ui --server.port 8600`.",
    )
    p.set_defaults(func=run, streamlit_args=[])
    # Every option `ui` does not know is a `streamlit run` option: collect them, in order, instead of
    # letting argparse refuse them (argparse.REMAINDER cannot start with an option).
    known = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        namespace, rest = known(args, namespace)
        namespace.streamlit_args = list(getattr(namespace, "streamlit_args", None) or []) + list(rest)
        return namespace, []

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]
    p.usage = "assistant ui [STREAMLIT_OPTION ...]  (e.g. --server.port 8600)"
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.cli_ui [streamlit options]` (the same as `assistant ui`)."""
    from assistant.errors import AssistantError

    parser = argparse.ArgumentParser(prog="assistant")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ui", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
