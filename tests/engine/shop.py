"""A flows module as an operator would write it: actions for workbooks, a flow factory, and a
register() hook. Loaded by name in the registry tests."""

from __future__ import annotations

from typing import Any

from conductor.flow import Retry, Task, linear, task
from conductor.registry import Registry, action, registered_flow


@action("shop.reserve")
def reserve(order_id: str) -> str:
    return f"reservation-{order_id}"


@action("shop.charge")
def charge(amount: int, reservation: str) -> dict[str, Any]:
    return {"amount": amount, "reservation": reservation}


@action("shop.notify")
def notify(charges: list[Any]) -> int:
    return len(charges)


@action("shop.audit")
class Audit(Task):
    """A class-based action (its revert comes along into workbooks)."""

    def execute(self, order_id: str) -> str:
        return f"audited {order_id}"

    def revert(self, order_id: str) -> None:
        return None


@registered_flow("shop.steps", version="3", description="n tasks in a line")
def steps(inputs: dict[str, Any]) -> Any:
    count = inputs["steps"]
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"steps must be a non-negative integer, not {count!r}")
    return linear(*[task(lambda: None, name=f"step-{i}") for i in range(count)],
                  inputs=["steps"])


def python_equivalent() -> Any:
    """The flow that workbook.yaml's `shop.order` declares, written in Python."""
    from conductor.flow import repeat, unordered  # noqa: PLC0415

    return linear(
        task(reserve, name="reserve", provides="reservation",
             retry=Retry(times=3, delay=1, backoff=2, on=("ConnectionError",))),
        repeat(task(charge, name="charge", provides="charged", rebind={"amount": "item"},
                    timeout=30),
               over="amounts", provides="charges", name="charge-all"),
        unordered(task(notify, name="notify", provides="sent"), name="tail",
                  retry=Retry(times=1)),
        inputs=["order_id", "amounts"], outputs=["sent"],
    )


def register(registry: Registry) -> None:
    registry.add_flow("shop.order.py", lambda inputs: python_equivalent(), version="1")
