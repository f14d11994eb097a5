"""What gitops.yml (roles argo_workflows, policy and argocd) leaves on the API server after the
`converged` fixture ran site.yml: workflow RBAC by `kubectl auth can-i`, argo-server's auth mode,
the controller's template restriction, the cosign key across converges, the signature policy and
its key, the AppProject/ApplicationSet as stored and the repository Secret. The argocd role's
repository URL override and credentials are rendered without a cluster (static)."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.ansible.playbook import ANSIBLE_BIN
from tests.support import render
from tools.cluster.toolbox import REPO_ROOT, TOOLS_DIR, run, tool

ROLES = REPO_ROOT / "roles"


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


ARGO = _defaults("argo_workflows")
ARGOCD = _defaults("argocd")
# The pipelines' ServiceAccounts are manifests in argo-workflows/rbac, which the role applies: each
# name with the file that declares it, in name order.
WORKFLOW_SERVICE_ACCOUNTS = dict(
    sorted(
        (document["metadata"]["name"], path)
        for path in (REPO_ROOT / "argo-workflows" / "rbac").glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if document["kind"] == "ServiceAccount"
        and document["metadata"]["labels"].get("app.kubernetes.io/component") == "workflow"
    )
)


def _secret_data(converged, namespace: str, name: str) -> dict[str, bytes]:
    secret = converged.get_json("secret", name, "--namespace", namespace)
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def _missing(stored, wanted, path: str = "") -> list[str]:
    """Where `stored` lacks something of `wanted` (dicts by key, lists item by item)."""
    if isinstance(wanted, dict):
        if not isinstance(stored, dict):
            return [f"{path}: {stored!r} is not a mapping"]
        return [m for key, value in wanted.items() for m in _missing(stored.get(key), value, f"{path}.{key}")]
    if isinstance(wanted, list):
        if not isinstance(stored, list) or len(stored) != len(wanted):
            return [f"{path}: {stored!r} != {wanted!r}"]
        return [m for i, (s, w) in enumerate(zip(stored, wanted, strict=True)) for m in _missing(s, w, f"{path}[{i}]")]
    return [] if stored == wanted else [f"{path}: {stored!r} != {wanted!r}"]


# Argo Workflows -------------------------------------------------------------------------------

# The executor grant (Argo Workflows v3.4+: report task results) and what a step must not be able to do with its token.
ACCESS = [
    pytest.param("create", "workflowtaskresults.argoproj.io", "argo", True, id="create-taskresults"),
    pytest.param("patch", "workflowtaskresults.argoproj.io", "argo", True, id="patch-taskresults"),
    pytest.param("get", "workflowtaskresults.argoproj.io", "argo", False, id="get-taskresults"),
    pytest.param("delete", "workflowtaskresults.argoproj.io", "argo", False, id="delete-taskresults"),
    pytest.param("create", "workflowtaskresults.argoproj.io", "catalog-dev", False, id="taskresults-elsewhere"),
    pytest.param("create", "workflows.argoproj.io", "argo", False, id="create-workflows"),
    pytest.param("get", "workflowtemplates.argoproj.io", "argo", False, id="get-workflowtemplates"),
    pytest.param("create", "pods", "argo", False, id="create-pods"),
    pytest.param("create", "pods --subresource=exec", "argo", False, id="exec-pods"),
    pytest.param("get", "secrets", "argo", False, id="get-secrets"),
    pytest.param("list", "configmaps", "argo", False, id="list-configmaps"),
    pytest.param("create", "rolebindings.rbac.authorization.k8s.io", "argo", False, id="create-rolebindings"),
]


@pytest.mark.cluster
@pytest.mark.parametrize("service_account", WORKFLOW_SERVICE_ACCOUNTS)
@pytest.mark.parametrize(("verb", "resource", "namespace", "allowed"), ACCESS)
def test_workflow_service_account_access(converged, service_account, verb, resource, namespace, allowed):
    result = converged.kubectl(
        "auth",
        "can-i",
        verb,
        *resource.split(),
        "--namespace",
        namespace,
        f"--as=system:serviceaccount:{ARGO['argo_workflows_namespace']}:{service_account}",
        check=False,  # can-i exits 1 for "no"
    )

    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


@pytest.mark.cluster
def test_argo_server_runs_in_server_auth_mode(converged):
    server = converged.get_json("deployment", "argo-server", "--namespace", "argo")

    (container,) = server["spec"]["template"]["spec"]["containers"]
    assert "--auth-mode=server" in container["args"]
    assert container["image"] == ARGO["argo_workflows_images"]["server"]


@pytest.mark.cluster
def test_controller_runs_only_workflow_templates(converged):
    config = converged.get_json("configmap", "workflow-controller-configmap", "--namespace", "argo")["data"]

    assert yaml.safe_load(config["workflowRestrictions"]) == {"templateReferencing": "Strict"}
    executor = yaml.safe_load(config["executor"])
    assert executor["image"] == ARGO["argo_workflows_images"]["executor"]
    assert set(executor["resources"]) == {"requests", "limits"}


@pytest.mark.cluster
def test_cosign_key_is_usable_and_kept_across_converges(converged, tmp_path):
    before = _secret_data(converged, "argo", "cosign-key")
    assert set(before) == {"cosign.key", "cosign.pub", "cosign.password"}

    rerun = converged.playbook("playbooks/gitops.yml", "--tags", "preflight_context,argo_workflows_apply")
    assert rerun.returncode == 0, rerun.explain()
    assert rerun.total("changed") == 0, rerun.explain()
    assert _secret_data(converged, "argo", "cosign-key") == before

    # The password opens the private key, and it belongs to the stored public key.
    key = tmp_path / "cosign.key"
    key.write_bytes(before["cosign.key"])
    derived = run(
        [tool("cosign"), "public-key", "--key", key],
        env={**os.environ, "COSIGN_PASSWORD": before["cosign.password"].decode()},
    ).stdout
    assert derived.strip() == before["cosign.pub"].decode().strip()

    # Never written into the repository, tracked or not.
    secret_line = before["cosign.key"].decode().splitlines()[1]
    leaked = subprocess.run(["git", "grep", "--untracked", "-l", "-F", secret_line], cwd=REPO_ROOT, capture_output=True)
    assert leaked.returncode == 1, leaked.stdout


HELLO_TEMPLATE = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowTemplate",
    "metadata": {"name": "ansible-test-hello"},
    "spec": {
        "serviceAccountName": next(iter(WORKFLOW_SERVICE_ACCOUNTS)),
        "entrypoint": "hello",
        "templates": [{"name": "hello", "container": {"image": "busybox:1.37", "args": ["echo", "hello"]}}],
    },
}


@pytest.mark.cluster
def test_workflow_templates_folder_is_applied_into_argo_and_a_rerun_changes_nothing(converged, tmp_path):
    folder = tmp_path / "argo-workflows"
    (folder / "pipelines").mkdir(parents=True)
    (folder / "pipelines" / "hello.yaml").write_text(yaml.safe_dump(HELLO_TEMPLATE))
    (folder / "README.md").write_text("not a template")
    apply = ("playbooks/gitops.yml", "--tags", "preflight_context,argo_workflows_apply")
    use_folder = ("-e", f"argo_workflows_templates_dir={folder}")
    try:
        first = converged.playbook(*apply, *use_folder)
        assert first.returncode == 0, first.explain()
        stored = converged.get_json("workflowtemplates.argoproj.io", "ansible-test-hello", "--namespace", "argo")
        assert _missing(stored["spec"], HELLO_TEMPLATE["spec"]) == []

        again = converged.playbook(*apply, *use_folder)
        assert again.returncode == 0, again.explain()
        assert again.total("changed") == 0, again.explain()
    finally:
        converged.kubectl("delete", "workflowtemplates.argoproj.io", "ansible-test-hello", "-n", "argo", check=False)


@pytest.mark.cluster
def test_verify_fails_when_a_workflow_service_account_lost_its_label(converged):
    # verify asks can-i only for the accounts it finds by label: one lost label must not shrink
    # what it checks unnoticed.
    (account, declared_in), label = next(iter(WORKFLOW_SERVICE_ACCOUNTS.items())), "app.kubernetes.io/component"
    verify = ("playbooks/gitops.yml", "--tags", "preflight_context,argo_workflows_verify")
    converged.kubectl("label", "serviceaccount", account, f"{label}-", "--namespace", "argo")
    try:
        refused = converged.playbook(*verify)
    finally:
        # A converge puts the label back, owned by the platform's field manager again. `kubectl
        # label` would leave it kubectl's, and the next check-mode run would rightly report that
        # the role still has a change to make.
        restored = converged.playbook("playbooks/gitops.yml", "--tags", "preflight_context,argo_workflows_apply")

    assert refused.returncode != 0, refused.explain()
    rest = [name for name in WORKFLOW_SERVICE_ACCOUNTS if name != account]
    expected = f"the workflow ServiceAccounts in argo are {rest}, the files under"
    assert any(expected in failure for failure in refused.failures), refused.explain()
    assert restored.returncode == 0, restored.explain()
    assert restored.changed == [f"localhost: argo_workflows : Apply them ({declared_in})"], restored.explain()
    passed = converged.playbook(*verify)
    assert passed.returncode == 0, passed.explain()


# Both namespaces ------------------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("namespace", "workloads"),
    [
        pytest.param("argo", {"argo-server", "workflow-controller"}, id="argo"),
        pytest.param(
            "argocd",
            {
                "argocd-application-controller",
                "argocd-applicationset-controller",
                "argocd-dex-server",
                "argocd-notifications-controller",
                "argocd-redis",
                "argocd-repo-server",
                "argocd-server",
            },
            id="argocd",
        ),
    ],
)
def test_the_pinned_install_runs_these_workloads(converged, namespace, workloads):
    # Their resources are checked with every other platform workload's in test_site.
    items = converged.get_json("deployments,statefulsets", "--namespace", namespace)["items"]

    assert {item["metadata"]["name"] for item in items} == workloads


# The signature policy (policy role) ---------------------------------------------------------


def _ivpol(converged) -> dict:
    return converged.get_json("imagevalidatingpolicies.policies.kyverno.io", "catalog-images-signed")["spec"]


@pytest.mark.cluster
def test_policy_matches_pods_in_staging_and_prod_only(converged):
    spec = _ivpol(converged)
    (selector,) = spec["matchConstraints"]["namespaceSelector"]["matchExpressions"]

    assert (selector["key"], selector["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert sorted(selector["values"]) == ["catalog-prod", "catalog-staging"]
    assert spec["validationActions"] == ["Deny"]
    assert spec["failurePolicy"] == "Fail"
    assert {r["resources"][0] for r in spec["matchConstraints"]["resourceRules"]} == {"pods"}


@pytest.mark.cluster
def test_policy_key_is_the_platform_cosign_public_key_without_tlog(converged):
    secret = converged.get_json("secret", "cosign-key", "--namespace", "argo")
    published = base64.b64decode(secret["data"]["cosign.pub"]).decode()
    policy = _ivpol(converged)
    (attestor,) = policy["attestors"]

    assert attestor["cosign"]["key"]["data"].strip() == published.strip()
    assert "BEGIN PUBLIC KEY" in published
    assert attestor["cosign"]["ctlog"] == {"insecureIgnoreTlog": True, "insecureIgnoreSCT": True}
    assert f"attestors.{attestor['name']}" in policy["validations"][0]["expression"]


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("image", "checked"),
    [
        pytest.param("host.docker.internal:5000/catalog@sha256:" + "a" * 64, True, id="catalog-by-digest"),
        pytest.param("host.docker.internal:5000/catalog:1.2.0", True, id="catalog-by-tag"),
        pytest.param("localhost:5000/catalog:1.2.0", False, id="other-registry-name"),
        pytest.param("docker.io/library/postgres:17", False, id="third-party-image"),
        pytest.param("host.docker.internal:5000/tools:1", False, id="other-repository-same-registry"),
    ],
)
def test_policy_image_glob_selects_only_catalog_images(converged, image, checked):
    (reference,) = _ivpol(converged)["matchImageReferences"]

    assert fnmatch.fnmatchcase(image, reference["glob"]) is checked


# Argo CD --------------------------------------------------------------------------------------


def _bootstrap_expected() -> list[dict]:
    """bootstrap/argocd as the pinned kustomize builds it, with the ci inventory's repo URL."""
    objects = list(render.argocd_documents())
    inventory = yaml.safe_load((REPO_ROOT / "inventories" / "ci" / "group_vars" / "all.yml").read_text())
    override = inventory.get("argocd_repo_url")
    if override:
        literal = next(o for o in objects if o["kind"] == "ConfigMap")["data"]["repoURL"]
        objects = json.loads(json.dumps(objects).replace(literal, override))
    return objects


