"""The real Argo Workflows v3.6 controller runs Workflows on the real node: a WorkflowTemplate of
two steps handing an output parameter on, submitted as a Workflow that references it and through
a WorkflowEventBinding (POST to `argo server`'s events API with a ServiceAccount's token, as a git
hook does). A failing step fails the Workflow with its exit code; a Workflow that does not
reference a template is refused (the role's Strict template referencing). The controller's step
latencies are printed."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from tests.gitops.workflows import create_workflow, latencies
from tools.cluster.argo_workflows import CONTROLLER_HEALTH_PORT, ArgoWorkflows, upstream_documents
from tools.cluster.realnode import RealNodes, on_real_node

pytestmark = pytest.mark.gitops

HANDOFF = "handoff"
FAILS = "fails"
EXIT_CODE = 3
DISCRIMINATOR = "push"
SENDER = "event-sender"
BINDING = f"{HANDOFF}-on-push"
# The controller labels what a binding submits with the binding's name (server/event/dispatch).
BOUND = f"workflows.argoproj.io/workflow-event-binding={BINDING}"
NODE_NAME = "workflows.argoproj.io/node-name"
VALUE, RECEIVED = "/tmp/value", "/tmp/received"  # noqa: S108 - in the steps' own containers
# Upstream's Role for a webhook caller: list bindings, get templates, create Workflows.
SENDER_ROLE = "manifests/quick-start/base/webhooks/submit-workflow-template-role.yaml"


def container(image: str, script: str) -> dict:
    # An explicit command: else the controller asks the (plain-HTTP) registry for the entrypoint.
    return {"image": image, "command": ["sh", "-c"], "args": [script]}


def workflow_template(name: str, service_account: str, templates: list[dict], parameters: list[dict]) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": service_account,
            "arguments": {"parameters": parameters},
            "templates": templates,
        },
    }


def handoff_template(image: str, service_account: str) -> dict:
    """produce writes `<message> from <its hostname>`; consume gets it as an input parameter and
    hands it back out, so the value the Workflow reports went through both pods."""
    return workflow_template(
        HANDOFF,
        service_account,
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "produce", "template": "produce"}],
                    [
                        {
                            "name": "consume",
                            "template": "consume",
                            "arguments": {
                                "parameters": [{"name": "value", "value": "{{steps.produce.outputs.parameters.value}}"}]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "produce",
                "container": container(image, f'echo "{{{{workflow.parameters.message}}}} from $(hostname)" > {VALUE}'),
                "outputs": {"parameters": [{"name": "value", "valueFrom": {"path": VALUE}}]},
            },
            {
                "name": "consume",
                "inputs": {"parameters": [{"name": "value"}]},
                "container": container(image, f"echo '{{{{inputs.parameters.value}}}}' | tee {RECEIVED}"),
                "outputs": {"parameters": [{"name": "received", "valueFrom": {"path": RECEIVED}}]},
            },
        ],
        [{"name": "message"}],
    )


def failing_template(image: str, service_account: str) -> dict:
    """A step that exits EXIT_CODE, and one after it that must never start."""
    return workflow_template(
        FAILS,
        service_account,
        [
            {
                "name": "main",
                "steps": [[{"name": "fail", "template": "fail"}], [{"name": "after", "template": "after"}]],
            },
            {"name": "fail", "container": container(image, f"echo failing on purpose; exit {EXIT_CODE}")},
            {"name": "after", "container": container(image, "echo must not run")},
        ],
        [],
    )


def event_binding() -> dict:
    """A push event (discriminator `push`) submits handoff with the payload's message."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowEventBinding",
        "metadata": {"name": BINDING},
        "spec": {
            "event": {"selector": f'discriminator == "{DISCRIMINATOR}" && payload.message != nil'},
            "submit": {
                "workflowTemplateRef": {"name": HANDOFF},
                "arguments": {"parameters": [{"name": "message", "valueFrom": {"event": "payload.message"}}]},
            },
        },
    }


