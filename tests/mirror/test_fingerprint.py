"""Error causes and fingerprints.

Codat's wrapper comes off and the cause comes first; the same cause groups
whatever its correlation IDs, record numbers, dates, amounts and quoted
values, and different causes stay apart.
"""

from __future__ import annotations

import itertools
import time

import pytest
from django.template import Context, Template

from dashboard.fingerprint import BOUND, Cause, fingerprint, headline, normalise, split
from dashboard.templatetags.causes import cause, cause_markup
from dashboard.views import neutralise
from tests.support.html_policy import inline_code

WRAPPER = "An error occurred in a downstream service. Correlation ID: {corr}. Message:  "

# Two instances of everything that differs from one failure to the next.
INSTANCES = [
    {
        "corr": "0b7f5f7e-6f0c-4e59-9d7a-0d2a3b2c1f00",
        "uuid": "1f6ab1bc-58c8-4c1a-a654-86464b065f69",
        "num": "4412",
        "num2": "9912",
        "small": "3",
        "date": "2026-03-31",
        "long_date": "31 Mar 2026",
        "dmy": "31/03/2026",
        "time": "10:22",
        "amount": "1,234.50",
        "doc": "INV-0042",
        "currency": "NOK",
        "email": "ap@acme.example",
        "hex": "5f2b9c1d3e4a6b7c",
    },
    {
        "corr": "9e1c1c52-1111-4a2b-8c3d-ffffffffffff",
        "uuid": "c0ffee00-0000-4000-8000-000000000042",
        "num": "97",
        "num2": "100234",
        "small": "7",
        "date": "2023-11-02",
        "long_date": "2 November 2023",
        "dmy": "2/11/23",
        "time": "23:59:01",
        "amount": "87.05",
        "doc": "INV-7",
        "currency": "CHF",
        "email": "billing@globex.example.com",
        "hex": "00ff00ff00ff00ffab",
    },
]