def _repo_url(objects: list[dict]) -> str:
    return next(o for o in objects if o["kind"] == "ConfigMap")["data"]["repoURL"]


@pytest.mark.cluster
@pytest.mark.parametrize("kind", ["AppProject", "ApplicationSet"])
def test_bootstrap_object_is_stored_as_built(converged, kind):
    wanted = next(o for o in _bootstrap_expected() if o["kind"] == kind)

    stored = converged.get_json(f"{kind.lower()}s.argoproj.io", wanted["metadata"]["name"], "--namespace", "argocd")

    assert _missing(stored["spec"], wanted["spec"]) == []


@pytest.mark.cluster
def test_repository_secret_is_labelled_for_argocd(converged):
    secret = converged.get_json("secret", ARGOCD["argocd_repo_secret"], "--namespace", "argocd")
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}

    assert secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
    assert data["url"] == _repo_url(_bootstrap_expected())
    assert data["type"] == "git"
    # The converge ran without CATALOG_GIT_TOKEN unless the environment had one.
    assert ("password" in data) == bool(os.environ.get("CATALOG_GIT_TOKEN"))


@pytest.mark.cluster
def test_ui_is_served_over_http_behind_the_ingress(converged):
    params = converged.get_json("configmap", "argocd-cmd-params-cm", "--namespace", "argocd")
    ingress = converged.get_json("ingress", "argocd-server", "--namespace", "argocd")

    assert params["data"]["server.insecure"] == "true"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "argocd.localhost"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "argocd-server", "port": {"name": "http"}}