def sender(namespace: str) -> list[dict]:
    """A ServiceAccount bound to upstream's webhook Role: what a git hook's token may do."""
    (role,) = upstream_documents(SENDER_ROLE)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SENDER}},
        role,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": SENDER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": SENDER, "namespace": namespace}],
        },
    ]


@pytest.fixture(scope="module", autouse=True)
def documents(argo: ArgoWorkflows, node_image: str) -> None:
    """The templates, the event binding and the event sender in the Workflows' namespace."""
    service_account = argo.service_accounts[0]
    argo.apply(
        [
            handoff_template(node_image, service_account),
            failing_template(node_image, service_account),
            event_binding(),
            *sender(argo.namespace),
        ]
    )


def submit_by_reference(argo: ArgoWorkflows, message: str) -> str:
    spec = {
        "workflowTemplateRef": {"name": HANDOFF},
        "arguments": {"parameters": [{"name": "message", "value": message}]},
    }
    return create_workflow(argo, spec, HANDOFF)


def submitted_by_event(argo: ArgoWorkflows) -> dict[str, str]:
    """Workflow name -> its message, for every Workflow the binding submitted."""
    listed = json.loads(argo.plane.kubectl("get", "workflows", "-n", argo.namespace, "-l", BOUND, "-o", "json").stdout)
    return {
        workflow["metadata"]["name"]: parameter["value"]
        for workflow in listed["items"]
        for parameter in workflow["spec"]["arguments"]["parameters"]
        if parameter["name"] == "message"
    }


def submit_by_event(argo: ArgoWorkflows, message: str) -> str:
    response = argo.send_event(DISCRIMINATOR, {"message": message}, argo.token(SENDER))
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 60
    while True:
        found = [name for name, sent in submitted_by_event(argo).items() if sent == message]
        if found:
            assert len(found) == 1, found
            return found[0]
        assert time.monotonic() < deadline, f"no Workflow for the event:\n{argo.log('argo-server')[-3000:]}"
        time.sleep(0.5)


@pytest.mark.parametrize(
    "submit",
    [
        pytest.param(submit_by_reference, id="workflow-referencing-the-template"),
        pytest.param(submit_by_event, id="event-binding"),
    ],
)
def test_two_steps_hand_a_parameter_on_and_run_on_the_real_node(
    argo: ArgoWorkflows, real_cluster: RealNodes, submit, capsys: pytest.CaptureFixture[str]
):
    message = f"revision-{secrets.token_hex(4)}"
    began = time.monotonic()

    name = submit(argo, message)
    workflow = argo.wait_done(name)

    took = time.monotonic() - began
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    pods = {pod["metadata"]["annotations"][NODE_NAME]: pod for pod in argo.pods(name)}
    assert set(pods) == {f"{name}[0].produce", f"{name}[1].consume"}
    assert {pod["spec"]["nodeName"] for pod in pods.values()} == {real_cluster.nodes[0].name}
    (consume,) = [n for n in workflow["status"]["nodes"].values() if n["displayName"] == "consume"]
    received = {p["name"]: p["value"] for p in consume["outputs"]["parameters"]}
    assert received == {"received": f"{message} from {pods[f'{name}[0].produce']['metadata']['name']}"}
    with capsys.disabled():  # the latencies are a result: shown without -s too
        print(f"\n{submit.__name__}: Succeeded {took:.1f} s after submission; {latencies(workflow)}")


def test_an_event_without_a_token_is_refused(argo: ArgoWorkflows):
    before = submitted_by_event(argo)

    response = argo.send_event(DISCRIMINATOR, {"message": "unauthenticated"}, None)

    # No Authorization header: the server takes it for a git host's webhook, whose signature
    # would be checked against the argo-workflows-webhook-clients Secret; there is none.
    assert (response.status_code, response.json()) == (403, {"message": "failed to process webhook request"})
    assert submitted_by_event(argo) == before


