"""What the sandbox's data looks like: status codes, their frequencies, and
error messages in the style Codat returns them, with per-platform causes.

Every function takes a `random.Random`, so the same seed gives the same data.
"""

from __future__ import annotations

import random
import uuid

from .models import DataType, IntegrationType, ItemStatus, Platform

# syncStatus text for each syncStatusCode.
STATUS_TEXT = {
    1000: "Pushing",
    1010: "Pushing",
    2000: "Complete",
    2040: "Complete",
    4000: "ConfigurationError",
    4040: "CompanyDeleted",
    4220: "Deauthorized",
    4260: "BillingExpired",
    5000: "InternalError",
    5080: "DuplicateSync",
    5120: "DataProcessingError",
    5130: "PushError",
}
TERMINAL_CODES = frozenset(STATUS_TEXT) - {1000, 1010}
FAILED_CODES = frozenset(code for code in STATUS_TEXT if code >= 4000)
COMPANY_FAILURE_MODES = (4000, 4040, 4220, 4260)

# Outcome of a sync that nothing in particular is wrong with.
HEALTHY_WEIGHTS = {
    2000: 80.0,
    2040: 6.0,
    5130: 7.0,
    5120: 3.0,
    5000: 2.0,
    5080: 1.5,
    4000: 0.5,
}

_PUSH_CAUSES: dict[str, list[str]] = {
    Platform.XERO: [
        "Feed Connection failed(409): The AccountToken, AccountId or AccountNumber is already "
        "connected to another Xero Bank Account in the selected Xero Organization.",
        "A validation exception occurred: The document date cannot be before the end of year "
        "lock date ({date}).",
        "A validation exception occurred: Account code '{num}' is not a valid code for this "
        "document.",
        "A validation exception occurred: The TaxType code 'INPUT{small}' does not exist or "
        "cannot be used for this type of transaction.",
    ],
    Platform.QBO: [
        "Duplicate Document Number Error: You must specify a different number. This number has "
        "already been used. DocNumber={num} is assigned to TxnType=Purchase with TxnId={num2}",
        "The account period has closed. Date: {date}. Unlock the period or change the date.",
        "Invalid Reference Id: Accounts element id {num} not found",
        "Business Validation Error: Make sure all your transactions have a GST rate before "
        "you save. TaxCodeRef is missing.",
    ],
    Platform.QBD: [
        "QuickBooks error 3180: There was an error when saving a Check. The transaction date "
        "{date} is prior to the closing date.",
        'QuickBooks error 3140: There is an invalid reference to QuickBooks Account "{num}".',
        "QuickBooks error 3200: The provided edit sequence is out-of-date.",
    ],
    Platform.NETSUITE: [
        "You have entered an Invalid Field Value {num} for the following field: account",
        "The transaction date you specified is not within the date range of your accounting "
        "period ({date}).",
        "Please enter value(s) for: Tax Code",
    ],
    Platform.INTACCT: [
        "BL01001973 Could not create Bill record! The GL period {date} is closed.",
        "BL03000018 Invalid account number {num}; the account does not exist or is inactive.",
        "BL01001973 Document number {num} already exists for this vendor.",
    ],
    Platform.FREEAGENT: [
        "Dated on cannot be in a locked accounting period ({date}).",
        "Bank account is already connected to a bank feed from another provider.",
        "Sales tax rate is not valid for the category {num}.",
    ],
    Platform.DYNAMICS: [
        "The Posting Date {date} is not within your range of allowed posting dates.",
        "The field G/L Account No. of table Purch. Inv. Line contains a value ({num}) that "
        "cannot be found in the related table (G/L Account).",
        "VAT Posting Setup does not exist. Identification fields and values: VAT Bus. Posting "
        "Group='DOMESTIC',VAT Prod. Posting Group='RATE{small}'",
    ],
}

_VALIDATION_CAUSES = [
    "The field NetAmount must be between 0 and 5000000.",
    "Tax rate with id '{num}' was not found in the company's mapping options.",
    "Account with id '{num}' is not a valid expense account.",
    "Currency '{currency}' is not enabled in the accounting software.",
    "Tracking category '{num}' is archived.",
]


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        num=rng.randint(100, 99999),
        num2=rng.randint(100, 99999),
        small=rng.randint(1, 9),
        date=f"{rng.randint(2023, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        currency=rng.choice(["NOK", "CHF", "SEK", "PLN", "JPY"]),
    )


def new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def correlated(rng: random.Random, message: str) -> str:
    """Wrap a downstream message as Codat does, with a fresh correlation ID."""
    return (
        f"An error occurred in a downstream service. Correlation ID: {new_uuid(rng)}. "
        f"Message:  {message}"
    )


def push_error_message(rng: random.Random, platform: str) -> str:
    return correlated(rng, _fill(rng, rng.choice(_PUSH_CAUSES[platform])))


def validation_error_message(rng: random.Random) -> str:
    return _fill(rng, rng.choice(_VALIDATION_CAUSES))


