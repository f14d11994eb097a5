"""The manifests under argo-workflows/ (what the argo_workflows role applies): `argo lint --offline`
on the folder as a whole, the shape the pipeline promises (the ci chain, retries, resources, the pin
mutex, rootless build pods, parameters declared where they are used), every manifest accepted by
the API server with the pinned CRDs under strict field validation, the build pod admitted by Pod
Security `baseline` and refused by `restricted`, and each ServiceAccount's rights by
`kubectl auth can-i`: exactly what its steps need."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import REPO_ROOT, missing, run, tool

FOLDER = REPO_ROOT / "argo-workflows"
NAMESPACE = "argo"
# The catalog namespaces promote reads (its Roles live there); prod is never a promotion source.
READ_NAMESPACES = ("catalog-dev", "catalog-staging")


def _documents() -> list[tuple[Path, dict]]:
    """What the role applies: every *.yaml under the folder except under steps/."""
    return [
        (path, document)
        for path in sorted(FOLDER.rglob("*.yaml"))
        if path.relative_to(FOLDER).parts[0] != "steps"
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


DOCUMENTS = _documents()
TEMPLATES = {d["metadata"]["name"]: d for _, d in DOCUMENTS if d["kind"] == "WorkflowTemplate"}


def _template(ref: str) -> dict:
    """`<WorkflowTemplate>/<template>`."""
    workflow, name = ref.split("/")
    (found,) = [t for t in TEMPLATES[workflow]["spec"]["templates"] if t["name"] == name]
    return found


def _reachable(workflow: str) -> Iterator[dict]:
    """Every template a run of `workflow` executes: from its entrypoint and exit handler, through
    DAG tasks and templateRefs (a referenced template runs with the caller's workflow parameters)."""
    spec = TEMPLATES[workflow]["spec"]
    todo = [f"{workflow}/{spec['entrypoint']}", *([f"{workflow}/{spec['onExit']}"] if "onExit" in spec else [])]
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        template = _template(ref)
        yield template
        owner = ref.split("/")[0]
        for task in template.get("dag", {}).get("tasks", []):
            target = task.get("templateRef")
            todo.append(f"{target['name']}/{target['template']}" if target else f"{owner}/{task['template']}")


# Every template that runs a pod, by `<WorkflowTemplate>/<template>`.
POD_TEMPLATES = {
    f"{workflow['metadata']['name']}/{template['name']}": template
    for workflow in TEMPLATES.values()
    for template in workflow["spec"]["templates"]
    if "script" in template or "container" in template
}


# Static ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def argo() -> Path:
    if missing(["argo"]):
        skip_or_fail("static tier needs `make tools` (.tools/bin lacks argo)")
    return tool("argo")


@pytest.mark.static
@pytest.mark.parametrize(
    ("left_out", "error"),
    [
        pytest.param(None, None, id="whole-folder"),
        # The linter resolves templateRefs only among the files it is given: so the folder as a whole.
        pytest.param(
            "templates/checkout.yaml",
            'templates.main.tasks.checkout couldn\'t find workflow template "checkout"',
            id="without-checkout",
        ),
    ],
)
def test_argo_lint_offline(argo, tmp_path, left_out, error):
    folder = tmp_path / "argo-workflows"
    shutil.copytree(FOLDER, folder, ignore=shutil.ignore_patterns("steps"))
    if left_out:
        (folder / left_out).unlink()

    result = run([argo, "lint", "--offline", "--output", "simple", folder], check=False)

    if error is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert error in result.stdout + result.stderr


@pytest.mark.static
@pytest.mark.parametrize("workflow", sorted(TEMPLATES))
def test_every_workflow_parameter_used_is_declared(workflow):
    """argo lint lets a WorkflowTemplate use a workflow parameter it never declares (a submitter
    might pass it); a templateRef'd step uses its caller's, so each caller must declare them all."""
    declared = {p["name"] for p in TEMPLATES[workflow]["spec"].get("arguments", {}).get("parameters", [])}
    used = {
        name
        for template in _reachable(workflow)
        for name in re.findall(r"\{\{workflow\.parameters\.([\w-]+)\}\}", json.dumps(template))
    }

    assert used - declared == set()


@pytest.mark.static
def test_ci_composes_the_steps_by_template_ref_in_order():
    spec = TEMPLATES["ci"]["spec"]
    (main,) = [t for t in spec["templates"] if t["name"] == spec["entrypoint"]]
    chain = {
        task["name"]: (task.get("depends"), task["templateRef"]["name"], task["templateRef"]["template"])
        for task in main["dag"]["tasks"]
    }

    assert chain == {
        "checkout": (None, "checkout", "checkout"),
        "test": ("checkout", "test", "test"),
        "build": ("test", "build", "build"),
        "scan": ("build", "scan", "scan"),
        "sign": ("scan", "sign", "sign"),
        "pin": ("sign", "pin", "pin"),
    }
    assert spec["onExit"] == "report"
    assert [c["metadata"]["name"] for c in spec["volumeClaimTemplates"]] == ["workspace"]


# workflow.failures as the controller hands it to the exit handler: strconv.Quote'd JSON (the
# list, or "null" when nothing failed), or already unquoted by the substitution.
FAILED_PIN = [{"displayName": "pin", "message": "signature not verified", "phase": "Failed"}]


@pytest.mark.parametrize(
    ("failures", "reported"),
    [
        pytest.param(json.dumps("null"), "", id="quoted-null"),
        pytest.param("null", "", id="null"),
        pytest.param(json.dumps(json.dumps(FAILED_PIN)), "pin: signature not verified", id="quoted-list"),
        pytest.param(json.dumps(FAILED_PIN), "pin: signature not verified", id="list"),
    ],
)
def test_report_handler_reads_every_form_of_the_failures_and_exits_0(failures, reported):
    (report,) = [t for t in TEMPLATES["ci"]["spec"]["templates"] if t["name"] == "report"]
    env = {"WORKFLOW": "ci-x", "STATUS": "Failed", "DURATION": "12.6", "REVISION": "abc", "FAILURES": failures}
    result = run(["python3", "-c", report["script"]["source"]], env=env)

    assert json.loads(result.stdout) == {
        "workflow": "ci-x", "revision": "abc", "status": "Failed", "seconds": 13, "failed": reported,
    }  # fmt: skip


@pytest.mark.static
def test_each_template_runs_alone_with_a_pipeline_service_account():
    accounts = {d["metadata"]["name"] for _, d in DOCUMENTS if d["kind"] == "ServiceAccount"}

    assert {name: t["spec"]["entrypoint"] for name, t in TEMPLATES.items()} == dict.fromkeys(TEMPLATES, "main")
    assert {name: t["spec"]["serviceAccountName"] for name, t in TEMPLATES.items()} == {
        "checkout": "catalog-ci",
        "test": "catalog-ci",
        "build": "catalog-ci",
        "scan": "catalog-ci",
        "sign": "catalog-ci",
        "pin": "catalog-ci",
        "ci": "catalog-ci",
        "promote": "catalog-promote",
        "rollback": "catalog-rollback",
        "cleanup": "catalog-cleanup",
    }
    assert {t["spec"]["serviceAccountName"] for t in TEMPLATES.values()} <= accounts


@pytest.mark.static
@pytest.mark.parametrize(("name", "template"), POD_TEMPLATES.items(), ids=list(POD_TEMPLATES))
def test_every_step_has_requests_and_limits(name, template):
    containers = [template.get("script") or template["container"], *template.get("sidecars", [])]

    for container in containers:
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, container.get("name", "main")
        assert set(resources["limits"]) == {"cpu", "memory"}, container.get("name", "main")


@pytest.mark.static
def test_network_steps_retry_and_nothing_else_does():
    retrying = {name for name, template in POD_TEMPLATES.items() if "retryStrategy" in template}

    # Not test (a failed test is not retried) nor the exit handler.
    assert retrying == {
        "checkout/checkout",
        "build/build",
        "scan/pull",
        "scan/scan",
        "sign/sign",
        "pin/pin",
        "promote/promote",
        "rollback/rollback",
        "cleanup/cleanup",
    }


@pytest.mark.static
def test_writers_of_the_branch_share_one_mutex():
    locks = {
        name: template["synchronization"]["mutexes"]
        for name, template in POD_TEMPLATES.items()
        if "synchronization" in template
    }

    assert locks == {name: [{"name": "catalog-pin"}] for name in ("pin/pin", "rollback/rollback", "cleanup/cleanup")}


@pytest.mark.static
@pytest.mark.parametrize(("name", "template"), POD_TEMPLATES.items(), ids=list(POD_TEMPLATES))
def test_steps_run_as_uid_1000_and_only_the_build_keeps_capabilities(name, template):
    pod = template["securityContext"]
    container = (template.get("script") or template["container"])["securityContext"]

    assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (True, 1000, 1000)
    assert "privileged" not in container or container["privileged"] is False
    assert "add" not in container.get("capabilities", {})
    if name == "build/build":
        # unset seccomp (unshare(CLONE_NEWUSER)), escalation allowed (file caps), nothing dropped.
        assert "seccompProfile" not in pod
        assert container == {"privileged": False, "allowPrivilegeEscalation": True}
    else:
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


# Cluster: the API server's view -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_namespaces(control_plane) -> Iterator[None]:
    """argo and the catalog namespaces promote reads, as the namespaces role makes them (those this
    module made are deleted afterwards)."""
    made = []
    for name in (NAMESPACE, *READ_NAMESPACES):
        if control_plane.kubectl("get", "namespace", name, check=False).returncode:
            control_plane.kubectl("create", "namespace", name)
            made.append(name)
    yield
    for name in made:
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.cluster
@pytest.mark.parametrize(
    "document",
    [document for _, document in DOCUMENTS],
    ids=[f"{path.relative_to(FOLDER)}:{d['kind']}/{d['metadata']['name']}" for path, d in DOCUMENTS],
)
def test_manifest_is_accepted_server_side(control_plane, pipeline_namespaces, document):
    namespace = document["metadata"].get("namespace", NAMESPACE)

    result = control_plane.kubectl(
        "create", "--namespace", namespace, "--dry-run=server", "--validate=strict", "-f", "-",
        input=json.dumps(document), check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr


def _build_pod() -> dict:
    """The main container of a build step's pod, as the controller makes it from the template."""
    template = _template("build/build")
    script = template["script"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "build"},
        "spec": {
            "securityContext": template["securityContext"],
            "containers": [
                {
                    "name": "main",
                    "image": "registry.invalid/catalog-steps:1",
                    "command": script["command"],
                    "securityContext": script["securityContext"],
                    "resources": script["resources"],
                }
            ],
        },
    }


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("level", "refusal"),
    [
        pytest.param("baseline", None, id="baseline-admits"),
        pytest.param(
            "restricted",
            'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
            '(container "main" must set securityContext.allowPrivilegeEscalation=false), unrestricted '
            'capabilities (container "main" must set securityContext.capabilities.drop=["ALL"]), '
            'seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost")',
            id="restricted-refuses",
        ),
    ],
)
def test_build_pod_needs_a_baseline_namespace(control_plane, new_namespace, level, refusal):
    namespace = new_namespace(**{"pod-security.kubernetes.io/enforce": level})

    result = control_plane.kubectl(
        "create", "--namespace", namespace, "--dry-run=server", "-f", "-",
        input=json.dumps(_build_pod()), check=False,
    )  # fmt: skip

    if refusal is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert refusal in result.stderr, result.stderr