# Causes as Codat returns them (the sandbox's catalogue, by platform), the
# sync-level causes, and a few in the style of Codat's documentation. Each
# is wrapped as Codat wraps it unless it says `bare`.
CAUSES: dict[str, str] = {
    # Xero
    "xero-feed-409": "Feed Connection failed(409): The AccountToken, AccountId or AccountNumber "
    "is already connected to another Xero Bank Account in the selected Xero Organization.",
    "xero-lock-date": "A validation exception occurred: The document date cannot be before the "
    "end of year lock date ({date}).",
    "xero-account-code": "A validation exception occurred: Account code '{num}' is not a valid "
    "code for this document.",
    "xero-tax-type": "A validation exception occurred: The TaxType code 'INPUT{small}' does not "
    "exist or cannot be used for this type of transaction.",
    # QuickBooks Online
    "qbo-duplicate-doc": "Duplicate Document Number Error: You must specify a different number. "
    "This number has already been used. DocNumber={num} is assigned to TxnType=Purchase with "
    "TxnId={num2}",
    "qbo-period-closed": "The account period has closed. Date: {date}. Unlock the period or "
    "change the date.",
    "qbo-reference-id": "Invalid Reference Id: Accounts element id {num} not found",
    "qbo-gst": "Business Validation Error: Make sure all your transactions have a GST rate "
    "before you save. TaxCodeRef is missing.",
    # QuickBooks Desktop
    "qbd-3180": "QuickBooks error 3180: There was an error when saving a Check. The transaction "
    "date {date} is prior to the closing date.",
    "qbd-3140": "QuickBooks error 3140: There is an invalid reference to QuickBooks Account "
    '"{num}".',
    "qbd-3200": "QuickBooks error 3200: The provided edit sequence is out-of-date.",
    # NetSuite
    "netsuite-field": "You have entered an Invalid Field Value {num} for the following field: "
    "account",
    "netsuite-period": "The transaction date you specified is not within the date range of your "
    "accounting period ({date}).",
    "netsuite-tax-code": "Please enter value(s) for: Tax Code",
    # Sage Intacct
    "intacct-gl-period": "BL01001973 Could not create Bill record! The GL period {date} is closed.",
    "intacct-account": "BL03000018 Invalid account number {num}; the account does not exist or "
    "is inactive.",
    "intacct-doc-number": "BL01001973 Document number {num} already exists for this vendor.",
    # FreeAgent
    "freeagent-locked": "Dated on cannot be in a locked accounting period ({date}).",
    "freeagent-feed": "Bank account is already connected to a bank feed from another provider.",
    "freeagent-sales-tax": "Sales tax rate is not valid for the category {num}.",
    # Dynamics 365 Business Central
    "dynamics-posting-date": "The Posting Date {date} is not within your range of allowed "
    "posting dates.",
    "dynamics-gl-account": "The field G/L Account No. of table Purch. Inv. Line contains a value "
    "({num}) that cannot be found in the related table (G/L Account).",
    "dynamics-vat-setup": "VAT Posting Setup does not exist. Identification fields and values: "
    "VAT Bus. Posting Group='DOMESTIC',VAT Prod. Posting Group='RATE{small}'",
    # Validation (item messages: no wrapper)
    "bare-net-amount": "The field NetAmount must be between 0 and 5000000.",
    "bare-tax-rate": "Tax rate with id '{num}' was not found in the company's mapping options.",
    "bare-expense-account": "Account with id '{num}' is not a valid expense account.",
    "bare-currency": "Currency '{currency}' is not enabled in the accounting software.",
    "bare-tracking": "Tracking category '{num}' is archived.",
    "data-processing": "One or more transactions could not be processed: Tax rate with id "
    "'{num}' was not found in the company's mapping options.",
    # Sync-level
    "configuration": "Configuration error: the bank account configured for expenses no longer "
    "exists in Xero. Update the company's sync configuration.",
    "company-deleted": "The company has been deleted, or its data connection was removed.",
    "deauthorized": "The connection to QuickBooks Online has been de-authorized; the customer "
    "must re-link it.",
    "billing": "The Xero subscription has expired; the platform refuses new data (billing).",
    "unexpected": "An unexpected error occurred while running the sync.",
    "duplication": "Duplication protection: these transactions are already part of another sync.",
    # In the style of Codat's documentation
    "docs-supplier": "Supplier with id {uuid} was not found in the accounting software.",
    "docs-rate-limit": "Request failed with status code 429 at {date}T{time}Z; contact {email} "
    "if it persists.",
    "docs-amount-limit": "The amount £{amount} exceeds the limit set on {long_date} at {time}.",
    "docs-invoice": "Invoice {doc} could not be matched: see https://docs.codat.io/expenses/"
    "{num}#errors",
    "docs-hash": "Transaction hash {hex} does not match the one pushed on {dmy}.",
    "docs-bill-number": "Bill number {doc} is already used by another bill.",
    "docs-http-500": "Xero responded (500) Internal Server Error for request {num}.",
    "docs-correlation": "Push failed upstream (correlation id: {uuid}); retry later.",
}


def message(key: str, index: int) -> str:
    values = INSTANCES[index]
    text = CAUSES[key].format(**values)
    if key.startswith("bare-"):
        return text
    return WRAPPER.format(**values) + text


@pytest.mark.parametrize("key", CAUSES)
def test_two_instances_of_a_cause_share_a_fingerprint(key):
    first, second = message(key, 0), message(key, 1)
    assert first != second or key.startswith("bare-")
    assert normalise(first) == normalise(second)
    assert fingerprint(first) == fingerprint(second)
    assert len(fingerprint(first)) == 16


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(CAUSES, 2)))
def test_different_causes_have_different_fingerprints(a, b):
    assert fingerprint(message(a, 0)) != fingerprint(message(b, 0))


@pytest.mark.parametrize("key", CAUSES)
def test_the_cause_comes_first_with_its_values(key):
    text = message(key, 0)
    assert not normalise(text).startswith("An error occurred")
    assert headline(text, limit=10_000) == CAUSES[key].format(**INSTANCES[0])
    assert split(text).cause == CAUSES[key].format(**INSTANCES[0])


