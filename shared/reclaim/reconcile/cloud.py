"""Reading the cloud for a reconcile: server, image and project listings, one page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit


class ListingError(RuntimeError):
    """The cloud's listing could not be read; the reconcile stops without guessing."""


class ServerSource(Protocol):
    """Servers of every project (or one), page by page, as ``/servers/detail`` JSON."""

    def server_pages(self, project: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield the listing one page at a time; never the whole cloud at once."""
        ...


class ImageSource(Protocol):
    """Images of every project (or owned by one), page by page, as ``/v2/images`` JSON."""

    def image_pages(self, project: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield every image, hidden or not, of any visibility, one page at a time."""
        ...


class ProjectSource(Protocol):
    """Keystone projects (or one), page by page, as ``/v3/projects`` JSON."""

    #: Set once :meth:`project_pages` is done: Keystone cut the listing short (its
    #: ``list_limit``) and the projects beyond it were not read.
    projects_truncated: bool

    def project_pages(self, project: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield the projects, extra properties as top-level keys; none for an unknown id."""
        ...


class OpenStackCloud:
    """:class:`ServerSource`, :class:`ImageSource` and :class:`ProjectSource` on an
    openstacksdk ``Connection`` (admin).

    Pages are read as raw JSON through the SDK's own session (``conn.compute.get``,
    ``conn.image.get``: its authentication, endpoint discovery and retries) rather than as
    SDK resources: building a resource costs about 10 ms of CPU, which for 10,000 servers
    is longer than the whole reconcile. Nova pages follow ``servers_links``, Glance pages
    its ``next`` link (both ``limit``/``marker``).
    """

    def __init__(self, conn: Any, *, page_size: int = 1000) -> None:
        self.conn = conn
        self.page_size = page_size
        self.requests = 0
        self.projects_truncated = False

    def _get(
        self, proxy: Any, path: str, params: dict[str, Any], *, missing_ok: bool = False
    ) -> dict[str, Any]:
        """The JSON body of a 200; ``{}`` for a 404 when ``missing_ok``; else ListingError."""
        self.requests += 1
        try:
            response = proxy.get(path, params=params, raise_exc=False)
        except Exception as exc:  # keystoneauth: connection refused, timeouts...
            raise ListingError(f"GET {path}: {exc}") from exc
        if missing_ok and response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise ListingError(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    def server_pages(self, project: str | None = None) -> Iterator[list[dict[str, Any]]]:
        params: dict[str, Any] = {"all_tenants": 1, "limit": self.page_size}
        if project:
            params["project_id"] = project
        while True:
            body = self._get(self.conn.compute, "/servers/detail", params)
            page = body.get("servers") or []
            if page:
                yield page
            marker = _next_marker(body.get("servers_links") or [])
            if marker is None or not page:
                return
            params["marker"] = marker

    def image_pages(self, project: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every image: Glance hides ``os_hidden`` images unless asked for them (and then
        lists only those), and community images of other projects unless the visibility
        filter is ``all``; so two listings, visible then hidden, each with ``visibility=all``.
        """
        for hidden in ("false", "true"):
            params: dict[str, Any] = {
                "visibility": "all",
                "os_hidden": hidden,
                "limit": self.page_size,
            }
            if project:
                params["owner"] = project
            while True:
                body = self._get(self.conn.image, "/images", params)  # the endpoint has /v2
                page = body.get("images") or []
                if page:
                    yield page
                marker = _marker(body.get("next"))
                if marker is None or not page:
                    break
                params["marker"] = marker

    def project_pages(self, project: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every project (``GET /v3/projects``), or the one asked for (``GET
        /v3/projects/{id}``; 404: none).

        Keystone before 2025.1 (27.0.0) does not page: with ``list_limit`` set (``[resource]``
        or ``[DEFAULT]``) it returns that many projects, adds ``"truncated": true`` if there
        were more, and no ``links.next``; that sets :attr:`projects_truncated`. Since 2025.1 it
        pages (``limit``, ``marker``): each full page is marked truncated and has a
        ``links.next`` carrying both, followed as it stands, so a listing read to its end is
        whole. ``limit`` is the page size (capped by Keystone's ``max_db_limit``; ignored
        before 2025.1): with neither ``limit`` nor ``list_limit``, 2025.1 and later return
        ``max_db_limit`` projects, with no next link and no ``truncated``.
        """
        self.projects_truncated = False
        if project:
            body = self._get(self.conn.identity, f"/projects/{project}", {}, missing_ok=True)
            found = body.get("project")
            if isinstance(found, dict):
                yield [found]
            return
        path: str = "/projects"  # the endpoint has /v3
        params: dict[str, Any] = {"limit": self.page_size}
        while True:
            body = self._get(self.conn.identity, path, params)
            page = body.get("projects") or []
            if page:
                yield page
            links = body.get("links")
            href = links.get("next") if isinstance(links, dict) else None
            if not href or not page or href == path:
                self.projects_truncated = body.get("truncated") is True
                return
            path, params = str(href), {}  # an absolute URL, query included


def _marker(href: str | None) -> str | None:
    if not href:
        return None
    markers = parse_qs(urlsplit(href).query).get("marker")
    return markers[-1] if markers else None


def _next_marker(links: list[dict[str, Any]]) -> str | None:
    for link in links:
        if link.get("rel") == "next":
            return _marker(link.get("href", ""))
    return None
