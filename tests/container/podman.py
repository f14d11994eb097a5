"""podman as the container tier drives it: the repo's containers.conf, the chart's way of running
the catalog image (`ChartPod`), containers that a crashed session cannot leak, and image builds."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import jwt
import yaml

from tests.support import render
from tests.support.signing import public_pem, rsa_key
from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import REPO_ROOT, missing

IMAGE_DIR = REPO_ROOT / "apps" / "catalog" / "image"
STEPS_BUILD = REPO_ROOT / "argo-workflows" / "image" / "build.sh"
# What the step image carries from .tools/bin.
STEPS_PINNED = ("cosign", "crane", "kubectl", "trivy")
# podman reads this instead of /etc/containers/containers.conf (runc, cgroupfs, no default ulimits).
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(IMAGE_DIR / "containers.conf")}
# Every container and volume of a test session carries this label with the session's pid, so the
# next session removes what a killed one left behind.
SESSION_LABEL = "org.catalog-platform.test-session"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass(frozen=True)
class ImageBuild:
    """What `make image` printed."""

    reference: str
    digest: str
    tags: tuple[str, ...]
    base: str
    layout: Path
    seconds: float

    @classmethod
    def parse(cls, stdout: str, seconds: float) -> ImageBuild:
        fields = dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)
        return cls(
            fields["image"],
            fields["digest"],
            tuple(fields["tags"].split()),
            fields["base"],
            Path(fields["layout"]),
            seconds,
        )


def make_image() -> ImageBuild:
    """`make image`: builds, or reuses an image of the same sources, base and revision."""
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "image"],
        cwd=REPO_ROOT,
        env=PODMAN_ENV,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, f"make image failed:\n{result.stdout}\n{result.stderr}"
    return ImageBuild.parse(result.stdout, time.monotonic() - started)


def build_steps_image() -> str:
    """argo-workflows/image/build.sh: the step image's local tag (an unchanged recipe is reused)."""
    if shutil.which("buildah") is None:
        skip_or_fail("the step image needs buildah (apt-get install buildah)")
    absent = missing(list(STEPS_PINNED))
    if absent:
        skip_or_fail(f"the step image needs `make tools` (.tools/bin lacks {', '.join(absent)})")
    result = subprocess.run([STEPS_BUILD], env=PODMAN_ENV, capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def push_image(image: str, reference: str) -> str:
    """Push a local image (buildah's storage) to `reference` (REGISTRY/REPOSITORY:TAG) in a
    plain-HTTP registry; the pushed image by digest, REGISTRY/REPOSITORY@sha256:..."""
    with tempfile.TemporaryDirectory() as scratch:
        digest = Path(scratch) / "digest"
        subprocess.run(
            ["buildah", "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest), image,
             f"docker://{reference}"],
            env=PODMAN_ENV, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        return f"{reference.rsplit(':', 1)[0]}@{digest.read_text().strip()}"


@dataclass(frozen=True)
class Mount:
    kind: str  # "tmpfs", "volume" (a podman volume) or "secret" (a host folder, read-only)
    target: str
    source: str = ""

    def podman_args(self) -> list[str]:
        if self.kind == "tmpfs":
            return ["--tmpfs", f"{self.target}:rw,nosuid,nodev,size=64m"]
        if self.kind == "secret":
            return ["--volume", f"{self.source}:{self.target}:ro"]
        return ["--volume", f"{self.source}:{self.target}"]


@dataclass(frozen=True)
class ChartPod:
    """How the chart runs the image, as podman flags: securityContext (user, read-only root,
    capabilities, no privilege escalation), env, volumes and terminationGracePeriodSeconds.
    `from_chart()` reads them off the rendered Deployment; a test changes one field with `replace()`."""

    user: str
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    grace_seconds: int
    prestop_seconds: int = 0
    read_only: bool = True
    data_dir: str = ""  # where the chart mounts its PersistentVolumeClaim (SQLite), if it does

    @classmethod
    def from_chart(
        cls,
        environment: str = "dev",
        container_name: str = "catalog",
        *,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        secret_dir: Path | None = None,
    ) -> ChartPod:
        """A container of environment's workloads (`catalog` of the Deployment, or `migrate`: the
        migration Job's, or the Deployment's init container where SQLite has no Job), rendered as
        its ArgoCD Application renders it: env from its ConfigMap and Secret references, user,
        read-only root, /tmp. Secrets the chart does not make (its `existingSecret`) come from
        `secrets` (name -> data, as the user creates them); secret volumes are written under
        `secret_dir` and mounted read-only, as the kubelet projects them."""
        rendered = render.render_application(render.applications()[environment])
        pod, container = _find_container(rendered, container_name)
        security = {**pod.get("securityContext", {}), **container["securityContext"]}
        # podman_args() always drops every capability and forbids escalation: so must the chart.
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["allowPrivilegeEscalation"] is False

        def secret_value(name: str, key: str) -> str:
            made = [s for s in rendered.of_kind("Secret") if s["metadata"]["name"] == name]
            data = made[0]["stringData"] if made else (secrets or {}).get(name, {})
            if key not in data:
                raise KeyError(f"{environment}: the chart reads key {key!r} of Secret {name!r}; pass it in `secrets`")
            return data[key]

        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(rendered.one("ConfigMap", source["configMapRef"]["name"])["data"])
        for variable in container.get("env", []):
            if "value" in variable:
                env[variable["name"]] = variable["value"]
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                env[variable["name"]] = secret_value(ref["name"], ref["key"])
        # No collector runs beside the container here; export is proven by the process tier.
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = [Mount("tmpfs", m["mountPath"]) for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]]
        for mount in container["volumeMounts"]:
            if secret := volumes[mount["name"]].get("secret"):
                assert secret_dir is not None, f"{environment}: {container_name} mounts a Secret; pass secret_dir"
                folder = secret_dir / f"{environment}-{container_name}-{mount['name']}"
                folder.mkdir(mode=0o755, parents=True, exist_ok=True)
                for item in secret["items"]:
                    (folder / item["path"]).write_text(secret_value(secret["secretName"], item["key"]))
                    (folder / item["path"]).chmod(0o644)  # the kubelet's default mode for projected keys
                mounts.append(Mount("secret", mount["mountPath"], str(folder)))
        claims = [m["mountPath"] for m in container["volumeMounts"] if "persistentVolumeClaim" in volumes[m["name"]]]
        return cls(
            user=f"{security['runAsUser']}:{security['runAsGroup']}",
            env=env,
            mounts=tuple(mounts),
            # Kubernetes' defaults where the chart leaves them out (the Job has no preStop).
            grace_seconds=pod.get("terminationGracePeriodSeconds", 30),
            prestop_seconds=container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0),
            read_only=security["readOnlyRootFilesystem"],
            data_dir=claims[0] if claims else "",
        )

    def podman_args(self) -> list[str]:
        args = ["--user", self.user, "--cap-drop=ALL", "--security-opt", "no-new-privileges"]
        if self.read_only:
            # podman would add its own tmpfs on /tmp, /var/tmp and /run; the pod gets only ours.
            args += ["--read-only", "--read-only-tmpfs=false"]
        for mount in self.mounts:
            args += mount.podman_args()
        for name, value in self.env.items():
            args += ["--env", f"{name}={value}"]
        # `podman stop` then waits this long between SIGTERM and SIGKILL, as the kubelet does.
        args += ["--stop-timeout", str(self.grace_seconds)]
        return args

    def with_env(self, **values: str) -> ChartPod:
        return replace(self, env={**self.env, **values})

    def without_env(self, *names: str) -> ChartPod:
        return replace(self, env={k: v for k, v in self.env.items() if k not in names})

    def with_data_volume(self, volume: str) -> ChartPod:
        """The SQLite variant: a podman volume where the chart mounts its PersistentVolumeClaim."""
        assert self.data_dir, "this environment's Deployment mounts no PersistentVolumeClaim"
        return replace(self, mounts=(*self.mounts, Mount("volume", self.data_dir, volume)))


