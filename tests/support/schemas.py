"""Offline kubeconform schemas made from the test control plane's /openapi/v2 (built-in kinds and
the installed CRDs): one standalone, strict JSON schema per group/version/kind, cached in .tools/."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tools.cluster.toolbox import REPO_ROOT, TOOLS_DIR, tool

SCHEMA_ROOT = TOOLS_DIR / "schemas"
# kubeconform fills Group ("v1" for the core group) and ResourceAPIVersion from apiVersion.
LOCATION_TEMPLATE = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
_INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
_QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def cache_key() -> str:
    """Changes when the Kubernetes pin, a CRD module pin, the CRDs' structural fixes or this
    converter changes (the schemas come from the CRDs as the plane installs them)."""
    digest = hashlib.sha256()
    for path in (
        REPO_ROOT / "tools" / "kubernetes" / "go.mod",
        REPO_ROOT / "tools" / "crds" / "go.sum",
        REPO_ROOT / "tools" / "cluster" / "crds.py",
        Path(__file__),
    ):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def schema_dir() -> Path:
    return SCHEMA_ROOT / cache_key()


def schema_location() -> str:
    """The one `-schema-location` kubeconform gets: local files only, never the default URL."""
    return str(schema_dir() / LOCATION_TEMPLATE)


def kubeconform_args() -> list[str]:
    return [str(tool("kubeconform")), "-strict", "-summary", "-schema-location", schema_location()]


class _Converter:
    def __init__(self, definitions: dict) -> None:
        self.definitions = definitions
        self.expanded: dict[str, dict] = {}

    def definition(self, name: str, stack: tuple[str, ...] = ()) -> dict:
        if name.endswith(".api.resource.Quantity"):
            return dict(_QUANTITY)
        if name.endswith(".util.intstr.IntOrString"):
            return dict(_INT_OR_STRING)
        if name in stack:  # recursive types (JSONSchemaProps) stay open below the first level
            return {}
        if name not in self.expanded:
            self.expanded[name] = self.convert(self.definitions[name], (*stack, name))
        return self.expanded[name]

    def convert(self, node, stack: tuple[str, ...]):
        if isinstance(node, list):
            return [self.convert(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self.definition(node["$ref"].rsplit("/", 1)[-1], stack)
        if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
            return dict(_INT_OR_STRING)
        out = {}
        for key, value in node.items():
            if key.startswith("x-") or key in ("description", "example"):
                continue
            if key == "properties":
                out[key] = {name: self.convert(prop, stack) for name, prop in value.items()}
            else:
                out[key] = self.convert(value, stack)
        open_object = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
        if "properties" in node and not open_object:
            out["additionalProperties"] = False
        # Rendered manifests carry explicit nulls (creationTimestamp: null) that the API accepts.
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out


def write_schemas(swagger: dict, target: Path) -> int:
    """Write one schema file per group/version/kind in `swagger` under `target`; return the count."""
    converter = _Converter(swagger["definitions"])
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    count = 0
    for name, definition in swagger["definitions"].items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            schema = dict(converter.definition(name))
            schema["type"] = "object"
            schema["$schema"] = "http://json-schema.org/draft-04/schema#"
            group = gvk["group"] or "v1"
            path = staging / group / f"{gvk['kind'].lower()}_{gvk['version']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema, separators=(",", ":")))
            count += 1
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return count


def schemas_cached() -> bool:
    return (schema_dir() / "apps" / "deployment_v1.json").exists()


def ensure_schemas(plane) -> Path:
    """Generate the schemas from `plane` unless the cache for the current pins exists."""
    target = schema_dir()
    if not schemas_cached():
        swagger = json.loads(plane.kubectl("get", "--raw", "/openapi/v2").stdout)
        write_schemas(swagger, target)
    return target
