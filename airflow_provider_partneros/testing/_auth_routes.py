"""The better-auth endpoints: sign in and out, read the session, pick the active organization.

Their errors use the auth routes' shape (``{"message", "code"}``), not the API's ``{"error"}``.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timezone
from typing import Any

from airflow_provider_partneros.testing._model import Org, User
from airflow_provider_partneros.testing._routes import EndpointBase
from airflow_provider_partneros.testing._wire import (
    Request,
    Response,
    auth_error,
    iso,
    json_object,
    json_response,
)


def _user_json(user: User) -> dict[str, Any]:
    created = iso(user.created_at)
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "emailVerified": user.email_verified,
        "image": None,
        "createdAt": created,
        "updatedAt": created,
    }


def _org_json(org: Org) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "logo": None,
        "metadata": None,
        "createdAt": iso(org.created_at),
    }


def _epoch_iso(seconds: float) -> str | None:
    return iso(datetime.fromtimestamp(seconds, tz=timezone.utc))


class AuthEndpoints(EndpointBase):
    def _ep_sign_in(self, req: Request) -> Response:
        body = json_object(req.body)
        if body is None:
            raise auth_error(400, "Invalid request body: expected a JSON object.", "VALIDATION_ERROR")
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise auth_error(
                400, "Invalid body: [body.email] and [body.password] must be strings.", "VALIDATION_ERROR"
            )
        with self._lock:
            user = self._data.users.get(email.strip().lower())
            if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
                raise auth_error(401, "Invalid email or password", "INVALID_EMAIL_OR_PASSWORD")
            if not user.email_verified:
                raise auth_error(403, "Email not verified", "EMAIL_NOT_VERIFIED")
            session = self._sessions.create(
                user,
                ip=req.client,
                user_agent=req.headers.get("user-agent", ""),
                now=self.clock(),
                ttl=self.session_ttl,
            )
            token = session.token
            payload = {"redirect": False, "token": token, "url": None, "user": _user_json(user)}
        return json_response(
            200, payload, [self._set_cookie(self._sessions.cookie_value(token), int(self.session_ttl))]
        )

    def _ep_sign_out(self, req: Request) -> Response:
        with self._lock:
            if req.session is not None:
                self._sessions.end(req.session)
        req.session = None
        return json_response(200, {"success": True}, [self._set_cookie("", 0)])

    def _ep_get_session(self, req: Request) -> Response:
        session = req.session
        if session is None:
            return json_response(200, None)
        with self._lock:
            user = self._data.users[session.user_email]
            created = _epoch_iso(session.created_at)
            payload = {
                "session": {
                    "id": session.id,
                    "token": session.token,
                    "userId": user.id,
                    "expiresAt": _epoch_iso(session.expires_at),
                    "createdAt": created,
                    "updatedAt": created,
                    "ipAddress": session.ip,
                    "userAgent": session.user_agent,
                    "activeOrganizationId": session.active_organization,
                },
                "user": _user_json(user),
            }
        return json_response(200, payload)

    def _ep_set_active(self, req: Request) -> Response:
        session = req.session
        if session is None:
            raise auth_error(401, "Unauthorized", "UNAUTHORIZED")
        body = json_object(req.body)
        if body is None or "organizationId" not in body:
            raise auth_error(400, "Invalid body: [body.organizationId] is required.", "VALIDATION_ERROR")
        org_id = body["organizationId"]
        if org_id is not None and not isinstance(org_id, str):
            raise auth_error(400, "Invalid body: [body.organizationId] must be a string.", "VALIDATION_ERROR")
        with self._lock:
            if org_id is None:
                session.active_organization = None
                return json_response(200, None)
            user = self._data.users[session.user_email]
            org = self._data.orgs.get(org_id)
            if org is None or org_id not in user.organizations:
                raise auth_error(
                    403,
                    "You are not a member of this organization",
                    "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION",
                )
            session.active_organization = org_id
            return json_response(200, _org_json(org))
