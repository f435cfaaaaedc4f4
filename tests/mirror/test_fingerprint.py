"""Error fingerprints group the same failure whatever its IDs, dates and amounts."""

from dashboard.fingerprint import fingerprint, normalise


def test_correlation_ids_numbers_and_dates_do_not_split_a_group():
    a = (
        "An error occurred in a downstream service. Correlation ID: "
        "0b7f5f7e-6f0c-4e59-9d7a-0d2a3b2c1f00. Message:  Invalid Reference Id: "
        "Accounts element id 4412 not found"
    )
    b = (
        "An error occurred in a downstream service. Correlation ID: "
        "9e1c1c52-1111-4a2b-8c3d-ffffffffffff. Message:  Invalid Reference Id: "
        "Accounts element id 97 not found"
    )
    assert fingerprint(a) == fingerprint(b)
    assert "<id>" in normalise(a) and "<n>" in normalise(a)


def test_dates_and_amounts_become_placeholders():
    assert normalise("The GL period 2026-03-31 is closed.") == "The GL period <date> is closed."
    assert normalise("Amount 1,234.50 exceeds 99.99") == "Amount <amount> exceeds <amount>"
    assert normalise("Posted at 2026-03-31T10:22:01Z") == "Posted at <date>"


def test_different_causes_stay_apart():
    assert fingerprint("The account period has closed.") != fingerprint(
        "Please enter value(s) for: Tax Code"
    )


def test_no_message_has_no_fingerprint():
    assert fingerprint("") == "" and fingerprint(None) == ""
    assert len(fingerprint("x")) == 16