def sync_messages(rng: random.Random, platform: str, code: int) -> tuple[str, str]:
    """(errorMessage, syncExceptionMessage) for a sync that ended with `code`."""
    name = Platform(platform).label
    if code < 4000:
        return "", ""
    if code == 4000:
        cause = (
            f"Configuration error: the bank account configured for expenses no longer exists "
            f"in {name}. Update the company's sync configuration."
        )
    elif code == 4040:
        cause = "The company has been deleted, or its data connection was removed."
    elif code == 4220:
        cause = f"The connection to {name} has been de-authorized; the customer must re-link it."
    elif code == 4260:
        cause = f"The {name} subscription has expired; the platform refuses new data (billing)."
    elif code == 5000:
        cause = "An unexpected error occurred while running the sync."
    elif code == 5080:
        cause = "Duplication protection: these transactions are already part of another sync."
    elif code == 5120:
        cause = "One or more transactions could not be processed: " + validation_error_message(rng)
    else:
        cause = _fill(rng, rng.choice(_PUSH_CAUSES[platform]))
    return correlated(rng, cause), correlated(rng, cause)


def pick_code(rng: random.Random, weights: dict[int, float]) -> int:
    codes = list(weights)
    return rng.choices(codes, weights=[weights[c] for c in codes])[0]


def item_kind(rng: random.Random) -> tuple[int, int]:
    """(integration type, data type) for one expense transaction."""
    roll = rng.random()
    if roll < 0.62:
        return IntegrationType.EXPENSES, DataType.DIRECT_COSTS
    if roll < 0.70:
        return IntegrationType.EXPENSES, DataType.DIRECT_INCOMES
    if roll < 0.90:
        return IntegrationType.BANKFEEDS, DataType.BANK_TRANSACTIONS
    if roll < 0.96:
        return IntegrationType.EXPENSES, DataType.TRANSFERS
    if roll < 0.99:
        return IntegrationType.EXPENSES, DataType.JOURNAL_ENTRIES
    return IntegrationType.EXPENSES, DataType.BILLS


def item_outcomes(
    rng: random.Random, platform: str, code: int, count: int
) -> list[tuple[int, str | None]]:
    """(status, message) for each of `count` items of a sync that ended with `code`."""
    if code in (1000, 1010) or code in (4000, 4040, 4220, 4260, 5000, 5080):
        # Never attempted: the sync stopped before pushing anything.
        return [(ItemStatus.PENDING, None)] * count
    if code == 2000 or code == 2040:
        return [(ItemStatus.COMPLETED, None)] * count
    failing = max(1, min(count, round(count * rng.uniform(0.05, 0.6))))
    chosen = set(rng.sample(range(count), failing)) if count else set()
    outcomes: list[tuple[int, str | None]] = []
    for index in range(count):
        if index not in chosen:
            outcomes.append((ItemStatus.COMPLETED, None))
        elif code == 5120:
            outcomes.append((ItemStatus.VALIDATION_ERROR, validation_error_message(rng)))
        else:
            outcomes.append((ItemStatus.PUSH_ERROR, push_error_message(rng, platform)))
    return outcomes


_NAME_FIRST = [
    "Acme",
    "Northwind",
    "Bluebird",
    "Harbour",
    "Juniper",
    "Summit",
    "Copper",
    "Granite",
    "Willow",
    "Beacon",
    "Lumen",
    "Orchard",
    "Pioneer",
    "Quarry",
    "Riverside",
    "Saffron",
    "Tidal",
    "Union",
    "Vantage",
    "Wren",
    "Alder",
    "Brightside",
    "Cobalt",
    "Drift",
    "Ember",
]
_NAME_SECOND = [
    "Logistics",
    "Studios",
    "Coffee",
    "Analytics",
    "Builders",
    "Dental",
    "Outfitters",
    "Labs",
    "Consulting",
    "Foods",
    "Freight",
    "Media",
    "Robotics",
    "Health",
    "Travel",
]
_NAME_SUFFIX = ["Ltd", "Inc.", "LLC", "GmbH", "Pty Ltd", "AS", "BV", "SAS"]


def company_name(rng: random.Random, index: int) -> str:
    return (
        f"{rng.choice(_NAME_FIRST)} {rng.choice(_NAME_SECOND)} "
        f"{rng.choice(_NAME_SUFFIX)} #{index + 1}"
    )


PLATFORM_WEIGHTS = {
    Platform.XERO: 32,
    Platform.QBO: 30,
    Platform.NETSUITE: 12,
    Platform.INTACCT: 8,
    Platform.FREEAGENT: 6,
    Platform.DYNAMICS: 7,
    Platform.QBD: 5,
}


def company_config(rng: random.Random) -> dict:
    return {
        "bankAccount": {"id": str(rng.randint(10, 999))},
        "supplier": {"id": str(rng.randint(100, 9999))},
        "customer": {"id": str(rng.randint(100, 9999))},
    }
