"""Profile the gateway under one benchmark workload with py-spy (``pip install py-spy``):

    python -m bench.profile e2e|ingest|webhooks [SECONDS]

Writes collapsed stacks under var/prof/ and prints the functions with the most samples (inclusive and self).
"""

from __future__ import annotations

import asyncio
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from bench import loadgen, workload
from bench.procs import Process, free_port

WORK = Path("var/prof")


def _top(raw: Path, n: int = 30) -> str:
    """Where the event loop thread is busy: its samples, less those idle in the loop itself."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        samples = int(count)
        total += samples
        if not any(f.startswith("Runner.run") for f in frames) or frames[-1].startswith("Runner.run"):
            continue
        busy += samples
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    out = [f"{total} samples, {busy} busy on the event loop thread", "-- inclusive --"]
    out += [f"{100 * c / busy:5.1f}%  {f}" for f, c in inclusive.most_common(n)]
    out += ["-- self --"] + [f"{100 * c / busy:5.1f}%  {f}" for f, c in own.most_common(n)]
    return "\n".join(out)


def main(kind: str, seconds: int) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    db = WORK / f"{kind}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    fake_port, port = free_port(), free_port()
    config = WORK / f"{kind}.toml"
    config.write_text(workload.config_text(str(db.resolve()), fake_port))
    fake = Process("bench.fakeflow", [str(fake_port), str(port)], port=fake_port, log=WORK / "fake.log")
    extra = [] if kind == "e2e" else ["--no-worker"]
    gw = Process("bench.serve", ["gateway", str(port), str(config), *extra], port=port, log=WORK / f"{kind}.log")
    raw = WORK / f"{kind}.raw"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", "-r", "250", "-d", str(seconds), "--nonblocking", "-f", "raw", "-o", str(raw)]
    recorder = subprocess.Popen(
        [*command, "--pid", str(gw.proc.pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if kind == "webhooks":
            ids = [f"fr-prof-{i}" for i in range(1000)]
            make = workload.notification_request(ids, "prof")
        else:
            make = workload.event_request(f"prof-{kind}")
        asyncio.run(loadgen.closed_loop("127.0.0.1", port, make, connections=64, seconds=seconds, warmup=0))
        recorder.wait()
    finally:
        gw.stop()
        fake.stop()
    print(_top(raw))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10)