@pytest.fixture(scope="module")
def pipeline_rbac(control_plane, pipeline_namespaces) -> Iterator[None]:
    rbac = [d for path, d in DOCUMENTS if path.parent.name == "rbac"]
    for document in rbac:
        document = {**document, "metadata": {"namespace": NAMESPACE, **document["metadata"]}}
        control_plane.apply([document])
    yield
    for document in reversed(rbac):
        control_plane.kubectl(
            "delete", "--namespace", document["metadata"].get("namespace", NAMESPACE),
            document["kind"], document["metadata"]["name"], "--wait=false", check=False,
        )  # fmt: skip


WORKFLOW_ACCOUNTS = ("catalog-ci", "catalog-promote", "catalog-rollback", "catalog-cleanup")
# What every workflow ServiceAccount may do (the executor's task results) and a token thief would want.
EXECUTOR = [
    ("create", "workflowtaskresults.argoproj.io", NAMESPACE, True),
    ("patch", "workflowtaskresults.argoproj.io", NAMESPACE, True),
    ("get", "workflowtaskresults.argoproj.io", NAMESPACE, False),
    ("delete", "workflowtaskresults.argoproj.io", NAMESPACE, False),
    ("create", "workflowtaskresults.argoproj.io", "catalog-dev", False),
    ("create", "workflows.argoproj.io", NAMESPACE, False),
    ("get", "workflowtemplates.argoproj.io", NAMESPACE, False),
    ("get", "secrets", NAMESPACE, False),
    ("get", "secrets/cosign-key", NAMESPACE, False),
    ("create", "pods", NAMESPACE, False),
    ("create", "pods/exec", NAMESPACE, False),
    ("list", "configmaps", NAMESPACE, False),
    ("create", "rolebindings.rbac.authorization.k8s.io", NAMESPACE, False),
]
# promote's health check: Deployment catalog in dev and staging, read only, and nothing near it.
PROMOTE_READS = [
    ("get", "deployments.apps/catalog", "catalog-dev", True),
    ("get", "deployments.apps/catalog", "catalog-staging", True),
    ("get", "deployments.apps/catalog", "catalog-prod", False),
    ("get", "deployments.apps/postgresql", "catalog-dev", False),
    ("list", "deployments.apps", "catalog-dev", False),
    ("patch", "deployments.apps/catalog", "catalog-staging", False),
    ("get", "secrets", "catalog-dev", False),
]
GIT_HOOK = [
    ("list", "workfloweventbindings.argoproj.io", NAMESPACE, True),
    ("get", "workflowtemplates.argoproj.io/ci", NAMESPACE, True),
    ("create", "workflows.argoproj.io", NAMESPACE, True),
    ("get", "workflowtemplates.argoproj.io/build", NAMESPACE, False),
    ("delete", "workflows.argoproj.io", NAMESPACE, False),
    ("create", "workflowtemplates.argoproj.io", NAMESPACE, False),
    ("create", "workflowtaskresults.argoproj.io", NAMESPACE, False),
    ("get", "secrets", NAMESPACE, False),
    ("create", "pods", NAMESPACE, False),
    ("create", "workflows.argoproj.io", "catalog-dev", False),
]
ACCESS = [
    *[(account, *check) for account in WORKFLOW_ACCOUNTS for check in EXECUTOR],
    *[("catalog-promote", *check) for check in PROMOTE_READS],
    # Only promote reads a catalog namespace.
    *[
        (account, "get", "deployments.apps/catalog", "catalog-dev", False)
        for account in WORKFLOW_ACCOUNTS
        if account != "catalog-promote"
    ],
    *[("catalog-git-hook", *check) for check in GIT_HOOK],
]


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("account", "verb", "resource", "namespace", "allowed"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]}-{row[2]}-{row[3]}") for row in ACCESS],
)
def test_service_account_can_do_what_its_steps_need_and_nothing_else(
    control_plane, pipeline_rbac, account, verb, resource, namespace, allowed
):
    result = control_plane.kubectl(
        "auth", "can-i", verb, resource, "--namespace", namespace,
        f"--as=system:serviceaccount:{NAMESPACE}:{account}", check=False,
    )  # fmt: skip

    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


