"""Decimal strings to whole steps of a market's grid: the one parser of every price and quantity.

An order's price and quantity and an alert's threshold arrive as decimal strings; the domain
keeps whole ticks and lots.  Every route parses them here, so the same bad input gets the same
refusal (``invalid_price``, ``invalid_quantity``) wherever it is typed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from backend.errors import BadRequest

Axis = Literal["price", "quantity"]
"""What is parsed: it names the error code (``invalid_price``, ``invalid_quantity``)."""

# The longest decimal the API takes: the request schemas cap these strings at 40 characters too,
# and 40 digits are far past any bound a market sets.
MAX_CHARS = 40
# Plain decimals only, as a person types them: no sign, exponent, spaces, digit separators,
# NaN or Infinity, all of which Decimal() would read.  The mini-app's forms check the same.
PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_STEP_NAMES: dict[Axis, str] = {"price": "tick size", "quantity": "lot size"}


class InvalidAmount(BadRequest, ValueError):
    """A price or quantity that is not a positive plain decimal on the market's grid, or past
    its bound.  ``code`` is ``invalid_price`` or ``invalid_quantity`` whatever the fault, so a
    client branches on the field; ``message`` says what is wrong with it."""

    def __init__(self, axis: Axis, message: str) -> None:
        super().__init__(message, code=f"invalid_{axis}")


def parse_steps(text: object, step: Decimal, axis: Axis, largest: int) -> int:
    """``text`` as a whole number of ``step``: positive, at most ``largest``, never rounded."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        raise InvalidAmount(axis, f"{axis}: a decimal string of at most {MAX_CHARS} characters")
    if not PLAIN_DECIMAL.fullmatch(text):
        raise InvalidAmount(axis, f"{axis}: a positive plain decimal such as 5.25, got {text!r}")
    value = Decimal(text)
    if value <= 0:
        raise InvalidAmount(axis, f"{axis} must be positive, got {text}")
    # Before dividing: a value of forty digits is past what Decimal's context divides.
    if value > step * largest:
        raise InvalidAmount(axis, f"{axis} {text} is too large (at most {step * largest:f})")
    return to_steps(value, step, axis)


def to_steps(value: Decimal, step: Decimal, axis: Axis = "price") -> int:
    """An exact decimal as whole steps; a value off the grid is refused, not rounded."""
    if not value.is_finite():
        raise InvalidAmount(axis, f"{axis} must be finite, got {value}")
    steps, remainder = divmod(value, step)
    if remainder != 0:
        raise InvalidAmount(
            axis, f"{axis} {value} is not a multiple of the {_STEP_NAMES[axis]} {step}"
        )
    return int(steps)
