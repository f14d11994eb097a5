"""Shapes a run's measurements: ratios to the ceiling and floor, the scaling check, the goals,
a Markdown table, and the JSON file that later runs are compared with."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.run import Run

# Goals from the issue; a miss is reported, never hidden.
GET_VS_FLOOR_GOAL = 0.8
SCALE_P99_GOAL = 1.5


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


def build(
    runs: list[Run],
    settings: dict[str, Any],
    machine: dict[str, Any],
    phases: dict[str, float],
    exports: dict[str, int],
    started: float,
) -> dict[str, Any]:
    rows = [_row(run) for run in runs]
    ceiling = next((r["rps"] for r in rows if r["target"] == "ceiling"), None)
    floor = next((r["rps"] for r in rows if r["target"] == "floor"), None)
    for row in rows:
        if row["target"].startswith("catalog"):
            row["vs_ceiling"] = _ratio(row["rps"], ceiling)
            # The floor is a point read: the ratio means most for `get`, and is a yardstick for the rest.
            row["vs_floor"] = _ratio(row["rps"], floor)
    small = settings["products"]
    scaling = {}
    for endpoint in ("list", "list-deep"):
        at = {
            r["products"]: r["p99_ms"]
            for r in rows
            if r["target"] == "catalog" and r["database"] == "postgresql" and r["endpoint"] == endpoint
        }
        large = settings["scale_products"]
        if small in at and large in at:
            scaling[endpoint] = {
                "p99_ms_small": at[small],
                "p99_ms_large": at[large],
                "products_small": small,
                "products_large": large,
                "ratio": _ratio(at[large], at[small]),
            }
    return {
        "schema": 1,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
        "settings": settings,
        "machine": machine,
        "phases_seconds": phases,
        "otlp_exports": exports,
        "rows": rows,
        "scaling": scaling,
        "goals": _goals(rows, scaling),
    }


def _goals(rows: list[dict[str, Any]], scaling: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    get_pg = next(
        (r for r in rows if r["target"] == "catalog" and r["database"] == "postgresql" and r["endpoint"] == "get"),
        None,
    )
    if get_pg is not None and get_pg.get("vs_floor") is not None:
        goals.append(
            {
                "goal": f"GET by id on PostgreSQL >= {GET_VS_FLOOR_GOAL} x raw asyncpg floor",
                "value": get_pg["vs_floor"],
                "met": get_pg["vs_floor"] >= GET_VS_FLOOR_GOAL,
            }
        )
    for endpoint, numbers in scaling.items():
        goals.append(
            {
                "goal": f"{endpoint} p99 at {numbers['products_large']} products"
                f" <= {SCALE_P99_GOAL} x at {numbers['products_small']}",
                "value": numbers["ratio"],
                "met": numbers["ratio"] is not None and numbers["ratio"] <= SCALE_P99_GOAL,
            }
        )
    errors = sum(r["errors"] for r in rows)
    goals.append({"goal": "zero errors in every run", "value": errors, "met": errors == 0})
    return goals


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| target | database | products | endpoint | req/s | p50 ms | p99 ms | errors | RSS/worker MiB "
        "| CPU ms/req | x ceiling | x floor |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        rss = max(r["rss_mib_per_worker"]) if r["rss_mib_per_worker"] else None
        lines.append(
            f"| {r['target']} | {r['database']} | {r['products']:,} | {r['endpoint']} | {r['rps']:,.0f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {_fmt(rss, '.0f')} "
            f"| {r['worker_cpu_ms_per_request']:.2f} "
            f"| {_fmt(r.get('vs_ceiling'), '.2f')} | {_fmt(r.get('vs_floor'), '.2f')} |"
        )
    lines.append("")
    if any(r["target"] == "catalog-sampled" for r in result["rows"]):
        ratio = result["settings"]["sampled_ratio"]
        lines.append(
            f"- catalog-sampled: every middleware on, traces sampled at {ratio:g}"
            " (OTEL_TRACES_SAMPLER=parentbased_traceidratio); not the default, so not the headline"
        )
    for endpoint, s in result["scaling"].items():
        lines.append(
            f"- {endpoint} p99: {s['p99_ms_small']:.1f} ms at {s['products_small']:,} products, "
            f"{s['p99_ms_large']:.1f} ms at {s['products_large']:,} (x{s['ratio']:.2f})"
        )
    for goal in result["goals"]:
        lines.append(f"- goal {'met' if goal['met'] else 'MISSED'}: {goal['goal']} (got {goal['value']})")
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    output.with_suffix(".md").write_text(markdown(result))
    return output
