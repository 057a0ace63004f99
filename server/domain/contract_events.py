"""The time-based contract events: ``contract.expiring`` and ``contract.lapsed``.

Nothing changes in the database when a contract nears its end or runs out, so no transaction can
carry these events; a periodic scan on the worker (the ``contract_events_scan`` job, hourly)
emits them instead. Each is keyed by the contract and its end date, so it fires once per
contract period however often the scan runs (or is run twice after a crash). A contract that a
later one of the same kind continues (a renewal covering the next day) neither expires nor
lapses; a lapse is announced up to ``window`` days late (a server that was down), never for
contracts that ended long before webhooks existed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from server.domain import events
from server.domain.models import Contract
from server.domain.vocabulary import ContractKind, EventType


def _continued(session: Session, contract: Contract) -> bool:
    """Whether another contract of the same customer, kind and product covers the day after
    ``contract`` ends (it was renewed)."""
    next_day = contract.ends_on + timedelta(days=1)
    same_product = (
        Contract.product_id.is_(None)
        if contract.product_id is None
        else Contract.product_id == contract.product_id
    )
    return (
        session.scalar(
            select(Contract.id).where(
                Contract.customer_id == contract.customer_id,
                Contract.kind == contract.kind,
                Contract.id != contract.id,
                same_product,
                Contract.starts_on <= next_day,
                Contract.ends_on >= next_day,
            )
        )
        is not None
    )


def contract_data(contract: Contract, today: date) -> dict[str, Any]:
    """The ``data`` of a contract event (docs/webhooks.md)."""
    return {
        "contract_id": contract.id,
        "customer": contract.customer.slug,
        "kind": str(contract.kind),
        "product": contract.product.slug if contract.product else "all",
        "starts_on": contract.starts_on.isoformat(),
        "ends_on": contract.ends_on.isoformat(),
        "days_left": (contract.ends_on - today).days,
    }


def scan(session: Session, today: date, *, window: int) -> int:
    """Emit the contract events due on ``today`` that were not emitted yet; returns how many.

    ``window``: days before its end a maintenance contract is announced as expiring (and days
    after its end a lapse is still announced). Commits.
    """
    candidates = session.scalars(
        select(Contract)
        .where(
            Contract.kind == ContractKind.MAINTENANCE,
            and_(
                Contract.ends_on >= today - timedelta(days=window),
                Contract.ends_on <= today + timedelta(days=window),
            ),
        )
        .order_by(Contract.ends_on, Contract.id)
    )
    emitted = 0
    for contract in list(candidates):
        if _continued(session, contract):
            continue
        lapsed = contract.ends_on < today
        event_type = EventType.CONTRACT_LAPSED if lapsed else EventType.CONTRACT_EXPIRING
        key = f"{event_type}:{contract.id}:{contract.ends_on.isoformat()}"
        if events.emit(session, event_type, contract_data(contract, today), dedupe_key=key):
            emitted += 1
    session.commit()
    return emitted
