"""One bench run: the framework ceiling, the database floor and the catalog (PostgreSQL and SQLite)
under the same wrk load, then list pages at a large PostgreSQL dataset. Every process started here
is stopped before `run` returns or raises (Ctrl-C included)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import databases, environment, load
from bench.processes import Server
from tests.support.otlp import OtlpReceiver
from tests.support.server import catalog_env
from tools.cluster.toolbox import free_port

ROOT = Path(__file__).resolve().parent.parent
CATALOG_ENDPOINTS = ("get", "list", "list-deep", "create", "stock")
SCALE_ENDPOINTS = ("list", "list-deep")
# A wrk script and its arguments for a run tag.
Script = tuple[str, Callable[[str], list[str]]]


@dataclass(frozen=True)
class Config:
    workers: int = 2
    duration: float = 20.0
    warmup: float = 3.0
    connections: int = 64
    wrk_threads: int = 2
    products: int = 10_000
    scale_products: int = 1_000_000  # 0 skips the scaling runs
    engines: tuple[str, ...] = ("postgresql", "sqlite")
    pool_max: int = 10  # per worker, for the catalog and the floor alike
    endpoints: tuple[str, ...] = CATALOG_ENDPOINTS  # a subset, to iterate on one endpoint
    baselines: bool = True  # the ceiling and floor runs
    # The headline rows run the service's defaults (every span recorded and exported). One more GET
    # on PostgreSQL samples traces at this ratio (standard OTEL_TRACES_SAMPLER), reported beside
    # them as `catalog-sampled`; 0 skips it.
    sampled_ratio: float = 0.1
    output: Path = ROOT / "bench" / "results" / "latest.json"


@dataclass
class Run:
    """What one run measured; the report adds the ratios."""

    target: str  # ceiling | floor | catalog
    database: str  # none | postgresql | sqlite
    products: int
    endpoint: str
    result: dict[str, Any]
    rss_mib: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, config: Config, stack: contextlib.ExitStack, say: Callable[[str], None]) -> None:
        self.config, self.stack, self.say = config, stack, say
        self.runs: list[Run] = []
        self.phases: dict[str, float] = {}
        self.work = databases.scratch_dir()
        self.secret = secrets.token_urlsafe(48)
        self.env = catalog_env(CATALOG_JWT_SECRET=self.secret, CATALOG_LOG_LEVEL="INFO")
        self.token = self._token()
        self.sink = OtlpReceiver(keep=False)
        stack.callback(self.sink.close)

    def _token(self) -> str:
        ttl = str(int(3600 + self.config.duration * 60))
        result = subprocess.run(  # noqa: S603  # this interpreter and fixed arguments
            [sys.executable, "-m", "catalog", "token", "--subject", "bench", "--ttl", ttl],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.say(f"bench: {name}")
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - started, 1)

    @contextlib.contextmanager
    def server(self, name: str, argv: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[Server]:
        server = Server(name, argv, env, self.work / f"{name}.log", port, self.config.workers)
        try:
            yield server.start(probe)
        finally:
            server.stop()

    def measure(self, server: Server, target: str, database: str, products: int, endpoint: str, script: str,
                args: Callable[[str], list[str]]) -> None:  # fmt: skip
        """Warm up, then the measured run; `args(tag)` gives the script's arguments for a run tag."""
        kwargs = {"connections": self.config.connections, "threads": self.config.wrk_threads, "token": self.token}
        if self.config.warmup > 0:
            load.run_wrk(server.url, script, args(f"W{secrets.token_hex(3)}"), duration=self.config.warmup, **kwargs)
        cpu_before = server.worker_cpu_seconds()
        result = load.run_wrk(
            server.url, script, args(f"M{secrets.token_hex(3)}"), duration=self.config.duration, **kwargs
        )
        # CPU per request is steadier than req/s on a shared machine: other processes slow a run
        # down, but add little to what each request costs the workers.
        cpu_ms = 1000 * (server.worker_cpu_seconds() - cpu_before) / max(1, result["requests"])
        result["cpu_ms_per_request"] = round(cpu_ms, 3)
        result["load_average_1m"] = environment.load_average()[0]  # the whole machine, bench included
        run = Run(target, database, products, endpoint, result, server.worker_rss_mib())
        self.runs.append(run)
        self.say(
            f"  {target:8} {database:10} {products:>9} {endpoint:10} {result['rps']:>9.0f} req/s"
            f"  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  errors {result['errors']}"
            f"  cpu {cpu_ms:.2f} ms/req"
        )

    # -- targets -------------------------------------------------------------------------------

    def baseline(self, mode: str, dataset: databases.Dataset | None) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "bench.baseline", mode, str(port), str(self.config.workers)]
        if dataset is not None:
            argv += [dataset.url.replace("postgres://", "postgresql://", 1), str(self.config.pool_max)]
        env = {**self.env, "PYTHONPATH": str(ROOT)}
        paths = dataset.get_paths_file if dataset else self.get_paths_for_ceiling()
        database = "postgresql" if dataset else "none"
        products = dataset.products if dataset else 0
        with (
            self.phase(f"{mode}: bare Sanic, {self.config.workers} workers"),
            self.server(mode, argv, env, port, "/livez") as server,
        ):
            self.measure(server, mode, database, products, "get", "paths.lua", lambda _t: [str(paths)])

    def get_paths_for_ceiling(self) -> Path:
        path = self.work / "ceiling-get.txt"
        path.write_text("/v1/products/4f1c2b9e-8d53-4a57-9a36-0d8f2b7c1e42\n")
        return path

    @contextlib.contextmanager
    def catalog_server(
        self, database: str, dataset: databases.Dataset, extra_env: dict[str, str] | None = None
    ) -> Iterator[tuple[Server, dict[str, Script]]]:
        """`catalog serve` on `dataset` with every middleware on, and the wrk script of each endpoint."""
        port = free_port()
        name = f"catalog-{database}-{dataset.products}{'-variant' if extra_env else ''}"
        env = {
            **self.env,
            "DATABASE_URL": dataset.url,
            "CATALOG_HOST": "127.0.0.1",
            "CATALOG_PORT": str(port),
            "CATALOG_WORKERS": str(self.config.workers),
            "CATALOG_DB_POOL_MAX": str(self.config.pool_max),
            "CATALOG_METRICS_DIR": str(self.work / f"{name}-metrics"),
            "CATALOG_GRACEFUL_SHUTDOWN_SECONDS": "5",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.url,
            **(extra_env or {}),
        }
        scripts: dict[str, Script] = {
            "get": ("paths.lua", lambda _t: [str(dataset.get_paths_file)]),
            "list": ("paths.lua", lambda _t: [str(dataset.list_paths_file)]),
            "list-deep": ("paths.lua", lambda _t: [str(dataset.deep_paths_file)]),
            "create": ("create.lua", lambda tag: [tag, databases.CREATED_CATEGORY]),
            "stock": ("stock.lua", lambda _t: [str(dataset.ids_file)]),
        }
        argv = [sys.executable, "-m", "catalog", "serve"]
        with self.server(name, argv, env, port, "/readyz") as server:
            yield server, scripts

    def catalog(
        self, database: str, dataset: databases.Dataset, endpoints: tuple[str, ...], sampled: float = 0.0
    ) -> None:
        title = f"catalog on {database}, {dataset.products} products, {self.config.workers} workers"
        target, extra_env = "catalog", None
        if sampled:
            title += f", traces sampled at {sampled:g}"
            target = "catalog-sampled"
            extra_env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(sampled)}
        with self.phase(title), self.catalog_server(database, dataset, extra_env) as (server, scripts):
            for endpoint in endpoints:
                script, args = scripts[endpoint]
                self.measure(server, target, database, dataset.products, endpoint, script, args)

    # -- datasets ------------------------------------------------------------------------------

    def postgres_dataset(self, server: Any, products: int) -> databases.Dataset:
        with self.phase(f"seed PostgreSQL with {products} products (generate_series)"):
            url = asyncio.run(databases.create_postgres_database(server, f"bench_{products}"))
            databases.migrate(url, self.env)
            return asyncio.run(databases.seed_postgres(url, products, self.work / f"pg-{products}"))

    def sqlite_dataset(self, products: int) -> databases.Dataset:
        with self.phase(f"seed SQLite with {products} products"):
            path = self.work / f"catalog-{products}.sqlite3"
            databases.migrate(f"sqlite://{path}", self.env)
            return databases.seed_sqlite(path, products, self.work / f"sqlite-{products}")

    def all(self) -> None:
        config = self.config
        endpoints = tuple(e for e in CATALOG_ENDPOINTS if e in config.endpoints)
        if config.baselines:
            self.baseline("ceiling", None)
        if "postgresql" in config.engines:
            with self.phase("start PostgreSQL"):
                postgres = self.stack.enter_context(databases.postgres())
            small = self.postgres_dataset(postgres, config.products)
            if config.baselines:
                self.baseline("floor", small)
            self.catalog("postgresql", small, endpoints)
            if config.sampled_ratio and "get" in endpoints:
                self.catalog("postgresql", small, ("get",), sampled=config.sampled_ratio)
            scale_endpoints = tuple(e for e in SCALE_ENDPOINTS if e in endpoints)
            if config.scale_products and scale_endpoints:
                large = self.postgres_dataset(postgres, config.scale_products)
                self.catalog("postgresql", large, scale_endpoints)
        if "sqlite" in config.engines:
            self.catalog("sqlite", self.sqlite_dataset(config.products), endpoints)


def run(config: Config, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every measurement of one run as a JSON-ready dict (bench.report shapes and writes it)."""
    from bench import report

    started = time.time()
    machine = environment.describe()
    with contextlib.ExitStack() as stack:
        bench = Bench(config, stack, say)
        failed = True
        try:
            bench.all()
            failed = False
        finally:
            if failed:
                say(f"bench: logs kept in {bench.work}")
            else:
                stack.callback(shutil.rmtree, bench.work, True)
        exports = {"requests": bench.sink.exports, "bytes": bench.sink.bytes}
    machine["load_average_end"] = environment.load_average()
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return report.build(bench.runs, settings, machine, bench.phases, exports, started)
