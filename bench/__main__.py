"""`python -m bench` (what `make bench` runs): settings from flags or BENCH_* variables, one run,
the table on stdout and the JSON (plus a Markdown copy of the table) in bench/results/.

Run it from the repository root with the project's virtualenv: `.venv/bin/python -m bench --help`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from bench import report
from bench.run import CATALOG_ENDPOINTS, Config, run

# BENCH_QUICK=1: a small dataset and short runs, to check the harness rather than the service.
QUICK = {"duration": 3.0, "warmup": 1.0, "products": 1_000, "scale_products": 10_000, "scale_runs": 1}


def _env(name: str, default: object) -> str:
    return os.environ.get(f"BENCH_{name.upper()}", str(default))


def parse(argv: list[str] | None = None) -> Config:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    base = Config(**QUICK) if quick else Config()  # type: ignore[arg-type]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small dataset, short runs (BENCH_QUICK=1)")

    def number(flag: str, kind: type, help: str | None = None) -> None:
        """A numeric option whose default is BENCH_<FIELD> or the base config's field."""
        name = flag.removeprefix("--").replace("-", "_")
        parser.add_argument(flag, type=kind, default=kind(_env(name, getattr(base, name))), help=help)

    number("--workers", int)
    number("--duration", float, "seconds per run")
    number("--warmup", float, "seconds; 0 = none")
    number("--connections", int)
    number("--wrk-threads", int)
    number("--products", int)
    number("--scale-products", int, "products of the large PostgreSQL dataset for the list-scaling runs; 0 skips them")
    number("--scale-runs", int, "rounds of list and list-deep at both sizes; the scaling check compares median p99")
    parser.add_argument(
        "--engines", default=_env("engines", ",".join(base.engines)), help="postgresql,sqlite (comma-separated)"
    )
    number("--pool-max", int)
    parser.add_argument(
        "--endpoints",
        default=_env("endpoints", ",".join(base.endpoints)),
        help=f"catalog endpoints to load (comma-separated subset of {','.join(CATALOG_ENDPOINTS)}",
    )
    parser.add_argument(
        "--no-all-spans",
        action="store_true",
        default=_env("all_spans", "1") == "0",
        help="skip the catalog-all-spans rows (the production configuration exporting every span; BENCH_ALL_SPANS=0)",
    )
    number("--soak-seconds", float, "GET on the production configuration this long after the run, RSS sampled; 0 skips")
    number("--soak-interval", float, "seconds between RSS samples of the soak")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip the ceiling and floor runs (iterating on the catalog)"
    )
    parser.add_argument("--output", type=Path, default=Path(_env("output", base.output)))
    args = parser.parse_args(argv)
    if args.quick and not quick:
        return parse_quick(argv)
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    unknown = set(engines) - {"postgresql", "sqlite"}
    if unknown or not engines:
        parser.error(f"--engines: unknown {sorted(unknown)}; use postgresql and/or sqlite")
    endpoints = tuple(e.strip() for e in args.endpoints.split(",") if e.strip())
    if set(endpoints) - set(CATALOG_ENDPOINTS) or not endpoints:
        parser.error(f"--endpoints: use a comma-separated subset of {','.join(CATALOG_ENDPOINTS)}")
    if args.scale_runs < 1 or args.soak_interval <= 0 or args.soak_seconds < 0:
        parser.error("--scale-runs must be at least 1, --soak-interval above 0, --soak-seconds 0 or more")
    if args.connections < args.wrk_threads:
        parser.error("--connections must be at least --wrk-threads")
    return Config(
        workers=args.workers,
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        products=args.products,
        scale_products=args.scale_products,
        engines=engines,
        pool_max=args.pool_max,
        endpoints=endpoints,
        all_spans=not args.no_all_spans,
        scale_runs=args.scale_runs,
        soak_seconds=args.soak_seconds,
        soak_interval=args.soak_interval,
        baselines=not args.no_baselines,
        output=args.output,
    )


def parse_quick(argv: list[str] | None) -> Config:
    os.environ["BENCH_QUICK"] = "1"
    return parse(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwinds like Ctrl-C, so every server and the PostgreSQL cluster are stopped on the way out.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Even when started in the background, where the shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = run(config)
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    path = report.write(result, config.output)
    print()
    print(report.markdown(result), end="")
    print(f"\nbench: {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
