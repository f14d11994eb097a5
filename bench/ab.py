"""`python -m bench.ab ENDPOINT --before REV [--after REV]`: one endpoint of the catalog, in the
production configuration on PostgreSQL, as two git revisions serve it (`--after` defaults to the
working tree), measured in turn A B A B ... so the machine's load drifts over both alike.

Prints each run's worker CPU ms/request with the load average beside it, then both medians and
each side's spread (highest minus lowest run); writes bench/results/ab-<endpoint>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import databases, environment
from bench.run import CATALOG_ENDPOINTS, ROOT, Bench, Config, Run, Variant

SOURCE = "apps/catalog/src"


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603  # git from PATH, arguments built here
        ["git", *args],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()


def checkout(revision: str, into: Path) -> Path:
    """The service's source at `revision`, extracted under `into`: the directory to put on PYTHONPATH,
    where it comes before the virtualenv's editable install of the working tree."""
    archive = subprocess.run(  # noqa: S603
        ["git", "archive", "--format=tar", revision, SOURCE],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / SOURCE


def summary(runs: dict[str, list[Run]]) -> dict[str, Any]:
    cpu = {side: [r.result["cpu_ms_per_request"] for r in side_runs] for side, side_runs in runs.items()}
    medians = {side: statistics.median(values) for side, values in cpu.items()}
    return {
        "cpu_ms_per_request": cpu,
        "median": medians,
        "spread": {side: round(max(values) - min(values), 3) for side, values in cpu.items()},
        "change": round(medians["after"] / medians["before"] - 1, 3),
        # Every run of one side below every run of the other: a difference the noise did not make.
        "separated": max(cpu["after"]) < min(cpu["before"]) or max(cpu["before"]) < min(cpu["after"]),
        "load_average_1m": {side: [r.result["load_average_1m"] for r in rs] for side, rs in runs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", choices=CATALOG_ENDPOINTS)
    parser.add_argument("--before", required=True, help="git revision of A")
    parser.add_argument("--after", help="git revision of B (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=3, help="A B pairs")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each run")
    parser.add_argument("--products", type=int, default=10_000)
    args = parser.parse_args(argv)
    config = replace(Config(), duration=args.duration, warmup=args.warmup, products=args.products)
    revisions = {"before": _git("rev-parse", "--short", args.before)}
    revisions["after"] = _git("rev-parse", "--short", args.after) if args.after else "working tree"
    machine = environment.describe()
    runs: dict[str, list[Run]] = {"before": [], "after": []}
    with contextlib.ExitStack() as stack:
        bench = Bench(config, stack, print)
        stack.callback(shutil.rmtree, bench.work, True)
        postgres = stack.enter_context(databases.postgres())
        # Migrated by the working tree's code: both revisions must share the schema.
        dataset = bench.postgres_dataset(postgres, config.products)
        script, script_args = bench.scripts(dataset)[args.endpoint]
        servers = {}
        for side, revision in (("before", args.before), ("after", args.after)):
            env = dict(bench.headline.env)
            if revision is not None:
                env["PYTHONPATH"] = str(checkout(revision, bench.work / side))
            variant = Variant(f"{side} {revisions[side]}", bench.headline.title, env, bench.headline.token)
            servers[side] = (variant, stack.enter_context(bench.catalog_server(variant, "postgresql", dataset)))
        for _ in range(args.rounds):
            for side, (variant, server) in servers.items():
                bench.measure(server, variant.target, "postgresql", dataset.products, args.endpoint, script,
                              script_args, variant.token, keep=runs[side])  # fmt: skip
    result = {
        "endpoint": args.endpoint,
        "revisions": revisions,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time())),
        "settings": {"rounds": args.rounds, "duration": args.duration, "products": args.products},
        "machine": {**machine, "load_average_end": environment.load_average()},
        "summary": summary(runs),
        "runs": {side: [r.result for r in side_runs] for side, side_runs in runs.items()},
    }
    path = config.output.parent / f"ab-{args.endpoint}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    print(f"\n{args.endpoint}: CPU ms/req, runs interleaved, load average (1 min) beside each")
    for side in ("before", "after"):
        runs_text = ", ".join(
            f"{cpu:.3f} (load {load:.1f})"
            for cpu, load in zip(s["cpu_ms_per_request"][side], s["load_average_1m"][side], strict=True)
        )
        median, spread = s["median"][side], s["spread"][side]
        print(f"  {side:6} {revisions[side]:12} median {median:.3f}  spread {spread:.3f}: {runs_text}")
    verdict = "beyond" if s["separated"] else "within"
    print(f"  change {100 * s['change']:+.1f} %, {verdict} the run-to-run spread\nbench.ab: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
