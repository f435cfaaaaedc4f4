"""Several machines on one: network namespaces joined by a bridge (Linux, as root).

Each host is a network namespace with its own loopback and one link
(`eth0`, one end of a veth pair) to a bridge in this, the root, namespace.
The bridge's address stands for the machine of the shared services
(PostgreSQL, Redis, the upstream); the hosts reach it and each other over
the bridge, and nothing else: their 127.0.0.1 is their own.

Every name carries a random tag, and the bridge and namespaces record the
ID of the process that made them, so a run that crashed leaves nothing a
later run trips over: `sweep()` removes what dead runs left behind (killing
the processes still inside their namespaces). Processes started here die
with the test process (`PR_SET_PDEATHSIG`), whatever ends it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACE_PREFIX = "synchealth-mh"
ALIAS_PREFIX = "synchealth-multihost pid="
# Subnets are drawn from 10.213.0.0/16, one /24 a run.
SUBNETS = ipaddress.ip_network("10.213.0.0/16")
_PR_SET_PDEATHSIG = 1


class NamespacesUnavailable(Exception):
    """This process may not make network namespaces (not root, or no `ip`)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGKILL when the test process ends, however."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def namespace_pids(namespace: str) -> list[int]:
    done = _ip("netns", "pids", namespace, check=False)
    return [int(pid) for pid in done.stdout.split()]


def kill_namespace(namespace: str, sig: int = signal.SIGKILL) -> list[int]:
    """Send `sig` to every process in the namespace, as a machine that loses power."""
    pids = namespace_pids(namespace)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def sweep() -> None:
    """Remove the namespaces and bridges of runs whose process has died."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        found = re.fullmatch(rf"{NAMESPACE_PREFIX}-(\d+)-[0-9a-f]+-\w+", name)
        if found and not _alive(int(found.group(1))):
            kill_namespace(name)
            _ip("netns", "delete", name, check=False)
    links = _ip("-o", "link", "show", "type", "bridge", check=False).stdout
    for line in links.splitlines():
        found = re.search(rf"^\d+: ([\w.-]+):.*alias {re.escape(ALIAS_PREFIX)}(\d+)", line)
        if found and not _alive(int(found.group(2))):
            _ip("link", "delete", found.group(1), check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-o", "-4", "addr", "show", check=False).stdout
    taken = {ipaddress.ip_interface(address).network for address in re.findall(r"inet (\S+)", used)}
    choices = list(SUBNETS.subnets(new_prefix=24))
    random.shuffle(choices)
    for subnet in choices:
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise NamespacesUnavailable(f"no free /24 left in {SUBNETS}")


@dataclass
class Host:
    """One machine: a network namespace and its address on the bridge."""

    name: str
    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's network namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(argv), preexec_fn=die_with_parent, **kwargs)

    def kill(self) -> list[int]:
        """SIGKILL every process of this host at once: the machine dies."""
        return kill_namespace(self.namespace)


@dataclass
class Network:
    """A bridge at `gateway` and a host for each name, on a /24 of their own."""

    names: Sequence[str]
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)
    gateway: str = ""
    bridge: str = ""
    _links: list[str] = field(default_factory=list)

    def up(self) -> Network:
        """Make the bridge and the hosts; on any failure, undo what was made and raise."""
        if os.geteuid() != 0:
            raise NamespacesUnavailable(
                f"network namespaces need root; this process runs as uid {os.geteuid()}"
            )
        sweep()
        subnet = _free_subnet()
        addresses = list(subnet.hosts())
        self.gateway = str(addresses[0])
        self.bridge = f"shb{self.tag}"
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self._links.append(self.bridge)
            _ip("link", "set", self.bridge, "alias", f"{ALIAS_PREFIX}{os.getpid()}")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for number, name in enumerate(self.names, start=1):
                host = Host(
                    name=name,
                    namespace=f"{NAMESPACE_PREFIX}-{os.getpid()}-{self.tag}-{name}",
                    address=str(addresses[number]),
                )
                outside, inside = f"shv{self.tag}{number}", f"shp{self.tag}{number}"
                _ip("netns", "add", host.namespace)
                self.hosts[name] = host
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self._links.append(outside)
                _ip("link", "set", outside, "master", self.bridge)
                _ip("link", "set", outside, "up")
                _ip("link", "set", inside, "netns", host.namespace)
                inns = ["netns", "exec", host.namespace, "ip"]
                _ip(*inns, "link", "set", inside, "name", "eth0")
                _ip(*inns, "addr", "add", f"{host.address}/24", "dev", "eth0")
                _ip(*inns, "link", "set", "eth0", "up")
                _ip(*inns, "link", "set", "lo", "up")
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.down()
            raise NamespacesUnavailable(f"could not make the hosts' network: {detail}") from exc
        return self

    def down(self) -> None:
        """Kill every process left in the hosts and remove the namespaces and links."""
        for host in self.hosts.values():
            host.kill()
            _ip("netns", "delete", host.namespace, check=False)
        for link in reversed(self._links):
            _ip("link", "delete", link, check=False)
        self.hosts.clear()
        self._links.clear()

    def leftovers(self) -> list[str]:
        """What `down` should have removed and is still there (for the test's own check)."""
        spaces = _ip("netns", "list", check=False).stdout
        links = _ip("-o", "link", "show", check=False).stdout
        return [
            name
            for name in (
                *(f"{NAMESPACE_PREFIX}-{os.getpid()}-{self.tag}-{n}" for n in self.names),
                f"shb{self.tag}",
            )
            if name in spaces or f" {name}:" in links or f" {name}@" in links
        ]


SKEWED_CLOCK = Path(__file__).with_name("skewed_clock.c")


def skewed_clock(folder: Path) -> Path | None:
    """Build `skewed_clock.c` into `folder`; None without a C compiler.

    A process started with `LD_PRELOAD` set to the library and
    `SKEWED_CLOCK_NS` reads a wall clock that far off.
    """
    compiler = shutil.which("cc")
    if compiler is None:
        return None
    built = folder / "skewed_clock.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(built), str(SKEWED_CLOCK), "-ldl"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return built
