"""clean_email: each removal rule, what it must leave alone, and the generated sample emails."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from textdistill.data.email import clean_email
from textdistill.data.sample import write_sample_dataset


def test_gmail_reply_chain_is_cut() -> None:
    text = (
        "Hi,\n\nMy parcel still hasn't arrived.\n\n"
        "On Tue, 3 Mar 2026 at 14:05, Shop Support <support@shop.example> wrote:\n"
        "> Thanks for getting in touch.\n"
        ">\n"
        "> Could you send us your order number?"
    )
    assert clean_email(text) == "Hi,\n\nMy parcel still hasn't arrived."


def test_reply_header_wrapped_over_two_lines_is_cut() -> None:
    text = (
        "Please cancel my membership.\n\n"
        "On Tue, 3 Mar 2026 at 14:05, Shop Support <\n"
        "support@shop.example> wrote:\n\n"
        "> Your case reference is CS123456."
    )
    assert clean_email(text) == "Please cancel my membership."


def test_original_message_block_is_cut() -> None:
    text = (
        "Please send the invoice again.\n\n"
        "-----Original Message-----\n"
        "From: Shop Support\n"
        "Sent: Monday, 2 March 2026 10:15\n\n"
        "We have attached your invoice."
    )
    assert clean_email(text) == "Please send the invoice again."


def test_outlook_header_block_is_cut_with_its_separator() -> None:
    text = (
        "I still want a refund.\n\n"
        "________________________________\n"
        "From: Shop Support <support@shop.example>\n"
        "Sent: Monday, 2 March 2026 10:15\n"
        "To: Jane Doe <jane@mail.example>\n"
        "Subject: Re: Your enquiry\n\n"
        "Hi Jane, we have passed this on to the returns team."
    )
    assert clean_email(text) == "I still want a refund."


def test_quoted_lines_are_removed() -> None:
    text = "Answers below.\n> What is your order number?\n12345\n  > And your postcode?\nLS6 2QT"
    assert clean_email(text) == "Answers below.\n12345\nLS6 2QT"


def test_bottom_posted_reply_keeps_the_new_text() -> None:
    text = (
        "On 3 Mar 2026, Shop Support <support@shop.example> wrote:\n"
        "> Could you send us your order number?\n\n"
        "It is BB-123456."
    )
    assert clean_email(text) == "It is BB-123456."


def test_signature_after_delimiter_is_removed() -> None:
    text = "Where is my order?\n\n-- \nJane Doe\nOffice Manager | Acme Ltd\nThis email is confidential."
    assert clean_email(text) == "Where is my order?"
    assert clean_email("Where is my order?\n--\nJane") == "Where is my order?"


@pytest.mark.parametrize("footer", ["Sent from my iPhone", "Sent from my Samsung Galaxy smartphone.",
                                    "Get Outlook for Android", "Sent from Mail for Windows"])
def test_mail_app_footer_is_removed(footer: str) -> None:
    assert clean_email(f"Where is my refund?\n\n{footer}") == "Where is my refund?"


def test_sign_off_block_is_removed() -> None:
    text = (
        "Hi,\n\nPlease close my account.\n\n"
        "Best regards,\nJane Doe\nAcme Ltd\n+44 20 7946 0123"
    )
    assert clean_email(text) == "Hi,\n\nPlease close my account."


def test_sign_off_variants_are_removed() -> None:
    assert clean_email("Please close my account.\n\nThanks, Jane") == "Please close my account."
    assert clean_email("Please close my account.\nThanks!") == "Please close my account."
    assert clean_email("please close my account\n\ncheers\njane doe") == "please close my account"
    text = "Please close my account.\n\nMany thanks,\nKind regards,\nJane\n\nSent from my iPhone"
    assert clean_email(text) == "Please close my account."


def test_all_rules_together() -> None:
    text = (
        "Hello,\r\n\r\nThe kettle arrived broken.\r\n\r\nThanks,\r\nTom\r\n\r\nSent from my iPhone\r\n\r\n"
        "On Mon, 2 Mar 2026 at 09:00, Shop Support <support@shop.example> wrote:\r\n> Hi Tom,\r\n"
    )
    assert clean_email(text) == "Hello,\n\nThe kettle arrived broken."


def test_thanks_in_the_middle_is_kept() -> None:
    text = (
        "Hi,\n\nThanks for the quick reply yesterday.\nThanks\n"
        "The parcel still has not arrived and the tracking page shows no updates since Monday.\n\n"
        "Kind regards,\nJane"
    )
    expected = (
        "Hi,\n\nThanks for the quick reply yesterday.\nThanks\n"
        "The parcel still has not arrived and the tracking page shows no updates since Monday."
    )
    assert clean_email(text) == expected


def test_sign_off_followed_by_a_question_is_kept() -> None:
    text = "Please help with my order.\n\nThanks\nCan you also call me back?"
    assert clean_email(text) == text


def test_on_without_a_date_is_not_a_reply_header() -> None:
    text = "On Monday I wrote:\nthe order number on the invoice is wrong."
    assert clean_email(text) == text


def test_blank_lines_are_collapsed() -> None:
    assert clean_email("\n\nLine one.   \n\n\n\nLine two.\n\n\n") == "Line one.\n\nLine two."


@pytest.mark.parametrize(
    "text",
    [
        "> only a quote\n> and nothing else",
        "On 3 Mar 2026, Shop Support <support@shop.example> wrote:\n> Your refund is on its way.",
        "  Thanks,\nJane Doe  ",
        "-- \nJane Doe\nAcme Ltd",
        "Sent from my iPhone",
    ],
)
def test_never_empty(text: str) -> None:
    assert clean_email(text) == text.strip()


def test_whitespace_only_gives_empty() -> None:
    assert clean_email(" \n\n ") == ""


def test_plain_message_is_unchanged() -> None:
    text = "Hello,\n\nMy card keeps getting declined at checkout.\nCan you help?"
    assert clean_email(text) == text


def test_generated_sample_emails(tmp_path: Path) -> None:
    ds = write_sample_dataset(tmp_path, n_train=600, n_test=10, n_unannotated=10)
    with ds.train.open(encoding="utf-8", newline="") as f:
        bodies = [row["body"] for row in csv.DictReader(f)]
    had_chain = shortened = 0
    for body in bodies:
        cleaned = clean_email(body)
        assert cleaned.strip()
        assert body.startswith(cleaned)  # only ever cut from the end in generated emails
        assert not any(line.lstrip().startswith(">") for line in cleaned.splitlines())
        assert "wrote:" not in cleaned
        assert "Original Message" not in cleaned
        assert "Sent from my" not in cleaned
        assert "\n-- \n" not in cleaned
        had_chain += "\n> " in body or "Original Message" in body or "\nFrom: " in body
        shortened += len(cleaned) < len(body)
    assert had_chain > 20
    assert shortened > 0.5 * len(bodies)  # most generated emails end with a sign-off


def test_lotus_notes_forward_marker_and_header_block_are_cut() -> None:
    text = (
        "Please look at the attached contract before Friday.\n\n"
        "---------------------- Forwarded by Dana Whitlock/HOU/ACME on 04/13/2001 11:02 AM ---------------------------\n\n\n"
        "Karl Brenner@ACME\n"
        "04/13/2001 10:30 AM\n"
        "To: Dana Whitlock/HOU/ACME@ACME, Mira Osei/Corp/ACME@ACME\n"
        "cc: Luis Ortega/HOU/ACME@ACME\n"
        "Subject: Re: contract terms\n\n"
        "The draft terms are below."
    )
    assert clean_email(text) == "Please look at the attached contract before Friday."


def test_lotus_notes_reply_header_without_a_forward_marker_is_cut_with_its_sender() -> None:
    text = (
        "I agree, go ahead with the refund.\n\n"
        "Karl Brenner@ACME\n"
        "04/13/2001 10:30 AM\n"
        "To: Dana Whitlock/HOU/ACME@ACME, Mira Osei/Corp/ACME@ACME, Tom Hale/Corp/ACME@ACME,\n"
        "    Ruth Kim/Corp/ACME@ACME\n"
        "cc:\n"
        "Subject: refund for order 5512\n\n"
        "Should we refund the customer in full?"
    )
    assert clean_email(text) == "I agree, go ahead with the refund."
    one_line = "Yes, cancel it.\n\nKarl Brenner@ACME 04/13/2001 10:30 AM\nTo: Dana Whitlock/HOU/ACME@ACME\nSubject: cancel?\n\nCancel?"
    assert clean_email(one_line) == "Yes, cancel it."


def test_a_date_in_the_text_is_not_a_notes_header() -> None:
    text = "My flight on 04/13/2001 10:30 AM was cancelled.\nTo: whom it may concern, I want a refund."
    assert clean_email(text) == text


@pytest.mark.parametrize(
    "marker", ["---------- Forwarded message ---------", "Begin forwarded message:", "----- Forwarded Message -----"]
)
def test_webmail_forward_markers_cut_the_forwarded_thread(marker: str) -> None:
    text = f"Can you deal with this customer?\n\n{marker}\nFrom: Ann Lee <ann@mail.example>\nDate: Mon, 2 Mar 2026\nSubject: broken kettle\n\nMy kettle arrived broken."
    assert clean_email(text) == "Can you deal with this customer?"


def test_bare_forward_is_about_the_forwarded_message() -> None:
    text = (
        "---------- Forwarded message ---------\n"
        "From: Ann Lee <ann@mail.example>\n"
        "Date: Mon, 2 Mar 2026 at 09:12\n"
        "Subject: broken kettle\n"
        "To: <support@shop.example>\n\n"
        "My kettle arrived broken, I would like a replacement.\n\n"
        "Thanks,\nAnn\n\n"
        "On Sun, 1 Mar 2026 at 18:00, Shop <orders@shop.example> wrote:\n> Your order has shipped."
    )
    assert clean_email(text) == "My kettle arrived broken, I would like a replacement."


def test_legal_disclaimer_paragraphs_are_removed() -> None:
    text = (
        "Please send me a copy of invoice 4471.\n\n"
        "Kind regards,\nJane Doe\nAcme Ltd\n\n"
        "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be privileged.\n"
        "They are for the use of the addressee only.\n\n"
        "If you are not the intended recipient, please notify the sender and delete this message."
    )
    assert clean_email(text) == "Please send me a copy of invoice 4471."
    other = "Where is my refund?\n\nThe information contained in this message is privileged and intended only for the addressee."
    assert clean_email(other) == "Where is my refund?"


def test_a_message_about_confidentiality_is_kept() -> None:
    text = "Is my account information kept confidential?\n\nI read your privacy policy but it is not clear."
    assert clean_email(text) == text


def test_long_forwarded_thread_is_cut_fast() -> None:
    thread = "\n".join(
        f"Karl Brenner@ACME\n04/{k % 12 + 1:02d}/2001 10:{k % 60:02d} AM\nTo: Dana Whitlock/HOU/ACME@ACME\nSubject: Re: report\n\n"
        + "Figures for the quarter are attached and summarised below. " * 40
        for k in range(80)
    )
    text = "Please approve the refund for order 7781.\n\n" + thread
    assert len(text) > 150_000
    assert clean_email(text) == "Please approve the refund for order 7781."