def _find_container(rendered: render.Rendered, name: str) -> tuple[dict, dict]:
    """(pod spec, container) of the one container called `name` in the Deployment or a Job."""
    found = [
        (template, container)
        for kind in ("Deployment", "Job")
        for workload in rendered.of_kind(kind)
        for template in [workload["spec"]["template"]["spec"]]
        for container in template.get("initContainers", []) + template["containers"]
        if container["name"] == name
    ]
    assert len(found) == 1, f"{len(found)} containers named {name!r} in the Deployment and Jobs"
    return found[0]


def session_labels() -> list[str]:
    return ["--label", f"{SESSION_LABEL}={os.getpid()}"]


def run_once(image: str, pod: ChartPod, *command: str, network: str | None = None, timeout: float = 60):
    """Run a one-off container in the foreground (`catalog migrate`, a refused start)."""
    args = ["run", "--rm", *session_labels(), *pod.podman_args()]
    args += ["--network", network] if network else []
    return podman(*args, image, *command, timeout=timeout, check=False)


@dataclass
class Container:
    """A detached `catalog serve` container with its published base URL."""

    name: str
    base_url: str
    started: float

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from `podman run` to the first 200 from /readyz."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            if self.state()["Status"] == "exited":
                raise AssertionError(f"{self.name} exited before it was ready:\n{self.logs()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready within {timeout} s:\n{self.logs()}")

    def state(self) -> dict:
        return json.loads(podman("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self) -> tuple[str, str]:
        """(stdout, stderr) of the container, as the kubelet would collect them."""
        result = podman("logs", self.name)
        return result.stdout, result.stderr

    def terminate(self) -> None:
        """SIGTERM to the container's PID 1, as the kubelet sends it."""
        podman("kill", "--signal", "TERM", self.name)

    def wait_exit(self, timeout: float) -> int:
        result = podman("wait", self.name, timeout=timeout + 10)
        return int(result.stdout.strip())

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


def start(image: str, pod: ChartPod, name: str, *, port: int, network: str | None = None) -> Container:
    """`catalog serve` detached. Bridge network: published on 127.0.0.1:port only. Host network:
    the container listens on 127.0.0.1:port itself (pod.env must say so)."""
    args = ["run", "--detach", "--name", name, *session_labels(), *pod.podman_args()]
    if network:
        args += ["--network", network]
    else:
        args += ["--publish", f"127.0.0.1:{port}:{pod.env['CATALOG_PORT']}"]
    started = time.monotonic()
    podman(*args, image)
    return Container(name, f"http://127.0.0.1:{port}", started)


def sweep_orphans() -> None:
    """Remove containers and volumes of earlier sessions whose pytest process is gone."""
    for kind in ("container", "volume"):
        listing = ["ps", "--all"] if kind == "container" else ["volume", "ls"]
        fmt = '{{.ID}} {{index .Labels "%s"}}' if kind == "container" else '{{.Name}} {{index .Labels "%s"}}'
        result = podman(*listing, "--filter", f"label={SESSION_LABEL}", "--format", fmt % SESSION_LABEL, check=False)
        for line in result.stdout.split("\n"):
            if not line.strip():
                continue
            ident, _, pid = line.partition(" ")
            if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
                removal = ["rm", "--force", "--time", "0"] if kind == "container" else ["volume", "rm", "--force"]
                podman(*removal, ident, check=False)


@functools.cache
def dev_pod() -> ChartPod:
    """The dev environment's catalog container, read off the chart as ArgoCD renders it."""
    return ChartPod.from_chart("dev")


# The identity provider's key of the staging and prod containers: its public half goes into the
# Secret the test creates for them, as an operator does.
SIGNER = "container-issuer"


def operator_secrets(environment: str, database_url: str) -> dict[str, dict[str, str]]:
    """The Secrets an operator creates in the environment's namespace before its first sync (never
    in git), name -> data: its `existingSecret` with DATABASE_URL and SIGNER's public key under the
    key the chart reads; none where the chart makes its own."""
    values = yaml.safe_load((render.ENVIRONMENTS / environment / "values.yaml").read_text()) or {}
    if not (existing := values.get("existingSecret")):
        return {}
    key_file = values["config"]["jwt"]["publicKeySecretKey"]
    return {existing: {"DATABASE_URL": database_url, key_file: public_pem(SIGNER).decode()}}


def token_for(env: Mapping[str, str], scope: str = "catalog:read catalog:write") -> str:
    """A token a container with this environment accepts: its issuer and audience, signed with its
    HS256 secret where it has one (dev: the chart's dev-only Secret), else with SIGNER's key."""
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 300, "scope": scope}
    claims |= {"iss": env["CATALOG_JWT_ISSUER"], "aud": env["CATALOG_JWT_AUDIENCE"]}
    if secret := env.get("CATALOG_JWT_SECRET"):
        return jwt.encode(claims, secret, algorithm="HS256")
    return jwt.encode(claims, rsa_key(SIGNER), algorithm="RS256")
