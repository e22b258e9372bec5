"""HTTP: a signed-in user's price alerts (writes are rate-limited by the app-wide guard)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from backend.alerts import service
from backend.alerts.schemas import AlertView, NewAlert, alert_view
from backend.auth.sessions import SignedIn, signed_in_id
from backend.db.uow import UnitOfWork
from backend.hub.hub import Hub
from backend.inputs import Id64
from backend.openapi import errors

AlertId = Id64


class AlertsController(Controller):
    path = "/api/alerts"
    tags = ["alerts"]

    @post(status_code=201, responses=errors(409))
    async def create(
        self,
        request: SignedIn,
        data: JSONBody[NewAlert],
        uow: NamedDependency[UnitOfWork],
        hub: NamedDependency[Hub],
    ) -> AlertView:
        """Notify me (in the bot) once when the market crosses the price."""
        alert = await service.create_alert(
            uow, hub.backend, signed_in_id(request), data.market, data.price, data.direction
        )
        return alert_view(alert)

    @get()
    async def alerts(
        self,
        request: SignedIn,
        uow: NamedDependency[UnitOfWork],
        status: FromQuery[service.StatusFilter] = "active",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> list[AlertView]:
        """My alerts by status, newest first."""
        found = await service.list_alerts(uow, signed_in_id(request), status, limit)
        return [alert_view(alert) for alert in found]

    @delete("/{alert_id:int}", responses=errors(409))
    async def cancel(
        self, request: SignedIn, alert_id: AlertId, uow: NamedDependency[UnitOfWork]
    ) -> None:
        """Cancel an active alert (again: nothing happens; one that fired: 409)."""
        await service.cancel_alert(uow, signed_in_id(request), alert_id)
