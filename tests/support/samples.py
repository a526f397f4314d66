"""Load Nova's conformance samples the way Nova's own tests do, and wrap them for the wire."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

#: Nova's samples, kept in the repository (tests/conformance/README.md says where from).
CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance" / "nova"


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return override


def resolve_refs(node: Any, here: Path) -> Any:
    """Replace ``{"$ref": "file#", ...overrides}`` by the file's content merged with the overrides."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = (here / node["$ref"].split("#")[0]).resolve()
            loaded = resolve_refs(json.loads(target.read_text()), target.parent)
            overrides = {k: resolve_refs(v, here) for k, v in node.items() if k != "$ref"}
            return _merge(loaded, overrides)
        return {k: resolve_refs(v, here) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_refs(v, here) for v in node]
    return node


def nova_sample(name: str) -> dict[str, Any]:
    """A sample from ``conformance/nova`` (with its $refs resolved), unchanged otherwise."""
    path = CONFORMANCE / name
    return dict(resolve_refs(json.loads(path.read_text()), path.parent))


def sample_names() -> list[str]:
    return sorted(p.name for p in CONFORMANCE.glob("*.json"))


def on_the_wire(sample: dict[str, Any], timestamp: str, message_id: str = "m-1") -> dict[str, Any]:
    """A sample as oslo would send it with the ``messaging`` driver: id and timestamp added."""
    body = copy.deepcopy(sample)
    body.update(message_id=message_id, timestamp=timestamp)
    return body


def v2(body: dict[str, Any]) -> dict[str, Any]:
    """The ``messagingv2`` envelope around a flat body."""
    return {"oslo.version": "2.0", "oslo.message": json.dumps(body)}
