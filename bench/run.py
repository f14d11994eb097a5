"""One bench run: the framework ceiling, each endpoint's database floor and the catalog (as production
runs it, then labelled variants; PostgreSQL and SQLite) under the same wrk load, then list pages at a
large PostgreSQL dataset, then (if asked) a soak. Every process started here is stopped before `run`
returns or raises (Ctrl-C included)."""

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
from bench.production import ENVIRONMENT as PRODUCTION_ENVIRONMENT
from bench.production import production
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
    # The headline rows run the chart's production configuration with the trace sampler its values
    # set. The same configuration recording and exporting every span (OTEL_TRACES_SAMPLER=
    # parentbased_always_on) runs every endpoint again on PostgreSQL, as `catalog-all-spans`: what
    # tracing everything would cost. False skips it.
    all_spans: bool = True
    # list and list-deep are run this many times at each size for the scaling check (median p99).
    scale_runs: int = 3
    # Seconds of GET load on the production configuration after the run, RSS per worker sampled
    # every soak_interval seconds; 0 skips it.
    soak_seconds: float = 0.0
    soak_interval: float = 15.0
    output: Path = ROOT / "bench" / "results" / "latest.json"


@dataclass
class Run:
    """What one run measured; the report adds the ratios."""

    target: str  # ceiling | floor | catalog-production | catalog-dev | catalog-all-spans
    database: str  # none | postgresql | sqlite
    products: int
    endpoint: str
    result: dict[str, Any]
    rss_mib: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Variant:
    """A configuration of `catalog serve`: its row label, environment and a token it accepts."""

    target: str
    title: str
    env: dict[str, str]
    token: str