def _render(tmp_path, playbook: str, extra: dict, env: dict[str, str]):
    """Run `playbook` on localhost with the roles and `extra` vars; the message of its last task."""
    path = tmp_path / "render.yml"
    path.write_text(playbook)
    environment = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(ROLES),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "PATH": f"{TOOLS_DIR / 'bin'}{os.pathsep}{os.environ['PATH']}",
        **env,
    }
    environment.pop("CATALOG_GIT_USERNAME", None)
    variables = {"platform_repo_root": str(REPO_ROOT), "ansible_python_interpreter": sys.executable, **extra}
    result = run(
        [ANSIBLE_BIN / "ansible-playbook", path, "-i", "localhost,", "-e", json.dumps(variables)],
        env=environment,
        cwd=REPO_ROOT,
        timeout=300,
    )
    return json.loads(result.stdout)["plays"][0]["tasks"][-1]["hosts"]["localhost"]["msg"]


_RENDER_PLAYBOOK = """
- name: Render the argocd bootstrap objects and repository Secret data
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Render
      ansible.builtin.include_role: {name: argocd, tasks_from: bootstrap-render.yml, public: true}
    - name: Show
      ansible.builtin.debug:
        msg: "{{ {'objects': _argocd_bootstrap, 'secret': _argocd_repo_secret_data} }}"
"""


