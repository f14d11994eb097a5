"""Argo CD (the pinned tools/argocd build) as host processes against a control plane, the way
upstream's own Procfile runs it: redis, repo-server, application-controller,
applicationset-controller and argocd-server on free loopback ports, with
ARGOCD_FAKE_IN_CLUSTER=true so the in-cluster destination https://kubernetes.default.svc is the
plane of KUBECONFIG. Their configuration is upstream's manifests/base/config from the module
cache. `stop()` (also at interpreter exit; the processes die with the harness) leaves nothing."""

from __future__ import annotations

import atexit
import base64
import json
import secrets
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from tools.cluster import crds, processes
from tools.cluster.controlplane import ControlPlane
from tools.cluster.toolbox import REPO_ROOT, TOOLS_BIN, connects, free_ports, missing, run, tool

STATE_PREFIX = "catalog-argocd-"
NAMESPACE = "argocd"
MODULE = "github.com/argoproj/argo-cd/v3"
MODULE_DIR = REPO_ROOT / "tools" / "argocd"
BOOTSTRAP = REPO_ROOT / "bootstrap" / "argocd"
# argocd: the multi-call binary; git-verify-wrapper.sh: the repo-server runs it for every git
# source (GPG or not) and answers "permission denied" to every render without it; helm renders.
BINARIES = ("argocd", "git-verify-wrapper.sh", "helm", "kustomize", "kubectl")
# Polling instead of a git webhook: the controller compares every app every RESYNC seconds and
# the repo-server forgets a branch's resolved revision as often (else a push waits ~3 min).
RESYNC_SECONDS = 5


def unmet_prerequisites() -> list[str]:
    absent = missing(BINARIES)
    reasons = [f"`make tools` (.tools/bin lacks {', '.join(absent)})"] if absent else []
    reasons += [f"{name} (apt-get install {name})" for name in ("redis-server", "git") if shutil.which(name) is None]
    return reasons


def module_path() -> Path:
    """argo-cd's module in the Go module cache, at tools/argocd/go.mod's version."""
    return crds.module_dir(MODULE_DIR, MODULE)


def bootstrap_documents(repo_url: str) -> list[dict]:
    """bootstrap/argocd (AppProject, ApplicationSet) with `repo_url`, as the argocd role builds
    it: kustomize's output with its one repoURL literal swapped."""
    text = run([tool("kustomize"), "build", BOOTSTRAP]).stdout
    documents = list(yaml.safe_load_all(text))
    (literal,) = [d["data"]["repoURL"] for d in documents if d["kind"] == "ConfigMap"]
    return list(yaml.safe_load_all(text.replace(literal, repo_url)))


