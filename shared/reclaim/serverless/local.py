"""Run a function's real ``lambda_handler`` on this machine, with the template's environment.

The function is found in ``template.yaml`` by logical id (``NotificationFunction``) or by its
folder (``notifications``); its environment is the template's, with parameters at their
defaults and the timer table replaced by a local store (moto by default, created from the
template's own schema, or any ``http://`` endpoint such as dynalite). A run is self-contained:
notices go to an in-process bus (:data:`LOCAL_BUS`) unless a transport URL is given.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reclaim.serverless import runtime
from reclaim.serverless.deadline import LocalContext
from reclaim.store.schema import TABLE_RESOURCE, load_template, template_path

_SUB = re.compile(r"\$\{([^}!]+)\}")
#: Where a local run's notices go when no broker is named: kombu's in-process broker.
LOCAL_BUS = "kombu+memory:////"
BUS_URL_VAR = "RECLAIM_BUS__TRANSPORT_URL"


@dataclass(frozen=True)
class LocalFunction:
    """A function of the template, as far as running it here needs."""

    logical_id: str
    folder: Path
    handler: str
    timeout: float
    memory_mb: int
    environment: dict[str, str]

    @property
    def name(self) -> str:
        """The function's folder name (``notifications``)."""
        return self.folder.name


class FunctionNotFound(LookupError):
    """No function of the template has that logical id or folder."""


def _parameters(template: Mapping[str, Any]) -> dict[str, str]:
    params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    table = template["Resources"][TABLE_RESOURCE]["Properties"].get("TableName")
    params[TABLE_RESOURCE] = _resolve(table, params) if table is not None else "reclaim-timers"
    params.update(
        {
            "AWS::Region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS::StackName": "reclaim",
        }
    )
    return params


def _resolve(value: Any, params: Mapping[str, str]) -> str:
    """A template value with ``Ref`` and ``Fn::Sub`` resolved from parameter defaults."""
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Mapping) and "Ref" in value:
        return params.get(str(value["Ref"]), "")
    if isinstance(value, Mapping) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return _SUB.sub(lambda m: params.get(m.group(1), ""), value["Fn::Sub"])
    raise ValueError(f"cannot resolve {value!r} locally")


def functions(template: Mapping[str, Any] | None = None) -> list[LocalFunction]:
    """Every Python function the template defines."""
    path = template_path()
    template = template or load_template(path)
    params = _parameters(template)
    globals_ = template.get("Globals", {}).get("Function", {})
    out = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**globals_, **resource.get("Properties", {})}
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **resource.get("Properties", {}).get("Environment", {}).get("Variables", {}),
        }
        out.append(
            LocalFunction(
                logical_id=logical_id,
                folder=(path.parent / str(props["CodeUri"])).resolve(),
                handler=str(props.get("Handler", "app.lambda_handler")),
                timeout=float(_resolve(props.get("Timeout", 3), params)),
                memory_mb=int(_resolve(props.get("MemorySize", 128), params)),
                environment={k: _resolve(v, params) for k, v in variables.items()},
            )
        )
    return out


def find(name: str, template: Mapping[str, Any] | None = None) -> LocalFunction:
    """The function named by logical id or folder; with several on one folder, the first."""
    found = functions(template)
    for fn in found:
        if name in (fn.logical_id, fn.name):
            return fn
    known = sorted({fn.name for fn in found} | {fn.logical_id for fn in found})
    raise FunctionNotFound(f"no function {name!r} in the template (known: {', '.join(known)})")


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    # The sweeper points openstacksdk at the clouds.yaml it wrote: undone here as well.
    saved = {k: os.environ.get(k) for k in [*variables, "OS_CLIENT_CONFIG_FILE"]}
    os.environ.update(variables)
    runtime.reset()
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        runtime.reset()


def load_handler(fn: LocalFunction) -> Any:
    """Import the function's module from its folder, as Lambda would, and return the handler."""
    module_name, _, attr = fn.handler.rpartition(".")
    source = fn.folder / (module_name.replace(".", "/") + ".py")
    qualified = f"reclaim_function_{fn.name}_{module_name}".replace(".", "_")
    spec = importlib.util.spec_from_file_location(qualified, source)
    if spec is None or spec.loader is None:
        raise FunctionNotFound(f"{source}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return getattr(module, attr)


def invoke(
    name: str,
    event: Any,
    store_url: str | None = None,
    *,
    environment: Mapping[str, str] | None = None,
    timeout: float | None = None,
    local_cloud: Callable[[], AbstractContextManager[Mapping[str, str]]] | None = None,
) -> Any:
    """Run function ``name``'s ``lambda_handler`` on ``event`` here; return its response.

    The store defaults to ``memory://<table>`` (moto, table built from the template);
    ``environment`` overrides the template's variables; ``timeout`` the function's. A
    function that reads clouds.yaml from a secret (the sweeper) gets, when neither the
    secret nor ``OS_CLIENT_CONFIG_FILE`` is given, the cloud ``local_cloud`` starts (a
    context manager yielding the variables that point openstacksdk at it; the CLI passes
    the simulated cloud's, ``reclaim_sim.server.empty_cloud_environment``); one that publishes notices (the sweeper), when neither its broker secret nor
    ``RECLAIM_BUS__TRANSPORT_URL`` (here or in ``environment``) is given, publishes them on
    :data:`LOCAL_BUS`, and its response says so (``notices_to``).
    """
    fn = find(name)
    table = _parameters(load_template())[TABLE_RESOURCE]
    variables = {
        **fn.environment,
        "RECLAIM_STORE_URL": store_url or f"memory://{table}",
        **(environment or {}),
    }
    if _wants_local_bus(variables):
        variables[BUS_URL_VAR] = LOCAL_BUS
    handler = load_handler(fn)
    context = LocalContext(fn.logical_id, timeout or fn.timeout, fn.memory_mb)
    with ExitStack() as stack:
        if local_cloud is not None and _wants_local_cloud(variables):
            variables.update(stack.enter_context(local_cloud()))
        stack.enter_context(_environment(variables))
        return handler(event, context)


def _wants_local_bus(variables: Mapping[str, str]) -> bool:
    return (
        "NOTICE_BROKER_SECRET" in variables
        and not variables["NOTICE_BROKER_SECRET"]
        and not variables.get(BUS_URL_VAR)
        and not os.environ.get(BUS_URL_VAR)
    )


def _wants_local_cloud(variables: Mapping[str, str]) -> bool:
    return (
        "CLOUDS_YAML_SECRET" in variables
        and not variables["CLOUDS_YAML_SECRET"]
        and not os.environ.get("OS_CLIENT_CONFIG_FILE")
        and "OS_CLIENT_CONFIG_FILE" not in variables
    )
