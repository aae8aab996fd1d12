"""The PartnerOS API endpoints: CRM connection status and schema, partner analysis, the streamed
ICP document, public partner applications.

Internal routes need a session whose user is not a ``partner`` and has an active organization; a
resource of another organization answers 404, as PartnerOS does. Errors use ``{"error", "code"}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from airflow_provider_partneros.testing._content import (
    icp_pieces,
    partner_analysis,
    rechunk,
    schema_for,
    schema_stats,
)
from airflow_provider_partneros.testing._model import Integration, User
from airflow_provider_partneros.testing._routes import EndpointBase
from airflow_provider_partneros.testing._wire import (
    TEXT,
    Request,
    Response,
    api_error,
    iso,
    json_object,
    json_response,
    jsonable,
)


class ApiEndpoints(EndpointBase):
    analyze_delay: float
    icp_chunk_size: int | None
    icp_chunk_delay: float

    def _internal(self, req: Request) -> tuple[User, str]:
        """Session, role and active organization checks of the internal PartnerOS routes."""
        session = req.session
        if session is None:
            raise api_error(401, "Unauthorized")
        with self._lock:
            user = self._data.users.get(session.user_email)
            if user is None:
                raise api_error(401, "Unauthorized")
            if user.role == "partner":
                raise api_error(403, "Forbidden")
            if session.active_organization is None:
                raise api_error(400, "No active organization.")
            return user, session.active_organization

    def _find_integration(self, req: Request, org_id: str) -> Integration:
        integ = self._data.integrations.get(req.params["id"])
        if integ is None or integ.organization != org_id:
            raise api_error(404, "Integration not found.", "not_found")
        return integ

    def _ep_integration_status(self, req: Request) -> Response:
        _, org_id = self._internal(req)
        with self._lock:
            integ = self._find_integration(req, org_id)
            fields = dict(integ.fields)
            if integ.script:
                fields.update(integ.script.popleft() if len(integ.script) > 1 else integ.script[0])
            payload = {"id": integ.id, **fields}
            payload.setdefault(
                "schemaStats", schema_stats(str(fields.get("platform")), fields.get("lastSyncAt"))
            )
        return json_response(200, jsonable(payload))

    def _ep_integration_schema(self, req: Request) -> Response:
        _, org_id = self._internal(req)
        with self._lock:
            integ = self._find_integration(req, org_id)
            platform = str(integ.fields.get("platform"))
            discovered = iso(integ.fields.get("lastSyncAt"))
        schema = schema_for(platform)
        cache = [("Cache-Control", "private, max-age=60")]
        object_type = req.query.get("objectType")
        if object_type is None:
            objects = [
                {
                    "name": name,
                    "label": label,
                    "fieldCount": len(fields),
                    "customFieldCount": sum(1 for f in fields if f[3]),
                    "queryable": True,
                }
                for name, (label, fields) in schema.items()
            ]
            return json_response(
                200,
                {
                    "connectionId": integ.id,
                    "platform": platform,
                    "objects": objects,
                    "totalObjects": len(objects),
                    "discoveredAt": discovered,
                },
                cache,
            )
        if object_type not in schema:
            raise api_error(404, "Object type not found.", "not_found")
        label, fields = schema[object_type]
        return json_response(
            200,
            {
                "connectionId": integ.id,
                "platform": platform,
                "objectType": object_type,
                "label": label,
                "fields": [
                    {"name": n, "label": lb, "type": t, "custom": c, "required": r}
                    for n, lb, t, c, r in fields
                ],
                "discoveredAt": discovered,
            },
            cache,
        )

    def _ep_analyze_partner(self, req: Request) -> Response:
        _, org_id = self._internal(req)
        with self._lock:
            partner = self._data.partners.get(req.params["id"])
            if partner is None or partner.organization != org_id:
                raise api_error(404, "Partner not found.", "not_found")
            delay = self.analyze_delay
        if delay and self._stop.wait(delay):
            raise api_error(503, "Service shutting down.")
        with self._lock:
            record = partner.fields
            fields, insights = partner_analysis(str(record["name"]), str(record["domain"]), self._now())
            record.update(fields)
            partner_json = jsonable(dict(record))
        return json_response(200, {"partner": partner_json, "aiInsights": insights})

    def _ep_ai_icp(self, req: Request) -> Response:
        _, org_id = self._internal(req)
        body = json_object(req.body)
        if body is None:
            raise api_error(400, "Invalid JSON body.")
        company = body.get("company")
        if not isinstance(company, str) or not company.strip():
            raise api_error(400, "company is required and must be a non-empty string.")
        with self._lock:
            org = self._data.orgs[org_id]
            if org.ai_quota is not None:
                if org.ai_quota <= 0:
                    raise api_error(402, "AI quota exhausted.", "quota_exceeded")
                org.ai_quota -= 1
            min_size = self._data.icp_size
            size = self.icp_chunk_size or (16 * 1024 if min_size > 64 * 1024 else 37)
            delay = self.icp_chunk_delay
        chunks = rechunk(icp_pieces(company.strip(), min_size), size)
        if delay:
            chunks = self._paced(chunks, delay)
        return Response(200, chunks, TEXT, [("Cache-Control", "no-cache")])

    def _paced(self, chunks: Iterator[bytes], delay: float) -> Iterator[bytes]:
        for chunk in chunks:
            if self._stop.wait(delay):
                return
            yield chunk

    def _ep_submit_application(self, req: Request) -> Response:
        body = json_object(req.body)
        if body is None:
            raise api_error(400, "Invalid JSON body.")
        slug = body.get("slug")
        if not isinstance(slug, str) or not slug:
            raise api_error(400, "Missing required field: slug")
        with self._lock:
            form = self._data.forms.get(slug)
            if form is None:
                raise api_error(404, "Application form not found.", "not_found")
            raw_data, raw_agreements = body.get("data"), body.get("agreements")
            data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
            agreements: dict[str, Any] = raw_agreements if isinstance(raw_agreements, dict) else {}
            for name in form.required_fields:
                value = data.get(name)
                if value is None or (isinstance(value, str) and not value.strip()):
                    raise api_error(400, f"Missing required field: {name}")
            for name in form.agreements:
                if agreements.get(name) is not True:
                    raise api_error(400, f"Missing required agreement: {name}")
            app_id = str(uuid.uuid4())
            self._data.applications.append(
                {
                    "applicationId": app_id,
                    "slug": slug,
                    "organizationId": form.organization,
                    "data": data,
                    "agreements": agreements,
                    "submittedAt": iso(self._now()),
                }
            )
        return json_response(200, {"success": True, "applicationId": app_id})
