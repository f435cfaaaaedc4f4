"""`make run`: prepare the embedded defaults and run every process in one go.

Migrates, seeds the sandbox with a demo estate (once), makes sure the demo
login exists, then starts the web server, a Celery worker, Celery beat and the
sandbox's traffic generator. One Ctrl-C stops them all; if one of them dies,
the others are stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")


def webhook_secret() -> str:
    """The demo's webhook signing secret, made once and kept under var/."""
    import base64
    import secrets

    var = Path(os.environ.get("SYNCHEALTH_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    var.mkdir(parents=True, exist_ok=True)
    path = var / "webhook-secret.txt"
    secret = path.read_text().strip() if path.exists() else ""
    if not secret:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        path.write_text(secret + "\n")
        path.chmod(0o600)
    return secret


def banner(login: str) -> str:
    """What `make run` prints once everything is up: where to go and the demo login.

    Only demo values: never the API key nor the webhook secret, since terminal
    output is scrolled back, shared and pasted into tickets.
    """
    return (
        f"\n  Sync Health is starting on http://{HOST}:{PORT}/\n"
        f"  {login}\n"
        f"  Sandbox upstream: http://{HOST}:{PORT}/sandbox\n"
        "  Press Ctrl-C to stop everything.\n"
    )


def main() -> int:
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SANDBOX_ENABLED", "1")
    os.environ.setdefault("CODAT_BASE_URL", f"http://{HOST}:{PORT}/sandbox")
    os.environ.setdefault("CODAT_API_KEY", os.environ.get("SANDBOX_API_KEY", "sandbox-demo-key"))
    # Both ends are on this machine: a roomier budget than Codat's, so the
    # first pull of the demo estate takes seconds rather than minutes.
    os.environ.setdefault("SANDBOX_RATE_LIMIT_PER_MINUTE", "6000")
    os.environ.setdefault("CODAT_RATE_LIMIT_PER_MINUTE", "5000")
    os.environ.setdefault("CODAT_WEBHOOK_SECRET", webhook_secret())
    python = sys.executable
    manage = [python, str(Path(__file__).resolve().parent.parent / "manage.py")]

    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], check=True)
    # After an upgrade: the current state of companies mirrored before it (resumable).
    subprocess.run([*manage, "build_current_state"], check=True)
    subprocess.run([*manage, "sandbox_seed", "--preset", "demo", "--if-empty"], check=True)
    login = subprocess.run(
        [*manage, "demo_login"], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.strip()
    # The sandbox signs its webhooks to this dashboard's receiver.
    subprocess.run(
        [
            *manage,
            "sandbox_webhook",
            "--url",
            f"http://{HOST}:{PORT}/webhooks/codat",
            "--secret",
            os.environ["CODAT_WEBHOOK_SECRET"],
        ],
        check=True,
    )

    celery = [python, "-m", "celery", "-A", "synchealth"]
    commands = {
        "web": [*manage, "runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
        "traffic": [
            *manage,
            "sandbox_traffic",
            "--base-url",
            f"http://{HOST}:{PORT}/sandbox",
            "--interval",
            "8",
        ],
    }
    children = {
        name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands.items()
    }
    # The first reconciliation now, not at beat's first tick.
    subprocess.run([*manage, "refresh", "--all", "--enqueue"], check=True)
    print(banner(login), flush=True)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"\n  {name} exited with {child.returncode}; stopping the rest.", flush=True)
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
