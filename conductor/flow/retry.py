"""Retry policies: how often, after which delay, and on which errors an attempt is retried."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from conductor.flow.errors import InvalidTask


def type_name(kind: type[BaseException]) -> str:
    """The name an exception class is known by: `module.qualname`, or `qualname` for builtins."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def exception_kinds(exc: BaseException) -> tuple[str, ...]:
    """Every name the exception's classes answer to (MRO order): qualified and bare names.

    Retry policies match against these names, so a YAML policy naming `ConnectionError` or
    `myapp.errors.Transient` never needs to import anything.
    """
    names: list[str] = []
    for kind in type(exc).__mro__:
        if kind is object:
            continue
        for name in (type_name(kind), kind.__qualname__):
            if name not in names:
                names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class Retry:
    """A retry policy.

    `times` counts RETRIES, not attempts: `Retry(times=3)` allows up to 4 attempts. The n-th retry
    (n = 1, 2, ...) waits `delay * backoff ** (n - 1)` seconds, capped at `max_delay`, then
    scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter]. `on` lists the exception
    classes (Python) or class names (YAML; matched against the names of the exception's classes,
    qualified or bare) that are retried; empty means every Exception.
    """

    times: int = 3
    delay: float = 0.0
    backoff: float = 1.0
    max_delay: float | None = None
    jitter: float = 0.0
    on: tuple[type[BaseException] | str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.times, int) or isinstance(self.times, bool) or self.times < 0:
            raise InvalidTask(f"retry times must be an integer >= 0, not {self.times!r}")
        for label, value in (("delay", self.delay), ("backoff", self.backoff)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InvalidTask(f"retry {label} must be a number >= 0, not {value!r}")
        if self.max_delay is not None and (
            not isinstance(self.max_delay, (int, float)) or self.max_delay < 0
        ):
            raise InvalidTask(f"retry max_delay must be a number >= 0, not {self.max_delay!r}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise InvalidTask(f"retry jitter must be a fraction in [0, 1], not {self.jitter!r}")
        on = tuple(self.on) if isinstance(self.on, Iterable) else (self.on,)
        for item in on:
            if not (isinstance(item, str) or (
                isinstance(item, type) and issubclass(item, BaseException)
            )):
                raise InvalidTask(f"retry on= takes exception classes or names, not {item!r}")
        object.__setattr__(self, "on", on)

    @property
    def on_names(self) -> tuple[str, ...]:
        """The `on` entries as names (what a compiled graph shows and compares)."""
        return tuple(item if isinstance(item, str) else type_name(item) for item in self.on)

    def matches(self, kinds: Iterable[str]) -> bool:
        """Whether an error whose classes answer to `kinds` is retried by this policy."""
        if not self.on:
            return True
        wanted = set(self.on_names)
        return any(kind in wanted for kind in kinds)

    def delay_for(self, retry_number: int, random: Callable[[], float]) -> float:
        """Seconds to wait before the `retry_number`-th retry (1-based); `random()` in [0, 1)."""
        base = self.delay * self.backoff ** max(0, retry_number - 1)
        if self.max_delay is not None:
            base = min(base, self.max_delay)
        if self.jitter:
            base *= 1 + self.jitter * (2 * random() - 1)
        return max(0.0, base)

    def describe(self) -> dict[str, object]:
        """The policy as plain data (for graph comparison and display)."""
        return {
            "times": self.times,
            "delay": float(self.delay),
            "backoff": float(self.backoff),
            "max_delay": None if self.max_delay is None else float(self.max_delay),
            "jitter": float(self.jitter),
            "on": sorted(self.on_names),
        }