class Bench:
    def __init__(self, config: Config, stack: contextlib.ExitStack, say: Callable[[str], None]) -> None:
        self.config, self.stack, self.say = config, stack, say
        self.runs: list[Run] = []
        self.scale_samples: list[Run] = []  # repeats of the scaling runs, for their median p99
        self.soak: list[dict[str, Any]] = []
        self.phases: dict[str, float] = {}
        self.started = 0  # catalog servers started so far
        self.work = databases.scratch_dir()
        self.secret = secrets.token_urlsafe(48)
        # The development configuration: `catalog migrate`, `catalog token` and the catalog-dev rows.
        self.env = catalog_env(CATALOG_JWT_SECRET=self.secret, CATALOG_LOG_LEVEL="INFO")
        self.token = self._token()
        self.sink = OtlpReceiver(keep=False)
        stack.callback(self.sink.close)
        ttl = int(3600 + config.duration * 60 + config.soak_seconds)
        self.production = production(self.work, self.sink.url, ttl)
        prod_env, prod_token = self.production.env, self.production.token
        self.headline = Variant("catalog-production", "production configuration (RS256)", prod_env, prod_token)
        dev_env = {
            "CATALOG_JWT_SECRET": self.secret,
            "CATALOG_LOG_LEVEL": "INFO",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.url,
        }
        self.dev = Variant("catalog-dev", "development configuration (HS256 secret)", dev_env, self.token)
        every_span = {k: v for k, v in prod_env.items() if k != "OTEL_TRACES_SAMPLER_ARG"}
        every_span["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
        title = "production configuration, every span exported"
        self.all_spans = Variant("catalog-all-spans", title, every_span, prod_token)

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
                args: Callable[[str], list[str]], token: str, keep: list[Run] | None = None) -> Run:  # fmt: skip
        """Warm up, then the measured run; `args(tag)` gives the script's arguments for a run tag.
        The run is a row of the table unless `keep` is another list to put it in."""
        kwargs: dict[str, Any] = {"connections": self.config.connections, "threads": self.config.wrk_threads}
        kwargs["token"] = token
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
        (self.runs if keep is None else keep).append(run)
        self.say(
            f"  {target:18} {database:10} {products:>9} {endpoint:10} {result['rps']:>9.0f} req/s"
            f"  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  errors {result['errors']}"
            f"  cpu {cpu_ms:.2f} ms/req"
        )
        return run

    @staticmethod
    def scripts(dataset: databases.Dataset) -> dict[str, Script]:
        """The wrk script of each endpoint and its arguments: the same for the catalog and its floor."""
        return {
            "get": ("paths.lua", lambda _t: [str(dataset.get_paths_file)]),
            "list": ("paths.lua", lambda _t: [str(dataset.list_paths_file)]),
            "list-deep": ("paths.lua", lambda _t: [str(dataset.deep_paths_file)]),
            "create": ("create.lua", lambda tag: [tag, databases.CREATED_CATEGORY]),
            "stock": ("stock.lua", lambda _t: [str(dataset.ids_file)]),
        }

    # -- targets -------------------------------------------------------------------------------

    def baseline(self, mode: str, dataset: databases.Dataset | None, endpoints: tuple[str, ...] = ("get",)) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "bench.baseline", mode, str(port), str(self.config.workers)]
        if dataset is not None:
            argv += [dataset.url.replace("postgres://", "postgresql://", 1), str(self.config.pool_max)]
        env = {**self.env, "PYTHONPATH": str(ROOT)}
        scripts = self.scripts(dataset) if dataset else {"get": ("paths.lua", lambda _t: [str(self.ceiling_paths())])}
        database = "postgresql" if dataset else "none"
        products = dataset.products if dataset else 0
        title = f"{mode}: bare Sanic, {self.config.workers} workers" + (f", {products} products" if dataset else "")
        with self.phase(title), self.server(f"{mode}-{products}", argv, env, port, "/livez") as server:
            for endpoint in endpoints:
                script, args = scripts[endpoint]
                self.measure(server, mode, database, products, endpoint, script, args, self.token)

    def ceiling_paths(self) -> Path:
        path = self.work / "ceiling-get.txt"
        path.write_text("/v1/products/4f1c2b9e-8d53-4a57-9a36-0d8f2b7c1e42\n")
        return path

    @contextlib.contextmanager
    def catalog_server(self, variant: Variant, database: str, dataset: databases.Dataset) -> Iterator[Server]:
        """`catalog serve` on `dataset` in `variant`'s configuration, with every middleware on."""
        port = free_port()
        # Numbered: the scaling rounds start the same configuration on the same data again, and a
        # server must not append to another's log or find its Prometheus files.
        self.started += 1
        name = f"{variant.target}-{database}-{dataset.products}-{self.started}"
        env = {
            **catalog_env(),
            "DATABASE_URL": dataset.url,
            "CATALOG_HOST": "127.0.0.1",
            "CATALOG_PORT": str(port),
            "CATALOG_WORKERS": str(self.config.workers),
            "CATALOG_DB_POOL_MAX": str(self.config.pool_max),
            "CATALOG_METRICS_DIR": str(self.work / f"{name}-metrics"),
            "CATALOG_GRACEFUL_SHUTDOWN_SECONDS": "5",
            **variant.env,
        }
        argv = [sys.executable, "-m", "catalog", "serve"]
        with self.server(name, argv, env, port, "/readyz") as server:
            yield server

    def catalog(self, variant: Variant, database: str, dataset: databases.Dataset, endpoints: tuple[str, ...]) -> None:
        title = f"catalog, {variant.title}, on {database}, {dataset.products} products, {self.config.workers} workers"
        scripts = self.scripts(dataset)
        with self.phase(title), self.catalog_server(variant, database, dataset) as server:
            for endpoint in endpoints:
                script, args = scripts[endpoint]
                self.measure(server, variant.target, database, dataset.products, endpoint, script, args, variant.token)

    def scaling(self, small: databases.Dataset, large: databases.Dataset, endpoints: tuple[str, ...]) -> None:
        """The page endpoints on both sizes, interleaved so the machine's load drifts over both alike,
        `scale_runs` times: the first large run is the table's row, every other one a sample."""
        variant = self.headline
        title = (
            f"catalog, {variant.title}, {small.products} vs {large.products} products, {self.config.scale_runs} rounds"
        )
        with (
            self.phase(title),
            self.catalog_server(variant, "postgresql", small) as small_server,
            self.catalog_server(variant, "postgresql", large) as large_server,
        ):
            for round_ in range(self.config.scale_runs):
                for endpoint in endpoints:
                    for dataset, server in ((small, small_server), (large, large_server)):
                        keep = None if dataset is large and round_ == 0 else self.scale_samples
                        script, args = self.scripts(dataset)[endpoint]
                        self.measure(server, variant.target, "postgresql", dataset.products, endpoint, script, args,
                                     variant.token, keep)  # fmt: skip

    def soak_get(self, dataset: databases.Dataset) -> None:
        """GET by id flat out (the rate the GET row measured) for soak_seconds, in soak_interval
        slices of wrk, with every worker's RSS after each slice."""
        variant, config = self.headline, self.config
        slices = max(1, round(config.soak_seconds / config.soak_interval))
        script, args = self.scripts(dataset)["get"]
        title = f"soak: GET, {variant.title}, {slices} x {config.soak_interval:g} s"
        with self.phase(title), self.catalog_server(variant, "postgresql", dataset) as server:
            started = time.monotonic()
            kwargs: dict[str, Any] = {"connections": config.connections, "threads": config.wrk_threads}
            kwargs["token"] = variant.token
            for _ in range(slices):
                result = load.run_wrk(server.url, script, args("S"), duration=config.soak_interval, **kwargs)
                rss = server.worker_rss_mib()
                self.soak.append(
                    {"seconds": round(time.monotonic() - started, 1), "rps": result["rps"],
                     "errors": result["errors"], "rss_mib_per_worker": rss}
                )  # fmt: skip
                self.say(f"  soak {self.soak[-1]['seconds']:>6.0f} s  {result['rps']:>7.0f} req/s  RSS {rss} MiB")

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
                self.baseline("floor", small, endpoints)
            self.catalog(self.headline, "postgresql", small, endpoints)
            self.catalog(self.dev, "postgresql", small, endpoints)
            if config.all_spans:
                # Every endpoint, so each row beside it shows what exporting every span costs.
                self.catalog(self.all_spans, "postgresql", small, endpoints)
            scale_endpoints = tuple(e for e in SCALE_ENDPOINTS if e in endpoints)
            if config.scale_products and scale_endpoints:
                large = self.postgres_dataset(postgres, config.scale_products)
                if config.baselines:
                    self.baseline("floor", large, scale_endpoints)
                self.scaling(small, large, scale_endpoints)
            if config.soak_seconds:
                self.soak_get(small)
        if "sqlite" in config.engines:
            # SQLite is refused in production: the development configuration only.
            self.catalog(self.dev, "sqlite", self.sqlite_dataset(config.products), endpoints)


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
    settings["production"] = {
        "environment": f"environments/{PRODUCTION_ENVIRONMENT}/values.yaml over the chart's values.yaml",
        "env": {k: v for k, v in bench.production.env.items() if k != "CATALOG_JWT_PUBLIC_KEY_FILE"},
        "trace_sampler": bench.production.sampler,
        "chart_workers_per_pod": bench.production.workers_per_pod,
    }
    return report.build(bench.runs, bench.scale_samples, bench.soak, settings, machine, bench.phases, exports, started)
