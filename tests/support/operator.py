"""Commands as docs/deploy.md has an operator run them: through
`scripts/with-environment`, with the deployment's environment in a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.deploy import ROOT


def write_environment(path: Path, values: dict[str, str]) -> Path:
    """An environment file of `values`, as deploy/synchealth.env is written."""
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
    return path


def with_environment(
    env_file: Path, *command: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`scripts/with-environment COMMAND` with `env_file`, from a bare environment
    (the file's variables are all the deployment has), the test's Python first on PATH."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/"),
        "SYNCHEALTH_ENV_FILE": str(env_file),
    }
    if "PYTHONPATH" in os.environ:  # a shared virtualenv: this checkout first
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [str(ROOT / "scripts" / "with-environment"), *command],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def production_file(path: Path, **changes: str) -> Path:
    """The README's production environment (with this machine's services and
    a secret of its own) in a file, with `changes`."""
    import secrets

    from tests.support.deploy import PRODUCTION

    values = {
        **PRODUCTION,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SYNCHEALTH_VAR_DIR": str(path.parent / "var"),
        **changes,
    }
    return write_environment(path, values)
