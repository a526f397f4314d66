"""Check ``template.yaml`` as AWS would: SAM's own translator, then cfn-lint, plus the handlers.

cfn-lint alone no longer expands ``AWS::Serverless`` resources, so a wrong event type or a
bad event property passes it. This runs the SAM translator (offline: local code paths are
replaced by ``s3://`` placeholders), lints the CloudFormation it produces, and checks what
neither of them can see: that each function's ``CodeUri`` folder holds the module and the
function its ``Handler`` names, and that each MQ event names its one queue.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reclaim.store.schema import template_path

PLACEHOLDER_BUCKET = "reclaim-validate"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Problem:
    """One mistake in the template: which check found it, where, and what."""

    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.where}: {self.message}"


def load(path: Path) -> dict[str, Any]:
    """Read a template as CloudFormation does (short-form tags become their long forms)."""
    from cfnlint.decode import decode  # type: ignore[import-untyped]

    template, matches = decode(str(path))
    if matches or template is None:
        detail = "; ".join(str(m.message) for m in matches) or "unreadable"
        raise ValueError(f"{path}: {detail}")
    # cfn-lint's node types are dict/str subclasses; plain JSON types for the translator.
    loaded: dict[str, Any] = json.loads(json.dumps(template))
    return loaded


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    globals_ = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, resource in template.get("Resources", {}).items():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function":
            out[name] = {**globals_, **resource.get("Properties", {})}
    return out


def check_handlers(template: dict[str, Any], root: Path) -> list[Problem]:
    """Each Python function's ``Handler`` names a module file and a top-level function in it."""
    problems: list[Problem] = []
    for name, props in _functions(template).items():
        code, handler = props.get("CodeUri"), props.get("Handler")
        if not isinstance(code, str) or code.startswith("s3://"):
            continue
        folder = root / code
        if not folder.is_dir():
            problems.append(Problem("handler", name, f"CodeUri {code} is not a folder"))
            continue
        if not isinstance(handler, str) or "." not in handler:
            problems.append(Problem("handler", name, f"Handler {handler!r} is not MODULE.FUNCTION"))
            continue
        module, _, function = handler.rpartition(".")
        source = folder / (module.replace(".", "/") + ".py")
        if not source.is_file():
            problems.append(
                Problem("handler", name, f"Handler {handler}: no {source.relative_to(root)}")
            )
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if function not in defined:
            problems.append(
                Problem(
                    "handler",
                    name,
                    f"Handler {handler}: {source.relative_to(root)} defines no {function}()",
                )
            )
    return problems


def check_events(template: dict[str, Any]) -> list[Problem]:
    """Event-source rules the translator and cfn-lint let through but Lambda enforces."""
    problems: list[Problem] = []
    for name, props in _functions(template).items():
        for event_id, event in (props.get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "MQ":
                continue
            queues = (event.get("Properties") or {}).get("Queues")
            # Lambda reads exactly one queue per Amazon MQ event source mapping.
            if not isinstance(queues, list) or len(queues) != 1:
                problems.append(
                    Problem(
                        "events", f"{name}/{event_id}", "an MQ event needs Queues with one queue"
                    )
                )
    return problems


def _placeholders(template: dict[str, Any]) -> dict[str, Any]:
    """A copy with local code paths replaced by ``s3://`` URIs, as ``sam package`` would."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    sections = [out.get("Globals", {}).get("Function", {})]
    sections += [
        r.get("Properties", {}) for r in out.get("Resources", {}).values() if isinstance(r, dict)
    ]
    for props in sections:
        for key in ("CodeUri", "ContentUri"):
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                props[key] = f"s3://{PLACEHOLDER_BUCKET}/{value.strip('/')}"
    return out


def translate(template: dict[str, Any], region: str | None = None) -> dict[str, Any]:
    """Expand the SAM template into plain CloudFormation; mistakes raise :class:`TemplateError`."""
    import boto3
    from samtranslator.model.exceptions import (  # type: ignore[import-untyped]
        InvalidDocumentException,
    )
    from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
    from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]

    region = region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    session = boto3.session.Session(region_name=region)
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session)
    try:
        # The managed policies are named by ARN, so no IAM lookup (no network) is needed.
        out: dict[str, Any] = translator.translate(
            _placeholders(template), parameter_values={}, get_managed_policy_map=lambda: {}
        )
    except InvalidDocumentException as exc:
        raise TemplateError(
            [Problem("sam", _cause_where(c), _cause_message(c)) for c in exc.causes]
        ) from exc
    return out


def _cause_where(cause: Any) -> str:
    return str(
        getattr(cause, "_logical_id", None) or getattr(cause, "logical_id", None) or "template"
    )


def _cause_message(cause: Any) -> str:
    return str(getattr(cause, "message", None) or cause)


class TemplateError(ValueError):
    """The SAM translator refused the template."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def lint(cloudformation: dict[str, Any], region: str | None = None) -> list[Problem]:
    """cfn-lint's errors and warnings on a CloudFormation template (informational notes dropped)."""
    import cfnlint.api  # type: ignore[import-untyped]

    region = region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    problems = []
    for match in cfnlint.api.lint(json.dumps(cloudformation), regions=[region]):
        rule = match.rule.id
        if rule.startswith("I"):
            continue
        where = "/".join(str(p) for p in match.path) if match.path else "template"
        problems.append(Problem(f"cfn-lint {rule}", where, str(match.message)))
    return problems


def validate(path: Path | None = None, region: str | None = None) -> list[Problem]:
    """Every problem the handler check, the SAM translator and cfn-lint find; [] when sound."""
    path = path or template_path()
    template = load(path)
    problems = check_handlers(template, path.parent) + check_events(template)
    try:
        cloudformation = translate(template, region)
    except TemplateError as exc:
        return problems + exc.problems
    return problems + lint(cloudformation, region)