def test_the_normalised_text_names_what_it_hid():
    assert normalise(message("qbo-duplicate-doc", 0)) == (
        "Duplicate Document Number Error: You must specify a different number. This number has "
        "already been used. DocNumber={document_number} is assigned to TxnType=Purchase with "
        "TxnId={number}"
    )
    assert normalise(message("docs-rate-limit", 0)) == (
        "Request failed with status code 429 at {date}; contact {email} if it persists."
    )
    assert normalise(message("docs-amount-limit", 1)) == (
        "The amount {amount} exceeds the limit set on {date} at {time}."
    )
    assert normalise(message("docs-invoice", 0)) == (
        "Invoice {document_number} could not be matched: see {url}"
    )
    assert normalise(message("docs-hash", 0)) == (
        "Transaction hash {hex} does not match the one pushed on {date}."
    )
    assert normalise(message("docs-supplier", 0)) == (
        "Supplier with id {uuid} was not found in the accounting software."
    )
    assert normalise(message("docs-correlation", 0)) == (
        "Push failed upstream (correlation id: {correlation_id}); retry later."
    )
    assert normalise(message("dynamics-vat-setup", 0)).endswith(
        "VAT Bus. Posting Group={quoted},VAT Prod. Posting Group={quoted}"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The GL period 2026-03-31 is closed.", "The GL period {date} is closed."),
        ("Posted at 2026-03-31T10:22:01Z", "Posted at {date}"),
        ("Posted at 2026-03-31 10:22:01.123+01:00.", "Posted at {date}."),
        ("Dated 31/03/2026, 3/1/26 and 2026/03/31", "Dated {date}, {date} and {date}"),
        ("Due 31 Mar 2026 or March 31, 2026 or 1st April 2026", "Due {date} or {date} or {date}"),
        ("At 10:22 or 9:05:33 PM", "At {time} or {time}"),
        ("Amount 1,234.50 exceeds 99.99", "Amount {amount} exceeds {amount}"),
        (
            "Total $1,200.00, €-12.5, 1.234,56 EUR, USD 40",
            "Total {amount}, {amount}, {amount}, {amount}",
        ),
        ("Balance -3.25 is negative", "Balance {amount} is negative"),
        ("Mail ap@acme.example or see https://docs.codat.io/x?y=1.", "Mail {email} or see {url}."),
        ("See www.example.com/help for more", "See {url} for more"),
        ("Id {1f6ab1bc-58c8-4c1a-a654-86464b065f69} gone", "Id {uuid} gone"),
        ("Hash 0xdeadbeef and ABCDEF0123456789", "Hash {hex} and {hex}"),
        (
            "Document number 123 and Doc No. A-77 and Invoice #: 5",
            "Document number {document_number} "
            "and Doc No. {document_number} and Invoice #: {document_number}",
        ),
        ("Bills BILL-12 and PO-2026-001", "Bills {document_number} and {document_number}"),
        ("Name 'Office Supplies' or \"Travel\"", "Name {quoted} or {quoted}"),
        ("Line 12 of 40, item 7", "Line {number} of {number}, item {number}"),
        ("Code INPUT3 and v2", "Code INPUT{number} and v{number}"),
    ],
)
def test_variable_parts_become_named_placeholders(text, expected):
    assert normalise(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Feed Connection failed(409): rejected",
        "QuickBooks error 3180: saving failed",
        "Error code: 42 from the platform",
        "BL01001973 Could not create Bill record!",
        "Request failed with status code 409",
        "HTTP 503 from the platform",
    ],
)
def test_what_identifies_a_cause_stays(text):
    assert normalise(text) == text


def test_codes_and_statuses_tell_causes_apart():
    assert fingerprint("QuickBooks error 3180: x") != fingerprint("QuickBooks error 3140: x")
    assert fingerprint("Feed Connection failed(409): x") != fingerprint(
        "Feed Connection failed(500): x"
    )
    assert fingerprint("BL01001973 x") != fingerprint("BL03000018 x")


def test_quoted_sentences_and_keys_stay_words():
    assert normalise('Xero said "The account is archived." for it') == (
        'Xero said "The account is archived." for it'
    )
    assert normalise('{"field": "abc", "code": 12}') == '{"field": {quoted}, "code": {number}}'
    assert normalise("The company's account isn't valid") == "The company's account isn't valid"


