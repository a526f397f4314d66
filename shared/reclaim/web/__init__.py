"""``reclaim web``: the self-service pages (see :mod:`reclaim.web.app`)."""

from reclaim.web.app import PAGES, Viewer, Web, create_app, web_of

__all__ = ["PAGES", "Viewer", "Web", "create_app", "web_of"]