@pytest.mark.parametrize(
    ("entrypoint", "pod_node", "workflow_message"),
    [
        # The steps: the Workflow reports its failed child, the step its exit code.
        pytest.param("main", "{workflow}[0].fail", "child '{step}' failed", id="as-a-step"),
        # The step's template as the entrypoint: its message is the Workflow's.
        pytest.param("fail", "{workflow}", f"Error (exit code {EXIT_CODE})", id="as-the-entrypoint"),
    ],
)
def test_a_failing_step_fails_the_workflow_with_its_exit_code(
    argo: ArgoWorkflows, entrypoint: str, pod_node: str, workflow_message: str, capsys: pytest.CaptureFixture[str]
):
    name = create_workflow(argo, {"workflowTemplateRef": {"name": FAILS}, "entrypoint": entrypoint}, FAILS)
    workflow = argo.wait_done(name)

    status = workflow["status"]
    ran = {node_id: n for node_id, n in status["nodes"].items() if n["type"] == "Pod"}
    assert [n["templateName"] for n in ran.values()] == ["fail"], "the step after the failing one started"
    ((step_id, step),) = ran.items()
    assert (step["phase"], step["message"]) == ("Failed", f"Error (exit code {EXIT_CODE})")
    assert step["outputs"]["exitCode"] == str(EXIT_CODE)
    assert (status["phase"], status["message"]) == ("Failed", workflow_message.format(step=step_id))
    assert [pod["metadata"]["annotations"][NODE_NAME] for pod in argo.pods(name)] == [pod_node.format(workflow=name)]
    with capsys.disabled():
        print(f"\n{latencies(workflow)}; Workflow message: {status['message']}")


def test_a_workflow_that_references_no_template_is_refused(argo: ArgoWorkflows, node_image: str):
    inline = handoff_template(node_image, argo.service_accounts[0])["spec"]
    inline["arguments"] = {"parameters": [{"name": "message", "value": "unreviewed"}]}

    name = create_workflow(argo, inline, "inline")
    workflow = argo.wait_done(name, timeout=60)

    assert (workflow["status"]["phase"], workflow["status"]["message"]) == (
        "Error",
        "workflows must use workflowTemplateRef to be executed when the controller is in reference mode",
    )
    assert argo.pods(name) == []


def test_the_listeners_on_every_interface_answer_only_on_loopback(
    argo: ArgoWorkflows, real_cluster: RealNodes, node_image: str
):
    """The controller's :6060 and argo server bind every interface; a pod on the node reaches the
    apiserver on the bridge address (so the probe can connect) but neither of them."""
    node = real_cluster.nodes[0]
    ports = {
        "apiserver": argo.plane.ports["apiserver"],
        "controller": CONTROLLER_HEALTH_PORT,
        "server": argo.server_port,
    }
    probe = (
        "import json, socket, sys\n"
        "def reach(port):\n"
        "    try:\n"
        f"        socket.create_connection(('{node.gateway}', port), timeout=3).close()\n"
        "        return 'connected'\n"
        "    except OSError as error:\n"
        "        return type(error).__name__\n"
        "print(json.dumps({name: reach(port) for name, port in json.loads(sys.argv[1]).items()}))\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reach-listeners", "namespace": argo.namespace},
        "spec": on_real_node(
            {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "probe", "image": node_image, "command": ["python3", "-c", probe, json.dumps(ports)]}
                ],
            }
        ),
    }
    argo.plane.apply([pod])
    argo.plane.kubectl(
        "wait",
        "-n",
        argo.namespace,
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/reach-listeners",
        "--timeout=120s",
    )

    reached = json.loads(argo.plane.kubectl("logs", "-n", argo.namespace, "reach-listeners").stdout)
    assert reached == {"apiserver": "connected", "controller": "TimeoutError", "server": "TimeoutError"}
    assert httpx.get(f"{argo.server}/api/v1/version", timeout=5).status_code == 401  # loopback still answers
    argo.plane.kubectl("delete", "pod", "-n", argo.namespace, "reach-listeners", "--wait=false")