@pytest.mark.parametrize(
    "wrapped",
    [
        "An error occurred in a downstream service. Correlation ID: {id}. Message:  {cause}",
        "An error occurred in a downstream service. Correlation ID: {id}. Message: {cause}",
        "An error occurred in a downstream service. Correlation ID: {id} Message: {cause}",
        "An error occurred in a downstream service. Correlation ID: {id}. {cause}",
        "An error occurred in a downstream service  Correlation ID: {id}  Message:{cause}",
        "  an error occurred in a downstream service. correlation id: {id}. message: {cause}  ",
        "AN ERROR OCCURRED IN A DOWNSTREAM SERVICE. CORRELATION ID: {id}. MESSAGE: {cause}",
        "An error occurred in a downstream service.\nCorrelation ID: {id}.\nMessage:\n{cause}",
        "An error occurred in a downstream service. Correlation ID: {id}. Message:  An error "
        "occurred in a downstream service. Correlation ID: c0ffee00-0000-4000-8000-000000000042. "
        "Message:  {cause}",
    ],
)
def test_the_wrapper_comes_off_however_it_is_spelled(wrapped):
    corr = "0b7f5f7e-6f0c-4e59-9d7a-0d2a3b2c1f00"
    text = wrapped.format(id=corr, cause="The account period has closed.")
    parts = split(text)
    assert parts == Cause(
        cause="The account period has closed.",
        wrapper=parts.wrapper,
        correlation_id=corr,
        full=text,
    )
    assert parts.wrapper.lower().startswith("an error occurred in a downstream service")
    assert normalise(text) == "The account period has closed."
    assert headline(text) == "The account period has closed."


def test_a_wrapper_without_a_correlation_id_or_message_label():
    parts = split("An error occurred in a downstream service. Message: Tax Code missing")
    assert (parts.cause, parts.correlation_id) == ("Tax Code missing", "")
    parts = split("An error occurred in a downstream service: Tax Code missing")
    assert (parts.cause, parts.correlation_id) == ("Tax Code missing", "")


def test_a_message_without_a_wrapper_passes_through():
    text = "  An error occurred while running the sync.  "
    assert split(text) == Cause(
        cause="An error occurred while running the sync.", wrapper="", correlation_id="", full=text
    )
    assert split("") == Cause("", "", "", "") == split(None)


def test_a_wrapper_with_nothing_inside_still_groups():
    first = "An error occurred in a downstream service. Correlation ID: 1234-abcd."
    second = "An error occurred in a downstream service. Correlation ID: 9876-ef01."
    assert split(first).cause == ""
    assert headline(first) == first
    assert fingerprint(first) == fingerprint(second) != ""


def test_whitespace_collapses():
    assert normalise("Tax  rate\n\tmissing ") == "Tax rate missing"
    assert headline("An error occurred in a downstream service. Message:  Tax\n  rate") == (
        "Tax rate"
    )


def test_the_headline_is_cut_with_an_ellipsis():
    text = WRAPPER.format(corr="x") + "word " * 100
    line = headline(text, limit=40)
    assert len(line) <= 40 and line.endswith("…") and line.startswith("word word")
    assert headline("short", limit=40) == "short"
    assert headline("x" * 40, limit=40) == "x" * 40
    assert headline("x" * 41, limit=40) == "x" * 39 + "…"
    assert headline("anything", limit=0) == ""


def test_no_message_has_no_fingerprint():
    for empty in ("", None, "   "):
        assert fingerprint(empty) == ""
        assert normalise(empty) == ""
        assert headline(empty) == ""
    assert len(fingerprint("x")) == 16


def test_a_huge_message_costs_little_and_says_little():
    huge = WRAPPER.format(corr="x") + ("Tax rate 12 is 'bad' on 2026-03-31. " * 3000)[:100_000]
    assert len(huge) > 100_000
    started = time.perf_counter()
    for _ in range(5):
        text, key, line = normalise(huge), fingerprint(huge), headline(huge)
    assert time.perf_counter() - started < 1.0
    assert len(text) <= BOUND and len(line) <= 160 and len(key) == 16
    assert text.startswith("Tax rate {number} is {quoted} on {date}.")
    # The first BOUND characters decide: what follows is not read.
    assert fingerprint(huge) == fingerprint(huge[:BOUND])
    assert fingerprint(huge) == fingerprint(huge + "anything else")