# Every authenticated user may ask what it may do (system:basic-user); nothing of ours.
_SELF_REVIEWS = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}
_TASK_RESULTS = ("workflowtaskresults.argoproj.io", "[]", "[create patch]")


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("account", "namespace", "rules"),
    [
        *[pytest.param(a, NAMESPACE, {_TASK_RESULTS}, id=f"{a}-{NAMESPACE}") for a in WORKFLOW_ACCOUNTS],
        *[
            pytest.param("catalog-promote", n, {("deployments.apps", "[catalog]", "[get]")}, id=f"catalog-promote-{n}")
            for n in READ_NAMESPACES
        ],
        pytest.param("catalog-promote", "catalog-prod", set(), id="catalog-promote-catalog-prod"),
        pytest.param("catalog-ci", "catalog-dev", set(), id="catalog-ci-catalog-dev"),
        pytest.param(
            "catalog-git-hook",
            NAMESPACE,
            {
                ("workfloweventbindings.argoproj.io", "[]", "[list]"),
                ("workflowtemplates.argoproj.io", "[ci]", "[get]"),
                ("workflows.argoproj.io", "[]", "[create]"),
            },
            id=f"catalog-git-hook-{NAMESPACE}",
        ),
    ],
)
def test_service_account_rules_are_exactly_these(control_plane, pipeline_rbac, account, namespace, rules):
    """`can-i --list`: every resource rule the account holds in the namespace, so nothing else can hide."""
    listed = control_plane.kubectl(
        "auth", "can-i", "--list", "--namespace", namespace, f"--as=system:serviceaccount:{NAMESPACE}:{account}"
    ).stdout.splitlines()[1:]
    # Rows: Resources, Non-Resource URLs, Resource Names, Verbs; URL-only rows start blank.
    rows = [re.split(r"\s{2,}", line.strip()) for line in listed if line and not line[0].isspace()]
    held = {(row[0], row[2], row[3]) for row in rows if row[0] not in _SELF_REVIEWS}

    assert held == rules
