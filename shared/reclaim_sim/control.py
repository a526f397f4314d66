"""``/_sim``: an unauthenticated control API for driving a served simulation from outside
(advance the clock, inject faults, read the request log). It listens on 127.0.0.1 only,
as the whole simulation does."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from reclaim_sim.clock import iso_z, parse_time
from reclaim_sim.core import Ctx, SimError
from reclaim_sim.wsgi import ServiceAPI, empty, json_response, read_json


class ControlAPI(ServiceAPI):
    name = "control"
    prefix = "/_sim"
    public_endpoints = frozenset({"state", "clock", "requests", "add_fault", "clear_faults"})

    def rules(self) -> list[Rule]:
        return [
            Rule("/", endpoint="state", methods=["GET"]),
            Rule("/clock", endpoint="clock", methods=["GET", "POST"]),
            Rule("/requests", endpoint="requests", methods=["GET", "DELETE"]),
            Rule("/faults", endpoint="add_fault", methods=["POST"]),
            Rule("/faults", endpoint="clear_faults", methods=["DELETE"]),
        ]

    def state(self, request: Request, ctx: Ctx | None) -> Response:
        cloud = self.cloud
        with cloud.lock:
            return json_response(
                {
                    "now": iso_z(cloud.clock.now()),
                    "projects": len(cloud.identity.projects),
                    "users": len(cloud.identity.users),
                    "servers": len(cloud.compute.servers),
                    "images": len(cloud.image.images),
                    "volumes": len(cloud.volume.volumes),
                    "networks": len(cloud.network.networks),
                    "routers": len(cloud.network.routers),
                    "requests": len(cloud.requests),
                    "faults": len(cloud.faults.rules),
                }
            )

    def clock(self, request: Request, ctx: Ctx | None) -> Response:
        """POST ``{"advance": "14d"}`` or ``{"set": "2026-03-15T00:00:00Z"}``; GET (and the
        POST's answer) gives the time, as JSON or, with ``?format=text``, as bare text."""
        from reclaim.durations import parse_duration

        clock = self.cloud.clock
        if request.method == "POST":
            spec = read_json(request)
            try:
                if "advance" in spec:
                    clock.advance(parse_duration(spec["advance"]))
                elif "set" in spec:
                    clock.set(parse_time(spec["set"]))
                else:
                    raise SimError(400, "give advance or set", "badRequest")
            except ValueError as exc:
                raise SimError(400, str(exc), "badRequest") from exc
            self.cloud.compute.tick()
        if request.args.get("format") == "text":  # for `reclaim ... --now "$(curl ...)"`
            return Response(f"{iso_z(clock.now())}\n", mimetype="text/plain")
        return json_response({"now": iso_z(clock.now())})

    def requests(self, request: Request, ctx: Ctx | None) -> Response:
        log = self.cloud.requests
        if request.method == "DELETE":
            log.clear()
            return empty()
        rows = log.mutating_requests() if request.args.get("mutating") else log.all()
        return json_response(
            {"requests": [dict(asdict(r), timestamp=iso_z(r.timestamp)) for r in rows]}
        )

    def add_fault(self, request: Request, ctx: Ctx | None) -> Response:
        spec: dict[str, Any] = read_json(request)
        allowed = {"service", "method", "path_regex", "status", "count", "delay", "drop", "body"}
        rule = self.cloud.faults.add(**{k: v for k, v in spec.items() if k in allowed})
        return json_response({"id": rule.id}, 201)

    def clear_faults(self, request: Request, ctx: Ctx | None) -> Response:
        self.cloud.faults.clear()
        return empty()