@pytest.mark.parametrize(
    "hostile",
    [
        "'" * 100_000,
        '"' * 100_000,
        "a@" * 50_000,
        "1." * 50_000,
        "1-" * 50_000,
        "1:" * 50_000,
        "An error occurred in a downstream service. Message: " * 2_000,
        "http://" + "a" * 100_000,
        "\\" * 100_000,
    ],
    ids=["quotes", "double-quotes", "at", "dots", "dashes", "colons", "wrappers", "url", "escapes"],
)
def test_pathological_messages_stay_cheap(hostile):
    started = time.perf_counter()
    text, line = normalise(hostile), headline(hostile)
    assert time.perf_counter() - started < 0.5
    assert len(text) <= BOUND and len(line) <= 160


def test_markup_in_a_message_is_kept_as_text():
    xss = "<script>alert(1)</script>"
    assert normalise(WRAPPER.format(corr="x") + xss) == "<script>alert({number})</script>"
    assert headline(WRAPPER.format(corr="x") + xss) == xss


@pytest.mark.parametrize(
    "formula",
    ['=HYPERLINK("http://evil","x")', "+SUM(A1)", "-2+3", "@SUM(1)"],
)
def test_a_formula_cause_passes_through_the_csv_neutraliser_as_text(formula):
    # The wrapper kept a formula from the start of the cell; the cause does not.
    for text in (formula, WRAPPER.format(corr="x") + formula):
        for shown in (headline(text), normalise(text)):
            assert shown[0] in "=+-@"
            assert neutralise(shown) == "'" + shown
    assert normalise(formula) != "" and fingerprint(formula) != ""
    assert normalise('=HYPERLINK("http://evil","x")') == "=HYPERLINK({quoted},{quoted})"


# The template tags.


def _render(source: str, **context: object) -> str:
    return Template("{% load causes %}" + source).render(Context(context))


def test_the_tag_shows_the_cause_with_the_full_text_one_click_away():
    text = message("qbo-period-closed", 0)
    html = _render("{% message_cause m %}", m=text)
    cause_text = CAUSES["qbo-period-closed"].format(**INSTANCES[0])
    assert html == (
        f'<details class="message-cause"><summary>{cause_text}</summary><pre>{text}</pre></details>'
    )


def test_a_short_message_that_is_all_cause_is_just_its_text():
    assert _render("{% message_cause m %}", m="Tax rate missing") == "Tax rate missing"
    assert _render("{% message_cause m %}", m=None) == ""
    assert _render("{% message_cause m %}", m="") == ""
    long = "Tax rate missing " * 20
    assert _render("{% message_cause m %}", m=long).startswith(
        '<details class="message-cause"><summary>Tax rate missing'
    )
    assert _render("{% message_cause m 400 %}", m=long.strip()) == long.strip()


def test_the_tag_escapes_markup_everywhere():
    xss = "<script>alert(1)</script>"
    for text in (xss, WRAPPER.format(corr="x") + xss + " 'q' \"d\" & more", xss * 50):
        html = _render("{% message_cause m %}", m=text)
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert inline_code(html) == []  # nothing the site's CSP would block
    assert _render("{{ m|cause }}", m=xss) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert str(cause_markup(None, summary=xss)) == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_the_filter_is_the_headline():
    text = message("qbd-3180", 1)
    assert _render("{{ m|cause }}", m=text) == headline(text)
    assert _render("{{ m|cause:20 }}", m=text) == "QuickBooks error 31…"
    assert cause(None) == "" and cause(text, "not a number") == headline(text)


def test_a_code_leading_the_message_names_its_kind_and_one_inside_it_is_a_value():
    assert fingerprint("Tax rate TX100003 is missing") == fingerprint(
        "Tax rate TX100004 is missing"
    )
    assert normalise("Tax rate TX100003 is missing") == "Tax rate {code} is missing"
    assert normalise("BL01001973 Could not create Bill record!") == (
        "BL01001973 Could not create Bill record!"
    )
    assert fingerprint("BL01001973 Document number 1 already exists.") != fingerprint(
        "BL03000018 Document number 1 already exists."
    )
