"""Shapes a run's measurements: ratios to the ceiling and to each endpoint's floor, the scaling
check, RSS, the soak verdict, the goals, a Markdown table, and the JSON file later runs are compared with."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.run import Run

# Goals: each a ratio within one run; a miss is reported, never hidden.
HEADLINE = "catalog-production"
VS_FLOOR_GOALS = {"get": 0.8, "list": 0.6, "list-deep": 0.6, "create": 0.6, "stock": 0.6}
SCALE_P99_GOAL = 1.5
# Soak: RSS per worker over the last third of the slices at most this much above the first third.
SOAK_GROWTH_LIMIT = 0.02


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _row(run: Run) -> dict[str, Any]:
    r = run.result
    return {
        "target": run.target,
        "database": run.database,
        "products": run.products,
        "endpoint": run.endpoint,
        "rps": r["rps"],
        "p50_ms": r["p50_ms"],
        "p90_ms": r["p90_ms"],
        "p99_ms": r["p99_ms"],
        "max_ms": r["max_ms"],
        "requests": r["requests"],
        "errors": r["errors"],
        "non_2xx": r["non_2xx"],
        "socket_errors": r["socket_errors"],
        "stalled": r["stalled"],
        "worker_cpu_ms_per_request": r["cpu_ms_per_request"],
        "load_average_1m": r["load_average_1m"],
        "rss_mib_per_worker": run.rss_mib,
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _with_ratios(rows: list[dict[str, Any]], small: int) -> None:
    """x ceiling (a GET of a fixed body), and x floor against the floor of the row's own endpoint:
    at the row's dataset size if the floor ran there, else at the base size (SQLite rows compare
    with the PostgreSQL floor, a yardstick). By req/s (higher is better) and by CPU ms per request
    (the floor's over the row's, so also higher is better, 1 = as cheap as the floor)."""
    ceiling = next((r for r in rows if r["target"] == "ceiling"), None)
    floors = {(r["endpoint"], r["products"]): r for r in rows if r["target"] == "floor"}
    for row in rows:
        if not row["target"].startswith("catalog"):
            continue
        row["vs_ceiling"] = _ratio(row["rps"], ceiling["rps"]) if ceiling else None
        floor = floors.get((row["endpoint"], row["products"])) or floors.get((row["endpoint"], small))
        row["vs_floor"] = _ratio(row["rps"], floor["rps"]) if floor else None
        row["vs_floor_cpu"] = (
            _ratio(floor["worker_cpu_ms_per_request"], row["worker_cpu_ms_per_request"]) if floor else None
        )
        row["floor_products"] = floor["products"] if floor else None


def _scaling(rows: list[dict[str, Any]], samples: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    small, large = settings["products"], settings["scale_products"]
    scaling = {}
    for endpoint in ("list", "list-deep"):

        def p99(runs: list[dict[str, Any]], size: int, endpoint: str = endpoint) -> list[float]:
            return [
                r["p99_ms"] for r in runs if (r["target"], r["endpoint"], r["products"]) == (HEADLINE, endpoint, size)
            ]

        # The small size's table row ran apart from the interleaved scaling rounds: only the rounds count.
        at = {small: p99(samples, small), large: p99([*rows, *samples], large)}
        if at[small] and at[large]:
            scaling[endpoint] = {
                "p99_ms_small": round(_median(at[small]), 2),
                "p99_ms_large": round(_median(at[large]), 2),
                "p99_ms_small_runs": at[small],
                "p99_ms_large_runs": at[large],
                "products_small": small,
                "products_large": large,
                "ratio": _ratio(_median(at[large]), _median(at[small])),
            }
    return scaling


def _rss(rows: list[dict[str, Any]], samples: list[dict[str, Any]]) -> dict[str, float]:
    """The largest RSS of a worker of the production configuration after any run, per dataset size."""
    largest: dict[str, float] = {}
    for r in [*rows, *samples]:
        if r["target"] == HEADLINE and r["database"] == "postgresql" and r["rss_mib_per_worker"]:
            key = str(r["products"])
            largest[key] = max(largest.get(key, 0.0), *r["rss_mib_per_worker"])
    return largest


def _soak(slices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """RSS per worker of the first third of the slices (after the first, the warm-up) against the last third."""
    if not slices:
        return None
    body = slices[1:] if len(slices) > 3 else slices
    third = max(1, len(body) // 3)
    workers = min(len(s["rss_mib_per_worker"]) for s in body)
    growth = []
    for worker in range(workers):
        first = sum(s["rss_mib_per_worker"][worker] for s in body[:third]) / third
        last = sum(s["rss_mib_per_worker"][worker] for s in body[-third:]) / third
        growth.append({"first_mib": round(first, 1), "last_mib": round(last, 1), "growth": _ratio(last - first, first)})
    worst = max((g["growth"] or 0.0 for g in growth), default=0.0)
    return {
        "seconds": slices[-1]["seconds"],
        "rps_median": _median([s["rps"] for s in slices]),
        "errors": sum(s["errors"] for s in slices),
        "per_worker": growth,
        "worst_growth": worst,
        "grows": worst > SOAK_GROWTH_LIMIT,
        "slices": slices,
    }


def build(
    runs: list[Run],
    scale_samples: list[Run],
    soak: list[dict[str, Any]],
    settings: dict[str, Any],
    machine: dict[str, Any],
    phases: dict[str, float],
    exports: dict[str, int],
    started: float,
) -> dict[str, Any]:
    rows = [_row(run) for run in runs]
    samples = [_row(run) for run in scale_samples]
    _with_ratios(rows, settings["products"])
    scaling = _scaling(rows, samples, settings)
    soak_summary = _soak(soak)
    return {
        "schema": 2,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "settings": settings,
        "machine": machine,
        "phases_seconds": phases,
        "otlp_exports": exports,
        "rows": rows,
        "scale_samples": samples,
        "scaling": scaling,
        "rss_mib_max_per_worker": _rss(rows, samples),
        "soak": soak_summary,
        "goals": _goals(rows, samples, scaling, soak_summary),
    }


def _goals(
    rows: list[dict[str, Any]], samples: list[dict[str, Any]], scaling: dict[str, Any], soak: dict[str, Any] | None
) -> list[dict[str, Any]]:
    goals = []
    for endpoint, goal in VS_FLOOR_GOALS.items():
        row = next(
            (r for r in rows if r["target"] == HEADLINE and r["endpoint"] == endpoint and r.get("floor_products")),
            None,
        )
        if row is not None and row["vs_floor"] is not None:
            goals.append(
                {
                    "goal": f"{endpoint}, production configuration, >= {goal} x its floor (req/s)",
                    "value": row["vs_floor"],
                    "cpu_ratio": row["vs_floor_cpu"],
                    "met": row["vs_floor"] >= goal,
                }
            )
    for endpoint, numbers in scaling.items():
        goals.append(
            {
                "goal": f"{endpoint} median p99 at {numbers['products_large']} products"
                f" <= {SCALE_P99_GOAL} x at {numbers['products_small']}",
                "value": numbers["ratio"],
                "met": numbers["ratio"] is not None and numbers["ratio"] <= SCALE_P99_GOAL,
            }
        )
    if soak is not None:
        goals.append(
            {
                "goal": f"no RSS growth per worker over a {soak['seconds']:.0f} s GET soak"
                f" (<= {SOAK_GROWTH_LIMIT:.0%})",
                "value": soak["worst_growth"],
                "met": not soak["grows"],
            }
        )
    errors = sum(r["errors"] for r in [*rows, *samples]) + (soak["errors"] if soak else 0)
    goals.append({"goal": "zero errors in every run", "value": errors, "met": errors == 0})
    return goals


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| target | database | products | endpoint | req/s | p50 ms | p99 ms | errors | RSS/worker MiB "
        "| CPU ms/req | x ceiling | x floor | x floor CPU |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        rss = max(r["rss_mib_per_worker"]) if r["rss_mib_per_worker"] else None
        lines.append(
            f"| {r['target']} | {r['database']} | {r['products']:,} | {r['endpoint']} | {r['rps']:,.0f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {_fmt(rss, '.0f')} "
            f"| {r['worker_cpu_ms_per_request']:.2f} | {_fmt(r.get('vs_ceiling'), '.2f')} "
            f"| {_fmt(r.get('vs_floor'), '.2f')} | {_fmt(r.get('vs_floor_cpu'), '.2f')} |"
        )
    lines.append("")
    settings = result["settings"]
    production = settings.get("production")
    if production:
        env = production["env"]
        lines.append(
            f"- {HEADLINE} (the headline): {production['environment']}: CATALOG_ENV={env['CATALOG_ENV']}, "
            f"RS256 tokens against a PEM public key, log level {env['CATALOG_LOG_LEVEL']}, traces "
            f"{production['trace_sampler']}, exported; {settings['workers']} workers "
            f"(the chart runs {production['chart_workers_per_pod']} per pod and scales by pods)"
        )
    lines.append("- catalog-dev: CATALOG_ENV=development with an HS256 secret, every span exported")
    if any(r["target"] == "catalog-all-spans" for r in result["rows"]):
        lines.append(
            "- catalog-all-spans: the production configuration with every span recorded and exported"
            " (OTEL_TRACES_SAMPLER=parentbased_always_on)"
        )
    lines.append(
        "- x floor: against the floor of the row's own endpoint (bare Sanic, raw asyncpg, the same SQL), "
        "by req/s and by CPU ms/req (floor's / row's)"
    )
    for endpoint, s in result["scaling"].items():
        runs = len(s["p99_ms_large_runs"])
        lines.append(
            f"- {endpoint} p99, median of {runs}: {s['p99_ms_small']:.1f} ms at {s['products_small']:,} products, "
            f"{s['p99_ms_large']:.1f} ms at {s['products_large']:,} (x{s['ratio']:.2f})"
        )
    if result["rss_mib_max_per_worker"]:
        sizes = ", ".join(f"{int(k):,} products {v:.0f} MiB" for k, v in result["rss_mib_max_per_worker"].items())
        lines.append(f"- RSS per worker, production configuration, largest after any run: {sizes}")
    if soak := result["soak"]:
        first = [w["first_mib"] for w in soak["per_worker"]]
        last = [w["last_mib"] for w in soak["per_worker"]]
        lines.append(
            f"- soak: GET for {soak['seconds']:.0f} s at a median {soak['rps_median']:,.0f} req/s, RSS per worker "
            f"{first} -> {last} MiB (first third -> last third): {'GROWS' if soak['grows'] else 'no growth'}"
        )
    for goal in result["goals"]:
        cpu = f", by CPU {goal['cpu_ratio']}" if goal.get("cpu_ratio") is not None else ""
        lines.append(f"- goal {'met' if goal['met'] else 'MISSED'}: {goal['goal']} (got {goal['value']}{cpu})")
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown(result))
    return output
