"""Prices as decimal strings with the currency's minor units (ISO 4217), never floats."""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 code -> number of minor-unit digits. A deliberate subset; add codes as markets open.
MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLF": 4, "CNY": 2, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0,
    "KWD": 3, "MXN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PLN": 2, "SEK": 2, "SGD": 2, "TND": 3,
    "TRY": 2, "USD": 2, "ZAR": 2,
}  # fmt: skip
# Stored prices are integers of 1/10 000 of the currency unit: every ISO 4217 currency has at most
# 4 minor digits, and Tortoise stores decimals in SQLite as text, which would sort "100" < "20".
PRICE_SCALE = 10_000
PRICE_PATTERN = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$"


def check_price(price: str, currency: str) -> str | None:
    """Why this price cannot be in this currency, or None when it can."""
    digits = MINOR_UNITS.get(currency)
    if digits is None:
        return None  # the currency field reports its own error
    exponent = Decimal(price).as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > digits:
        return f"{currency} has {digits} decimal places; this price has {places}"
    return None


def to_units(price: str | Decimal) -> int:
    return int(Decimal(price) * PRICE_SCALE)


def from_units(units: int, currency: str) -> str:
    digits = MINOR_UNITS.get(currency, 2)
    amount = Decimal(units) / PRICE_SCALE
    return str(amount.quantize(Decimal(1).scaleb(-digits)))