class ArgoCD:
    """Argo CD for one control plane. `start()` returns once every component answers."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.state_dir = Path(tempfile.mkdtemp(prefix=STATE_PREFIX))
        self.group = processes.ProcessGroup(self.state_dir, detached=False)
        names = ("redis", "repo", "repo-metrics", "controller-metrics", "appset-metrics", "appset-probe",
                 "appset-webhook", "server", "server-metrics")  # fmt: skip
        self.ports = free_ports(names)
        self.server = f"http://127.0.0.1:{self.ports['server']}"
        self.startup_seconds: dict[str, float] = {}
        self._configured = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> ArgoCD:
        unmet = unmet_prerequisites()
        if unmet:
            raise FileNotFoundError(f"Argo CD needs {'; '.join(unmet)}")
        processes.sweep_stale(Path(tempfile.gettempdir()), STATE_PREFIX)
        atexit.register(self.stop)
        began = time.monotonic()
        with processes.stopped_on_failure(self.stop):
            self._configure()
            self._start_processes()
        self.startup_seconds["total"] = round(time.monotonic() - began, 1)
        return self

    def stop(self) -> list[int]:
        """Stop every process and remove the state (redis, repo clones, TLS and GPG dirs); return
        the pids still alive (none, or a bug)."""
        survivors = self.group.close()
        if self._configured:  # its settings, Applications and AppProject go with the namespace
            self._configured = False
            self.plane.kubectl(
                "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", "--request-timeout=20s",
                check=False,
            )  # fmt: skip
            # Argo CD puts finalizers on what it manages (the resources finalizer on every Application
            # the ApplicationSet controller makes); with the controllers stopped nothing removes them,
            # and the namespace would stay Terminating (a later `site.yml` then fails to apply its
            # policy there). The controllers are stopped first, so none puts one back.
            kinds = "applications.argoproj.io,applicationsets.argoproj.io,appprojects.argoproj.io"
            found = self.plane.kubectl("get", kinds, "-n", NAMESPACE, "-o", "name", check=False)
            for name in found.stdout.split():
                self.plane.kubectl(
                    "patch", name, "-n", NAMESPACE, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                    check=False,
                )  # fmt: skip
            self.plane.kubectl("wait", "--for=delete", f"namespace/{NAMESPACE}", "--timeout=120s", check=False)
        return survivors

    def __enter__(self) -> ArgoCD:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------------------
    def _configure(self) -> None:
        # Its three CRDs from the same module (a no-op where the plane installed them already).
        module = module_path()
        crd_files = sorted((module / "manifests" / "crds").glob("*-crd.yaml"))
        applied = self.plane.apply_files(crd_files)

        def established() -> bool:  # retried: `kubectl wait` fails at once on a CRD with no conditions yet
            waited = self.plane.kubectl("wait", "--for=condition=Established", "--timeout=20s", *applied, check=False)
            return waited.returncode == 0

        self._wait("its CRDs Established", established, 120)
        self._configured = True
        self.plane.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
        config = run([tool("kustomize"), "build", module / "manifests" / "base" / "config"]).stdout
        documents = [{**d, "metadata": {**d["metadata"], "namespace": NAMESPACE}} for d in yaml.safe_load_all(config)]
        # argocd-server writes server.secretkey at its first start; until then the applicationset
        # controller has no webhook handler. Its own random key, as a fresh install gets.
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        for document in documents:
            if document["kind"] == "Secret" and document["metadata"]["name"] == "argocd-secret":
                document["data"] = {"server.secretkey": base64.b64encode(key.encode()).decode()}
        self.plane.apply(documents)

    def _env(self, binary_name: str) -> dict[str, str]:
        home = self.state_dir / "home"
        dirs = {name: self.state_dir / name for name in ("tls", "ssh", "gpg-keys", "gpg-source", "tmp")}
        for path in (home, *dirs.values()):
            path.mkdir(exist_ok=True, mode=0o700)
        return {
            "PATH": f"{TOOLS_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            # Repo-server clones and helm's scratch files go to the state dir, removed by stop().
            "TMPDIR": str(dirs["tmp"]),
            "KUBECONFIG": str(self.plane.kubeconfig),
            "ARGOCD_BINARY_NAME": binary_name,
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_TLS_DATA_PATH": str(dirs["tls"]),
            "ARGOCD_SSH_DATA_PATH": str(dirs["ssh"]),
            "ARGOCD_GNUPGHOME": str(dirs["gpg-keys"]),
            "ARGOCD_GPG_DATA_PATH": str(dirs["gpg-source"]),
            "GIT_CONFIG_NOSYSTEM": "1",
        }

    def _start_processes(self) -> None:
        ports = self.ports
        redis = f"127.0.0.1:{ports['redis']}"
        repo = f"127.0.0.1:{ports['repo']}"
        argocd = str(tool("argocd"))
        self.group.start(
            "redis",
            [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(ports["redis"]),
             "--save", "", "--appendonly", "no", "--dir", str(self.state_dir)],
        )  # fmt: skip
        self._wait("redis", lambda: connects("127.0.0.1", ports["redis"]), 30)
        self.group.start(
            "repo-server",
            [argocd, "--address", "127.0.0.1", "--port", str(ports["repo"]), "--metrics-address", "127.0.0.1",
             "--metrics-port", str(ports["repo-metrics"]), "--redis", redis,
             "--revision-cache-expiration", f"{RESYNC_SECONDS}s"],
            self._env("argocd-repo-server"),
        )  # fmt: skip
        self.group.start(
            "application-controller",
            [argocd, "--namespace", NAMESPACE, "--redis", redis, "--repo-server", repo,
             "--metrics-port", str(ports["controller-metrics"]), "--status-processors", "4",
             "--operation-processors", "2", "--app-resync", str(RESYNC_SECONDS), "--app-resync-jitter", "0"],
            {**self._env("argocd-application-controller"), "HOSTNAME": "argocd-application-controller-0"},
        )  # fmt: skip
        self.group.start(
            "applicationset-controller",
            [argocd, "--namespace", NAMESPACE, "--argocd-repo-server", repo,
             "--metrics-addr", f"127.0.0.1:{ports['appset-metrics']}",
             "--probe-addr", f"127.0.0.1:{ports['appset-probe']}",
             "--webhook-addr", f"127.0.0.1:{ports['appset-webhook']}"],
            self._env("argocd-applicationset-controller"),
        )  # fmt: skip
        # No Dex: only the local admin logs in (the dex address is one nothing listens on).
        self.group.start(
            "argocd-server",
            [argocd, "--namespace", NAMESPACE, "--redis", redis, "--repo-server", repo, "--insecure",
             "--address", "127.0.0.1", "--port", str(ports["server"]), "--metrics-address", "127.0.0.1",
             "--metrics-port", str(ports["server-metrics"]), "--dex-server", "http://127.0.0.1:1"],
            self._env("argocd-server"),
        )  # fmt: skip
        checks = {
            "repo-server": f"http://127.0.0.1:{ports['repo-metrics']}/healthz",
            # The controller's metrics listener is on every address (not configurable upstream).
            "application-controller": f"http://127.0.0.1:{ports['controller-metrics']}/healthz",
            "argocd-server": f"{self.server}/healthz",
        }
        for name, url in checks.items():
            self._wait(name, lambda url=url: _answers(url), 120)
        # Its probe listener has no checks registered (404): its workers start once its caches sync.
        self._wait(
            "applicationset-controller",
            lambda: "Starting workers" in self.log("applicationset-controller", tail=0),
            120,
        )
        self._wait("the initial admin password", lambda: self._secret("argocd-initial-admin-secret") is not None, 60)

    # -- helpers -------------------------------------------------------------------------------
    def _wait(self, what: str, check, timeout: float) -> None:
        self.group.wait(what, check, timeout, owner="Argo CD")

    def _secret(self, name: str) -> dict[str, str] | None:
        found = self.plane.kubectl("get", "secret", name, "-n", NAMESPACE, "-o", "json", check=False)
        if found.returncode:
            return None
        return {k: base64.b64decode(v).decode() for k, v in json.loads(found.stdout).get("data", {}).items()}

    def log(self, name: str, tail: int = 4000) -> str:
        """The last `tail` characters of a component's log (0: all of it)."""
        return (self.state_dir / f"{name}.log").read_text(errors="replace")[-tail:]

    def admin_password(self) -> str:
        secret = self._secret("argocd-initial-admin-secret")
        assert secret is not None
        return secret["password"]

    def apply_bootstrap(self, repo_url: str) -> None:
        """The catalog's AppProject and ApplicationSet, reading `repo_url`."""
        self.plane.apply(bootstrap_documents(repo_url))

    def application(self, name: str) -> dict | None:
        found = self.plane.kubectl("get", "applications.argoproj.io", name, "-n", NAMESPACE, "-o", "json", check=False)
        return json.loads(found.stdout) if found.returncode == 0 else None

    def applications(self) -> list[dict]:
        listed = self.plane.kubectl("get", "applications.argoproj.io", "-n", NAMESPACE, "-o", "json").stdout
        return json.loads(listed)["items"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback http URL of ours
            return response.status == 200
    except OSError:
        return False


class Session:
    """A logged-in client of argocd-server's API, as the UI is (`POST /api/v1/session`)."""

    def __init__(self, argocd: ArgoCD) -> None:
        self.base = argocd.server
        login = {"username": "admin", "password": argocd.admin_password()}
        self.token = self._call("POST", "/api/v1/session", login, token=None)["token"]

    def _call(self, method: str, path: str, body: dict | None = None, *, token: str | None) -> dict:
        request = urllib.request.Request(  # noqa: S310 - argocd-server on loopback
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def get(self, path: str) -> dict:
        return self._call("GET", path, token=self.token)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body, token=self.token)
