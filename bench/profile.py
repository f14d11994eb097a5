"""`python -m bench.profile [ENDPOINT ...]`: py-spy samples every catalog worker while wrk loads one
endpoint (PostgreSQL, the production configuration and settings of `make bench`; `--dev` for the
development one), then prints where the CPU went: the
functions with the most samples of their own (self) and on the stack (inclusive), in percent.

The collapsed stacks are kept beside the summary (bench/results/profile-<endpoint>.txt and
.folded), for flamegraph.pl or speedscope. Profile before optimising; compare after.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench import databases
from bench.run import CATALOG_ENDPOINTS, ROOT, Bench, Config, Variant

RESULTS = ROOT / "bench" / "results"
SAMPLE_RATE = 250  # per second; py-spy's default (100) gives too few samples in a short run
# `--subprocesses` prefixes each stack with its process chain (`process PID:"cmdline";`, the command
# line may hold `;`); a worker's stacks have two entries, the manager's one.
_PROCESSES = re.compile(r'^((?:process (\d+):"[^"]*";)+)')


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy not found: make venv installs it (the `bench` dependency group)")
    return found


def _frame(entry: str) -> str:
    """`fn (module/path.py:12)` -> `fn (module/path.py)`: one name per function, not per line."""
    name, _, where = entry.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarise(folded: str, workers: set[int] | None = None, top: int = 25) -> str:
    """Self and inclusive shares per function in the workers' samples, from py-spy's raw (collapsed)
    output. The manager process is left out, and so, given `workers`, is every other child of it
    (Sanic's shared-state manager answers the workers' state updates: ~6 % of a GET's samples)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        chain = _PROCESSES.match(stack)
        if chain is None or chain.group(1).count('";process ') != 1:
            continue
        if workers is not None and int(chain.group(2)) not in workers:
            continue
        frames = [_frame(f) for f in stack[chain.end() :].split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "no samples (is the worker busy? does py-spy have ptrace permission?)\n"
    lines = [f"{total} worker samples", "", "self %  function"]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines) + "\n"


def profile(bench: Bench, endpoint: str, dataset: databases.Dataset, variant: Variant, gil: bool = False) -> Path:
    folded = RESULTS / f"profile-{endpoint}.folded"
    with bench.catalog_server(variant, "postgresql", dataset) as server:
        script, args = bench.scripts(dataset)[endpoint]
        argv = [py_spy(), "record", "--pid", str(server.pid), "--subprocesses", "--nonblocking", "--format", "raw"]
        argv += ["--rate", str(SAMPLE_RATE), "--duration", str(round(bench.config.duration)), "--output", str(folded)]
        # A thread waiting for the GIL (the trace exporter's holds it while encoding) is sampled where
        # it waits; --gil samples only the thread running Python, closer to where CPU goes.
        argv += ["--gil"] if gil else []
        recorder = subprocess.Popen(  # noqa: S603  # py-spy from the venv, arguments built here
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1)  # py-spy attaches to every worker first
            bench.measure(server, variant.target, "postgresql", dataset.products, endpoint, script, args, variant.token)
            workers = set(server.worker_pids())
            _, stderr = recorder.communicate(timeout=60)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
    if recorder.returncode != 0 or not folded.is_file():
        raise RuntimeError(f"py-spy failed ({recorder.returncode}): {stderr}")
    summary = RESULTS / f"profile-{endpoint}.txt"
    run = bench.runs[-1].result
    head = (
        f"{endpoint}, {variant.title}: {run['rps']:.0f} req/s, {run['cpu_ms_per_request']:.2f} worker CPU ms/request\n"
    )
    summary.write_text(head + summarise(folded.read_text(), workers))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("endpoints", nargs="*", default=["get"], choices=CATALOG_ENDPOINTS, metavar="ENDPOINT")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per endpoint")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--dev", action="store_true", help="the development configuration (HS256 secret)")
    parser.add_argument("--gil", action="store_true", help="sample only threads holding the GIL (py-spy --gil)")
    args = parser.parse_args(argv)
    config = replace(Config(), duration=args.duration, warmup=2.0, products=args.products)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        bench = Bench(config, stack, print)
        stack.callback(shutil.rmtree, bench.work, True)
        postgres = stack.enter_context(databases.postgres())
        dataset = bench.postgres_dataset(postgres, config.products)
        for endpoint in args.endpoints:
            summary = profile(bench, endpoint, dataset, bench.dev if args.dev else bench.headline, args.gil)
            print(summary.read_text())
            print(f"bench.profile: {summary} and {summary.with_suffix('.folded')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
