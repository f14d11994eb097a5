"""The catalog as staging and prod run it, read off the chart's values (apps/catalog/chart/values.yaml
under environments/<env>/values.yaml, merged as Helm merges them) and mapped to the environment the
chart's ConfigMap gives the container: CATALOG_ENV, the log level, the JWT issuer and audience, a PEM
public key file, trace export, extraEnv (where the environments set OTEL_TRACES_SAMPLER). Tokens are RS256,
signed with the private half of a key made for the run, as an identity provider signs them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
CHART_VALUES = ROOT / "apps" / "catalog" / "chart" / "values.yaml"
ENVIRONMENT = "prod"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def chart_values(environment: str = ENVIRONMENT) -> dict[str, Any]:
    values = yaml.safe_load(CHART_VALUES.read_text())
    return _merge(values, yaml.safe_load((ROOT / "environments" / environment / "values.yaml").read_text()) or {})


@dataclass(frozen=True)
class Production:
    """The environment (minus DATABASE_URL, port, pool and scratch paths, which the bench sets) and a token."""

    env: dict[str, str]
    token: str
    workers_per_pod: int  # the chart's; the bench runs its own worker count, see bench/README.md
    sampler: str  # what the chart sets, or the OpenTelemetry SDK's default when it sets none


def production(workdir: Path, otlp_endpoint: str, ttl_seconds: int, environment: str = ENVIRONMENT) -> Production:
    config = chart_values(environment)["config"]
    if config["env"] != "production" or not config["jwt"]["publicKeySecretKey"]:
        raise ValueError(f"environments/{environment}: expected config.env production with a PEM public key")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = workdir / "jwt-public.pem"
    pem.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    env = {
        "CATALOG_ENV": config["env"],
        "CATALOG_LOG_LEVEL": config["logLevel"],
        "CATALOG_JWT_ISSUER": config["jwt"]["issuer"],
        "CATALOG_JWT_AUDIENCE": config["jwt"]["audience"],
        "CATALOG_JWT_PUBLIC_KEY_FILE": str(pem),
        **{name: str(value) for name, value in config["extraEnv"].items()},
    }
    if config["otlpEndpoint"]:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint  # the local sink in place of the collector
    now = int(time.time())
    claims = {
        "sub": "bench",
        "iss": env["CATALOG_JWT_ISSUER"],
        "aud": env["CATALOG_JWT_AUDIENCE"],
        "iat": now,
        "exp": now + ttl_seconds,
        "scope": "catalog:read catalog:write",
    }
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on (SDK default: the chart sets none)")
    if "OTEL_TRACES_SAMPLER_ARG" in env:
        sampler += f" {env['OTEL_TRACES_SAMPLER_ARG']}"
    return Production(env, jwt.encode(claims, key, algorithm="RS256"), int(config["workers"]), sampler)