@pytest.mark.static
@pytest.mark.parametrize(
    ("repo_url", "token"),
    [
        pytest.param("", "", id="kustomization-literal-public"),
        pytest.param("https://git.example.test/team/catalog.git", "tok-123", id="override-with-token"),
    ],
)
def test_argocd_role_renders_repo_url_and_credentials(tmp_path, repo_url, token):
    shown = _render(tmp_path, _RENDER_PLAYBOOK, {"argocd_repo_url": repo_url}, {"CATALOG_GIT_TOKEN": token})

    literal = _repo_url(list(render.argocd_documents()))
    url = repo_url or literal
    project = next(o for o in shown["objects"] if o["kind"] == "AppProject")
    appset = next(o for o in shown["objects"] if o["kind"] == "ApplicationSet")
    assert project["spec"]["sourceRepos"] == [url]
    assert appset["spec"]["generators"][0]["git"]["repoURL"] == url
    assert appset["spec"]["template"]["spec"]["source"]["repoURL"] == url
    assert (literal in json.dumps(shown["objects"])) == (not repo_url)
    credentials = {"username": "git", "password": token} if token else {}
    assert shown["secret"] == {"type": "git", "url": url, **credentials}


_CONTROLLER_CONFIG_PLAYBOOK = """
- name: Render the argo_workflows install's kustomization
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Load the role's variables
      ansible.builtin.include_role: {name: argo_workflows, tasks_from: templates-found.yml, public: true}
    - name: Show
      ansible.builtin.debug:
        msg: "{{ _argo_workflows_kustomization.patches }}"
"""
STORE = {
    "archiveLogs": True,
    "artifactory": {
        "repoURL": "https://store.example.test/argo",
        "usernameSecret": {"name": "artifact-repository", "key": "username"},
        "passwordSecret": {"name": "artifact-repository", "key": "password"},
    },
}


@pytest.mark.static
@pytest.mark.parametrize("repository", [pytest.param({}, id="default-none"), pytest.param(STORE, id="artifactory")])
def test_argo_workflows_role_configures_the_artifact_repository_only_when_set(tmp_path, repository):
    extra = {"argo_workflows_artifact_repository": repository} if repository else {}
    patches = _render(tmp_path, _CONTROLLER_CONFIG_PLAYBOOK, extra, {})

    data: dict[str, str] = {}
    for entry in patches:
        patch = json.loads(entry["patch"])  # a strategic merge patch (an object) or a JSON patch (a list)
        if isinstance(patch, dict) and patch["kind"] == "ConfigMap":
            data.update(patch["data"])
    assert set(data) == {"workflowRestrictions", "executor"} | ({"artifactRepository"} if repository else set())
    if repository:
        assert yaml.safe_load(data["artifactRepository"]) == repository
