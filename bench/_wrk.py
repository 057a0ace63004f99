"""wrk, driving update checks: the Lua script, one run's figures, and pacing to a target rate.

Two ways to load a server, and what each measures:

- **saturation**: every connection sends its next check as soon as the last is answered. The
  rate reached is the server's maximum; the latency is mostly queueing — with ``c`` connections
  and a rate ``r``, each check waits about ``c / r`` (Little's law), so it says how many
  connections were used more than how fast a check is answered.
- **paced**: each connection pauses between checks so that together they offer a fixed rate
  below the maximum (e.g. half of it). The latency is what a client sees at that load: the
  figure to hold against a latency goal.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

THREADS = 2  # wrk's threads (-t): each runs its share of the connections

CHECK_LUA = """
local threads = 0
function setup(thread)  -- in the main state: number the threads, for their random seeds
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(os.time() * 16 + id)
end
local entries = {}
for line in io.lines("%(sample)s") do
  local key, inst = line:match("([^ ]+) ([^ ]+)")
  entries[#entries + 1] = {key, inst}
end
local pause = %(delay_ms)d
local counter = 0
request = function()
  counter = counter + 1
  local e = entries[math.random(#entries)]
  local body = string.format('{"product":"%(product)s","version":"%(version)s",'
    .. '"platform":"linux-x86_64","channel":"stable","installation_id":"%%s",'
    .. '"nonce":"%%08x%%08x%%08x"}',
    e[2], math.random(0, 2147483647), counter, math.random(0, 2147483647))
  return wrk.format("POST", "%(path)s",
    {["Authorization"] = "License " .. e[1], ["Content-Type"] = "application/json"}, body)
end
-- Each connection pauses before every check, its first one included. The first pauses, one
-- per connection of this thread, are spread at random over the period: connections that all
-- started in the same millisecond would send their checks in bursts of every connection at
-- once (a queue of 64 checks, 30-70 ms, at the start and whenever the bursts re-form),
-- which is not the steady load being measured.
local stagger = %(stagger)d
local delays = 0
if pause > 0 then
  delay = function()
    delays = delays + 1
    if delays <= stagger then
      return math.random(0, pause)
    end
    return pause
  end
end
"""


@dataclass(frozen=True)
class CheckScript:
    """What the Lua script sends: checks of ``product`` at ``version`` to ``path``, as the
    (license key, installation id) pairs of ``sample`` (one pair per line)."""

    work: Path
    sample: Path
    product: str
    version: str
    path: str = "/api/v1/check"

    def write(self, delay_ms: int = 0, connections: int = 0) -> Path:
        """The script file, each of ``connections`` connections pausing ``delay_ms`` between
        checks (their first checks spread over the first pause)."""
        name = self.path.strip("/").replace("/", "-")
        script = self.work / f"{name}-{delay_ms}-{connections}.lua"
        values = {
            "sample": self.sample,
            "delay_ms": delay_ms,
            "stagger": -(-connections // THREADS),
            "product": self.product,
            "version": self.version,
            "path": self.path,
        }
        script.write_text(CHECK_LUA % values)
        return script


@dataclass
class WrkRun:
    rps: float
    p99: float  # ms
    errors: int  # non-2xx answers, socket errors, timeouts
    count: int
    detail: str  # the errors by kind, e.g. "timeout 3, non-2xx 1"
    cpu_per_request: float = 0.0  # µs of the server's CPU per answer, when measured


def run(url: str, script: Path | None, connections: int, seconds: int) -> WrkRun:
    """One wrk run of ``seconds`` with ``connections`` connections (``script``: None = GET)."""
    cmd = [
        "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    kinds = {}
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        names = ("connect", "read", "write", "timeout")
        kinds = dict(zip(names, map(int, socket.groups()), strict=True))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        kinds["non-2xx"] = int(non2xx.group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not (p99 and rps and total):
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    value, unit = float(p99.group(1)), p99.group(2)
    return WrkRun(
        rps=float(rps.group(1)),
        p99=value / 1000 if unit == "us" else value * 1000 if unit == "s" else value,
        errors=sum(kinds.values()),
        count=int(total.group(1)),
        detail=", ".join(f"{k} {v}" for k, v in kinds.items() if v),
    )


def paced(url: str, checks: CheckScript, connections: int, target_rps: float) -> Path:
    """The script whose pause makes ``connections`` connections offer about ``target_rps``.

    Each connection sends, waits for the answer, then pauses: its period is the latency plus the
    pause. Start from no latency, then correct the pause by the period measured (twice).
    """
    delay_ms = round(connections / target_rps * 1000)
    for _ in range(2):
        achieved = run(url, checks.write(delay_ms, connections), connections, 5).rps
        delay_ms = max(
            1, round(delay_ms + (connections / target_rps - connections / achieved) * 1000)
        )
    return checks.write(delay_ms, connections)
