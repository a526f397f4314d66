"""Keeping secrets out of what reclaim prints, logs and stores. Pure; no oslo import (this
module is part of the Lambda layer).

* :func:`mask_url` hides the passwords of a URL (transport URLs name several hosts, each
  with its own credentials), :func:`mask_text` those of every URL in a text, and
  :func:`check_url` refuses a URL whose password holds a reserved character left raw;
* :func:`scrub` removes request context and tokens from a message before it is kept or
  logged (oslo copies the caller's context, Keystone token included, into every
  notification as ``_context_*`` fields);
* :func:`secret_name` says whether a setting or field name holds a secret.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from reclaim.wire import check_depth

MASK = "***"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.DOTALL)
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+)(?::[0-9]*)?"
_FIRST_CRED = re.compile(r"[^:@,/]*(?::[^@,/?#]*)?")
_MIDDLE = re.compile(rf"({_HOST}),([^:@,/]*(?::[^@,/?#]*)?)")
#: A URL with credentials in free text (an error message, a logged value).
_URL_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s\"'<>]{0,512}@[^\s\"'<>]*"
)

#: Names (lower case, ``-`` read as ``_``) whose values are secrets.
_SECRET_NAME = re.compile(r"password|passwd|secret|token|(^|_)key$|^key_|_key_|credential")
#: Request context oslo copies into every notification, and tokens however they are spelt.
_DROP_NAME = re.compile(r"^_context_|token$|^x_auth|password|passwd|secret")
#: ``"X-Auth-Token": "..."``, ``auth_token=...`` and the like in text that is not JSON.
_TOKEN_IN_TEXT = re.compile(
    r"""(?ix)
    ((?<![\w-])["']?(?:_context_[\w-]{1,64}|x-auth-[\w-]{1,64}
                      |[\w-]{0,64}?(?:token|password|passwd|secret))["']?
     [ \t]{0,8}[:=][ \t]{0,8})
    ("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&}\]]+)
    """
)


def secret_name(name: str) -> bool:
    """Whether a field or setting called ``name`` holds a secret (password, secret, token,
    key, credential; ``mailer.password``, ``RECLAIM_MAILER__PASWORD``). Pure."""
    last = name.lower().replace("-", "_").rsplit(".", 1)[-1].rsplit("__", 1)[-1]
    return bool(_SECRET_NAME.search(last)) or "pasw" in last or "passw" in last


def _mask_creds(cred: str) -> str:
    user, colon, _ = cred.partition(":")
    return f"{user}:{MASK}" if colon else user


def mask_url(url: str) -> str:
    """``url`` with every password replaced by ``***``: ``rabbit://u:***@h1:5672,v:***@h2/vh``.

    A password should be percent-encoded; one that is not (a raw ``,`` ``/`` ``@`` ``:``) makes
    the URL ambiguous, and then every credential is masked, users too
    (``rabbit://***@h2:5672/vh``): nothing of a password is ever shown. Pure.
    """
    m = _SCHEME.match(url)
    if m is None:
        return url
    scheme, rest = m.groups()
    last_at = rest.rfind("@")
    if last_at < 0:
        return url
    head, tail = rest[:last_at], rest[last_at + 1 :]
    parts = head.split("@")
    if _FIRST_CRED.fullmatch(parts[0]) and all(_MIDDLE.fullmatch(p) for p in parts[1:]):
        shown = [_mask_creds(parts[0])]
        for p in parts[1:]:
            host, cred = _MIDDLE.fullmatch(p).groups()  # type: ignore[union-attr]
            shown.append(f"{host},{_mask_creds(cred)}")
        return f"{scheme}{'@'.join(shown)}@{tail}"
    return f"{scheme}{MASK}@{tail}"


#: What to write for each character a URL's user or password cannot hold as it is.
ENCODINGS = "',' %2C, '/' %2F, '@' %40, ':' %3A, '%' %25, '?' %3F, '#' %23"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_problem(url: str) -> str | None:
    """Why ``url``'s credentials cannot be read as written (a reserved character left raw in
    a password), without showing them; None when they can. Pure."""
    m = _SCHEME.match(url)
    if m is None or "@" not in m.group(2):
        return None
    rest = m.group(2)
    head = rest[: rest.rfind("@")]
    parts = head.split("@")
    if not (_FIRST_CRED.fullmatch(parts[0]) and all(_MIDDLE.fullmatch(p) for p in parts[1:])):
        return (
            "a user or password holds a reserved character (, / @ ? #): percent-encode it "
            f"({ENCODINGS})"
        )
    if _BAD_PERCENT.search(head):
        return f"a user or password holds a '%' that starts no %XX escape: percent-encode it ({ENCODINGS})"
    return None


def check_url(url: str) -> str:
    """``url`` when its credentials read as written; else a ValueError saying why (without
    them): a validator for transport URL settings."""
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def mask_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (:func:`mask_url`). Pure."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def _drop(name: Any) -> bool:
    return isinstance(name, str) and _dropped_name(name)


@functools.lru_cache(maxsize=4096)
def _dropped_name(name: str) -> bool:
    return bool(_DROP_NAME.search(name.lower().replace("-", "_")))


def scrub(value: Any) -> Any:
    """``value`` without request context or secrets, for keeping or logging. Pure.

    Mappings lose every ``_context_*`` entry and every entry named like a token, password
    or secret (``auth_token``, ``X-Auth-Token``, ``_context_auth_token``); the JSON string
    of an oslo v2 envelope (``oslo.message``) and JSON text are scrubbed inside; other
    text has such ``name: value`` pairs masked and URL credentials hidden.
    """
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict | Mapping):
        return {k: scrub(v) for k, v in value.items() if not _drop(k)}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def scrub_text(text: str) -> str:
    """Text without secrets: JSON text scrubbed as data (:func:`scrub`) and written back,
    other text with token-like ``name: value`` pairs masked and URL credentials hidden."""
    if ":" not in text and "=" not in text:
        return text  # no name: value pair, no URL (the common case, kept fast)
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            check_depth(text)  # json.loads and scrub recurse: never to the interpreter's limit
            data = json.loads(text)
            if isinstance(data, dict | list):
                return json.dumps(scrub(data))
        except (ValueError, RecursionError):
            pass  # not JSON, or too deep to walk: masked as text
    return mask_text(_TOKEN_IN_TEXT.sub(lambda m: m.group(1) + MASK, text))
