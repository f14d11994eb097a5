"""The chart as each environment's Application renders it: lint, strict schemas, kube-linter, digest
pins, PodDisruptionBudget rule, probe routes, NetworkPolicy selectors, and values typos refused."""

from __future__ import annotations

import asyncio
import itertools
import subprocess

import pytest

from tests.support import render
from tools.cluster.toolbox import REPO_ROOT, missing, tool

pytestmark = pytest.mark.static

RENDERS = (*render.environments(), "all-features")
# The kinds each environment renders; a template that appears or disappears unexpectedly changes them.
EXPECTED_KINDS = {
    "dev": {
        "ConfigMap", "Deployment", "Ingress", "NetworkPolicy", "PersistentVolumeClaim", "Pod", "PrometheusRule",
        "Secret", "Service", "ServiceAccount", "ServiceMonitor",
    },
    "staging": {
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy", "Pod",
        "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor",
    },
}  # fmt: skip
EXPECTED_KINDS["prod"] = EXPECTED_KINDS["staging"]


def test_applicationset_generates_one_application_per_environment_folder(applications):
    folders = sorted(p.name for p in render.ENVIRONMENTS.iterdir() if p.is_dir())

    assert sorted(applications) == folders == list(render.environments())
    for name, application in applications.items():
        assert application["spec"]["destination"]["namespace"] == f"catalog-{name}"
        assert [p.name for p in render.value_files(application)] == ["values.yaml", "image.yaml"]
        assert all(p.parent == render.ENVIRONMENTS / name for p in render.value_files(application))
        links = {
            k: v for k, v in application["metadata"]["annotations"].items() if k.startswith("link.argocd.argoproj.io/")
        }
        dashboard = f"http://grafana.localhost/d/catalog-overview?var-namespace=catalog-{name}"
        assert list(links.values()) == [dashboard]


