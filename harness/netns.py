"""A network namespace for a worker that must reach the API's services over a network, not loopback.

`ip netns` + a veth pair: the worker's namespace has its own loopback and one address on a
private /30; the host end of the pair carries the services it may reach. PostgreSQL and Redis
listen on the host's 127.0.0.1 only, so `socat` relays the host end's ports to them; an S3
server can bind the host end itself. Inside, the worker also gets an empty tmpfs over the API's
home, so it could not read or write the API's files even by mistake. Needs root (CI runs as
root); `netns_unavailable()` says why it cannot be made here.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def netns_unavailable() -> str | None:
    """Why a network namespace cannot be made on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "not root: ip netns needs CAP_SYS_ADMIN and CAP_NET_ADMIN"
    for tool in ("ip", "socat", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"pl-probe-{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-4", "-o", "addr", "show").stdout
    for _ in range(100):
        subnet = ipaddress.IPv4Network(
            f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.{4 * random.randint(0, 63)}/30"
        )
        if f"inet {subnet[1]}/" not in used and f"inet {subnet[2]}/" not in used:
            return subnet
    raise RuntimeError("no free /30 in 10.200.0.0/13")


@dataclass
class WorkerNetwork:
    """Where a worker runs: `prefix` wraps its command; `host` is the address it reaches the services at."""

    host: str
    prefix: list[str] = field(default_factory=list)
    relays: list[subprocess.Popen[bytes]] = field(default_factory=list)
    description: str = ""
    namespace: str = ""
    device: str = ""

    def wrap(self, command: list[str]) -> list[str]:
        return [*self.prefix, *command]

    def limit_upload_rate(self, rate: str) -> None:
        """Everything the worker sends leaves through a token bucket of `rate` (tc tbf): a slow uplink."""
        subprocess.run(
            ["ip", "netns", "exec", self.namespace, "tc", "qdisc", "add", "dev", self.device, "root",
             "tbf", "rate", rate, "burst", "16kb", "latency", "5s"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip


@contextmanager
def worker_namespace(relayed_ports: list[int], hidden: Path) -> Iterator[WorkerNetwork]:
    """A namespace reaching the host end's `relayed_ports` (relayed to 127.0.0.1) with `hidden` masked."""
    tag = uuid.uuid4().hex[:6]
    name, host_end, inner_end = f"pl-{tag}", f"plh{tag}", f"pln{tag}"
    subnet = _free_subnet()
    host, inner = str(subnet[1]), str(subnet[2])
    relays: list[subprocess.Popen[bytes]] = []
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end)
        _ip("link", "set", inner_end, "netns", name)
        _ip("addr", "add", f"{host}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", name, "addr", "add", f"{inner}/30", "dev", inner_end)
        _ip("-n", name, "link", "set", inner_end, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        for port in relayed_ports:
            relays.append(
                subprocess.Popen(
                    ["socat", f"TCP-LISTEN:{port},bind={host},fork,reuseaddr", f"TCP:127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        # `ip netns exec` gives the command its own mount namespace too: the tmpfs stays inside it.
        mask = f'mount -t tmpfs -o size=1m prunelab-hidden {shlex.quote(str(hidden))} && exec "$@"'
        yield WorkerNetwork(
            host=host,
            prefix=["ip", "netns", "exec", name, "sh", "-c", mask, "worker"],
            relays=relays,
            description=f"network namespace {name}: worker at {inner}, services at {host} ({host_end} <-> {inner_end})",
            namespace=name,
            device=inner_end,
        )
    finally:
        for relay in relays:
            relay.terminate()
            with suppress(subprocess.TimeoutExpired):
                relay.wait(timeout=10)
        _ip("link", "del", host_end, check=False)
        _ip("netns", "del", name, check=False)


@contextmanager
def loopback_worker() -> Iterator[WorkerNetwork]:
    """The fallback where no namespace can be made: the worker on loopback, with a home of its own."""
    yield WorkerNetwork(host="127.0.0.1", description="loopback (separate homes, no network namespace)")