@pytest.mark.parametrize("environment", render.environments())
def test_helm_lint_strict(chart_tools, applications, environment):
    files = render.value_files(applications[environment])

    result = render.helm("lint", "--strict", render.CHART, *(f"--values={f}" for f in files), check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("name", RENDERS)
def test_rendered_objects_pass_kubeconform_strict(kubeconform, rendered, name):
    documents = rendered[name].documents

    result = subprocess.run([*kubeconform, "-"], input=rendered[name].text, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Valid: {len(documents)}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout, result.stdout


@pytest.mark.parametrize("name", RENDERS)
def test_kube_linter_clean_with_listed_exceptions(rendered, tmp_path, name):
    if missing(["kube-linter"]):
        pytest.fail("kube-linter missing: run `make tools`")
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(rendered[name].text)

    result = subprocess.run(
        [tool("kube-linter"), "lint", "--config", REPO_ROOT / ".kube-linter.yaml", manifest],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No lint errors found!" in result.stdout


@pytest.mark.parametrize("environment", render.environments())
def test_environment_renders_the_kinds_it_needs(rendered, environment):
    kinds = {d["kind"] for d in rendered[environment].documents}

    assert kinds == EXPECTED_KINDS[environment]


@pytest.mark.parametrize("environment", render.environments())
def test_every_container_runs_the_digest_pinned_in_image_yaml(rendered, environment):
    pin = render.image_pin(environment)
    images = [
        container["image"]
        for _, template in rendered[environment].pod_templates()
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]
    ]

    assert images, "no containers rendered"
    assert set(images) == {f"{pin['repository']}@{pin['digest']}"}


def test_image_tag_is_used_only_without_a_digest(chart_tools):
    values = {"image": {"repository": "registry.test/catalog", "tag": "1.2.3"}}

    deployment = render.render(values=values).one("Deployment")

    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/catalog:1.2.3"


@pytest.mark.parametrize(
    ("values", "budget"),
    [
        pytest.param({"replicaCount": 1}, False, id="one-replica-no-pdb"),
        pytest.param({"replicaCount": 3, "database": {"engine": "postgresql"}}, True, id="three-replicas-pdb"),
        pytest.param({"autoscaling": {"enabled": True, "minReplicas": 2}, "database": {"engine": "postgresql"}}, True,
                     id="hpa-floor-two-pdb"),
        pytest.param({"replicaCount": 3, "autoscaling": {"enabled": True, "minReplicas": 1},
                      "database": {"engine": "postgresql"}}, False, id="hpa-floor-one-no-pdb"),
    ],
)  # fmt: skip
def test_pod_disruption_budget_only_above_one_replica(chart_tools, values, budget):
    if values.get("database", {}).get("engine") == "postgresql":
        values = {**values, "existingSecret": "s", "database": {"engine": "postgresql", "networkPeers": [{}]}}

    result = render.render(values=values)

    budgets = result.of_kind("PodDisruptionBudget")
    assert len(budgets) == (1 if budget else 0)
    if budget:
        pods = result.one("Deployment")["spec"]["template"]["metadata"]["labels"]
        assert render.label_selector_matches(budgets[0]["spec"]["selector"], pods)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_every_pod_is_placed_where_the_server_may_run(chart_tools, engine):
    placement = {
        "nodeSelector": {"pool": "catalog"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "catalog", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}},
    }  # fmt: skip
    database = {"existingSecret": "s", "database": {"engine": "postgresql", "networkPeers": [{}]}}

    result = render.render(values={**placement, **(database if engine == "postgresql" else {})})

    # The server, its migration (the init container beside SQLite, the Job before PostgreSQL), the test pod.
    kinds = {"sqlite": ["Deployment", "Pod"], "postgresql": ["Deployment", "Job", "Pod"]}[engine]
    assert sorted(owner["kind"] for owner, _ in result.pod_templates()) == kinds
    for owner, template in result.pod_templates():
        assert {key: template["spec"].get(key) for key in placement} == placement, owner["kind"]


@pytest.mark.parametrize("environment", render.environments())
def test_pdb_matches_the_environment_replicas(rendered, environment):
    # The environment's values hold only what differs from the chart's: read the floor as rendered.
    hpa = rendered[environment].of_kind("HorizontalPodAutoscaler")
    floor = hpa[0]["spec"]["minReplicas"] if hpa else rendered[environment].one("Deployment")["spec"]["replicas"]

    assert bool(rendered[environment].of_kind("PodDisruptionBudget")) == (floor > 1)


def _probes(deployment: dict) -> list[tuple[str, str, int]]:
    """(probe, path, container port) for every HTTP probe of the server container."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    found = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        found.append((probe, get["path"], ports.get(get["port"], get["port"])))
    return found


@pytest.fixture(scope="module")
def app_status(tmp_path_factory):
    """GET status of a path on the real app (a migrated SQLite file, the development settings)."""
    from tortoise import Tortoise

    from catalog.app import create_app
    from catalog.db import migrate
    from catalog.settings import Settings

    url = f"sqlite://{tmp_path_factory.mktemp('probe-db')}/catalog.sqlite3"
    settings = Settings(database_url=url, log_level="WARNING")
    asyncio.run(migrate(settings))
    apps = itertools.count()

    async def get(path: str) -> int:
        # A fresh app per request: the test client runs the stop listeners, which start draining.
        app = create_app(settings, name=f"chart_probe_check_{next(apps)}")
        _, response = await app.asgi_client.get(path)
        return response.status

    yield lambda path: asyncio.run(get(path))
    if Tortoise._inited:
        asyncio.run(Tortoise.close_connections())


@pytest.mark.parametrize("environment", render.environments())
def test_probes_hit_routes_the_app_serves(rendered, app_status, environment):
    deployment = rendered[environment].one("Deployment")
    probes = _probes(deployment)

    assert {name for name, _, _ in probes} == {"startupProbe", "livenessProbe", "readinessProbe"}
    for name, path, port in probes:
        assert port == 8000, f"{name} targets port {port}; the image listens on 8000"
        assert app_status(path) == 200, f"{name} GET {path} is not 200 on the real app"
    # Liveness must not depend on the database (a DB outage must not restart pods).
    assert dict((n, p) for n, p, _ in probes)["livenessProbe"] == "/livez"
    assert dict((n, p) for n, p, _ in probes)["readinessProbe"] == "/readyz"


def test_dev_only_secret_is_the_secret_the_app_defaults_to(rendered):
    """dev's chart-made Secret carries the app's own dev secret, so `catalog token` in a dev pod
    signs tokens its server accepts; the two copies of the value cannot drift apart."""
    from catalog.settings import DEV_JWT_SECRET

    (secret,) = [s for s in rendered["dev"].of_kind("Secret") if s["metadata"]["name"].endswith("-dev-only-jwt")]

    assert secret["stringData"] == {"CATALOG_JWT_SECRET": DEV_JWT_SECRET}


@pytest.mark.parametrize("name", RENDERS)
def test_network_policies_select_the_release_pods(rendered, name):
    result = rendered[name]
    policies = result.of_kind("NetworkPolicy")
    pods = [(owner, template["metadata"]["labels"], template["spec"]) for owner, template in result.pod_templates()]

    for owner, labels, _ in pods:
        assert any(render.label_selector_matches(p["spec"]["podSelector"], labels) for p in policies), (
            f"no NetworkPolicy selects the pods of {owner['kind']} {owner['metadata']['name']}"
        )
    for policy in policies:
        selected = [
            spec for _, labels, spec in pods if render.label_selector_matches(policy["spec"]["podSelector"], labels)
        ]
        assert selected, f"NetworkPolicy {policy['metadata']['name']} selects no pod of the release"
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                assert rule.get(peers_key), f"{policy['metadata']['name']}: an empty `{peers_key}` allows everyone"
                if direction == "ingress":  # named ports resolve against the selected pods' own ports
                    for port in rule.get("ports", []):
                        names = {p.get("name") for s in selected for c in s["containers"] for p in c.get("ports", [])}
                        assert not isinstance(port["port"], str) or port["port"] in names


@pytest.mark.parametrize("name", RENDERS)
def test_network_policy_flows_between_release_pods_match(rendered, name):
    """Same-namespace peers naming this release match a pod it renders (the test pod reaches the server)."""
    result = rendered[name]
    instance = result.one("Deployment")["metadata"]["labels"]["app.kubernetes.io/instance"]
    pod_labels = [template["metadata"]["labels"] for _, template in result.pod_templates()]
    release_peers = [
        peer["podSelector"]
        for policy in result.of_kind("NetworkPolicy")
        for direction, key in (("ingress", "from"), ("egress", "to"))
        for rule in policy["spec"].get(direction, [])
        for peer in rule[key]
        if "namespaceSelector" not in peer
        and peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/instance") == instance
    ]

    assert release_peers, "the test pod <-> server flows are missing"
    for selector in release_peers:
        assert any(render.label_selector_matches(selector, labels) for labels in pod_labels), selector
    service = result.one("Service")
    server = result.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert render.label_selector_matches({"matchLabels": service["spec"]["selector"]}, server)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"replicaCont": 2}, "additional properties 'replicaCont' not allowed", id="top-level-typo"),
        pytest.param({"image": {"digets": "sha256:" + "0" * 64}}, "additional properties 'digets'", id="nested-typo"),
        pytest.param({"monitoring": {"serviceMonitor": {"intervall": "30s"}}}, "'intervall'", id="monitoring-typo"),
        pytest.param({"autoscaling": {"enabled": "yes"}}, "/autoscaling/enabled", id="string-for-bool"),
        pytest.param({"replicaCount": "2"}, "/replicaCount", id="string-for-int"),
        pytest.param({"config": {"logLevel": "VERBOSE"}}, "/config/logLevel", id="unknown-enum"),
        pytest.param({"image": {"digest": "sha256:abc"}}, "/image/digest", id="short-digest"),
        pytest.param({"networkPolicy": {"ingressFrom": []}}, "/networkPolicy/ingressFrom", id="allow-all-peers"),
    ],
)
def test_values_typo_fails_naming_the_key(chart_tools, applications, values, named):
    result = render.render(*render.value_files(applications["dev"]), values=values, check=False)

    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("environment", "values", "message"),
    [
        pytest.param("staging", {"existingSecret": ""}, "/existingSecret", id="production-without-secret"),
        pytest.param("staging", {"database": {"engine": "sqlite"}}, "/database/engine", id="production-on-sqlite"),
        pytest.param("prod", {"config": {"jwt": {"devOnlySecret": True}}}, "/config/jwt/devOnlySecret",
                     id="production-with-dev-secret"),
        pytest.param("dev", {"replicaCount": 2}, "database.engine sqlite allows one replica", id="sqlite-two-replicas"),
        pytest.param("prod", {"database": {"networkPeers": []}}, "database.networkPeers", id="postgres-anywhere"),
        pytest.param("dev", {"terminationGracePeriodSeconds": 20}, "terminationGracePeriodSeconds (20) must exceed",
                     id="grace-below-drain"),
    ],
)  # fmt: skip
def test_impossible_combinations_fail_clearly(chart_tools, applications, environment, values, message):
    result = render.render(*render.value_files(applications[environment]), values=values, check=False)

    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_all_features_values_file_is_valid(rendered):
    kinds = {d["kind"] for d in rendered["all-features"].documents}

    assert {"HTTPRoute", "HorizontalPodAutoscaler", "Ingress", "ServiceMonitor", "Job"} <= kinds
    assert render.ALL_FEATURES.exists()
