"""Optional email clean-up: drop quoted reply chains and signatures before training.

Turned on with ``clean_email = true`` in the data options or ``--clean-email`` on the command
line. Off by default, because it is a heuristic that only suits email-like text.
"""

from __future__ import annotations

import re

# A quoted line, as written by nearly every mail client when replying: "> text".
_QUOTED = re.compile(r"^\s*>")
# "-----Original Message-----" (Outlook, Lotus Notes and most webmail clients).
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*original message\s*-{2,}\s*$", re.IGNORECASE)
# "On Tue, 3 Mar 2026, Support <support@example.com> wrote:" (Gmail, Apple Mail, Thunderbird).
# The digit requirement (a date or a time) keeps a sentence such as "On Monday I wrote:" as text.
_WROTE = re.compile(r"^\s*on\s.*\d.*\swrote:\s*$", re.IGNORECASE)
# One field of an Outlook header block; "*From:*" is how bold field names come out of HTML.
_HEADER_FIELD = re.compile(r"^\s*\*?(from|sent|date|to|cc|subject)\s*:", re.IGNORECASE)
# Forward markers: Lotus Notes' "----- Forwarded by Jane Doe/HOU/ACME on 04/13/2001 10:30 AM -----",
# Gmail's "---------- Forwarded message ---------", Apple Mail's "Begin forwarded message:",
# Outlook's "----- Forwarded Message -----".
_FORWARDED = re.compile(
    r"^\s*(-{2,}\s*forwarded by\s.*|-{2,}\s*forwarded message\s*-*|begin forwarded message:)\s*$", re.IGNORECASE
)
# A date and time as Lotus Notes and Exchange write them above a header block: "04/13/2001 10:30 AM".
_DATE_TIME = re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\s+\d{1,2}:\d{2}(:\d{2})?(\s*[ap]\.?m\.?)?", re.IGNORECASE)
# Header fields of a Lotus Notes block (To, cc, bcc, Subject), which has no "Sent:" line.
_NOTES_FIELD = re.compile(r"^\s*(to|cc|bcc|subject)\s*:", re.IGNORECASE)
# The opening of a legal disclaimer paragraph.
_DISCLAIMER = re.compile(
    r"^\W*(confidentiality( notice| statement| note)?|disclaimer|legal notice|privileged (and|&) confidential|"
    r"(this|the information (contained )?in this|the contents of this)\s+(e-?mail|email message|message|communication|"
    r"transmission)\b.{0,80}\b(confidential|privileged|intended (solely |only )?for|proprietary))",
    re.IGNORECASE | re.DOTALL,
)
# "... intended recipient ..." anywhere in a paragraph marks it as a disclaimer too.
_INTENDED_RECIPIENT = re.compile(r"\b(intended recipient|received this (e-?mail|message|communication) in error)\b", re.IGNORECASE)
# A line that only separates: "________________", "----------", "==========".
_SEPARATOR = re.compile(r"^\s*[_\-=~*]{5,}\s*$")
# A mail app's trailing advert: "Sent from my iPhone", "Get Outlook for Android".
_MOBILE_FOOTER = re.compile(
    r"^\s*(sent from (my )?|sent via (my )?|get outlook for )"
    r"(iphone|ipad|android|samsung|galaxy|mobile|phone|smartphone|blackberry|huawei|pixel|"
    r"outlook|mail|yahoo|aol|gmail|ios)\b.{0,40}$",
    re.IGNORECASE,
)
_SIGN_OFF_PHRASES = (
    "regards", "best regards", "kind regards", "kindest regards", "warm regards", "warmest regards",
    "many thanks", "thanks", "thank you", "thanks again", "thanks in advance", "thank you in advance",
    "thanks so much", "thank you so much", "thank you very much", "thanks very much", "thx", "tia",
    "cheers", "best", "best wishes", "all the best", "sincerely", "yours sincerely",
    "yours faithfully", "yours truly", "respectfully", "take care", "speak soon",
)
# A sign-off line: the phrase alone, with optional punctuation and a name ("Thanks, Jane").
_SIGN_OFF = re.compile(
    r"^\s*(?i:"
    + "|".join(sorted((re.escape(p) for p in _SIGN_OFF_PHRASES), key=len, reverse=True))
    + r")[\s,.!]*(?:[-\u2013\u2014]\s*)?(?:[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,2})?\s*$"
)
_OUTLOOK_LOOKAHEAD = 6  # how many lines after "From:" may hold the rest of its header block
_NOTES_LOOKBACK = 2  # how many lines above "To:" may hold a Lotus Notes block's sender and date
_MAX_SIGNATURE_LINES = 6  # non-blank lines after a sign-off that can still be a signature


def clean_email(text: str) -> str:
    """The message without quoted reply chains and signatures.

    Removed, in this order:

    1. **Reply chains**: everything from the first reply header to the end of the message.
       A reply header is

       - a line ``-----Original Message-----``;
       - an Outlook header block: a ``From:`` line followed within six lines by ``Sent:`` or
         ``Date:`` and by ``Subject:`` (a separator line such as ``_____`` just above it goes
         in step 5);
       - a line ``On <date>, <name> wrote:`` whose date contains a digit, also when a client
         has wrapped it over two lines;
       - a forward marker: Lotus Notes' ``----- Forwarded by <name> on <date> -----``, Gmail's
         ``---------- Forwarded message ---------``, Apple Mail's ``Begin forwarded message:``;
       - a Lotus Notes header block: a line with a date and time (``04/13/2001 10:30 AM``,
         often after the sender's name, which goes too) followed within two lines by ``To:``
         and a few lines further by ``Subject:``.

       The one exception is a bottom-posted or inline reply: when ``On ... wrote:`` is followed
       by ``>`` quoted lines and then by unquoted text, that text is the new reply, so only the
       header goes here (and the quoted lines in step 3).
    2. **Signatures** after the standard delimiter: a line ``-- `` (or ``--``) and everything
       after it.
    3. **Quoted lines**: every line whose first non-blank character is ``>``.
    4. **Legal disclaimers**: each paragraph that opens like one (``CONFIDENTIALITY NOTICE``,
       ``Disclaimer:``, ``This e-mail and any attachments are confidential ...``, ``The
       information contained in this message is privileged ...``) or mentions the intended
       recipient or a message received in error.
    5. **Trailing sign-offs**, repeatedly from the end:

       - blank and separator lines (``_____``, ``-----``);
       - mail app footers: ``Sent from my iPhone``, ``Sent from Mail for Windows``,
         ``Get Outlook for Android`` and the like;
       - a sign-off block: a line that is only a sign-off phrase such as ``Best regards,``,
         ``Thanks!`` or ``Cheers, Tom``, together with the lines after it, when those are at
         most six short, signature-like lines (a name, job title, company, phone number or
         address; not a question or a sentence) and the first of them looks like a name.

    Then trailing spaces are dropped from each line, runs of blank lines are collapsed to one,
    and leading and trailing blank lines are removed. Nothing else changes: a line that merely
    contains "thanks" in the middle of a message stays, as do greetings and the subject.

    A bare forward (a message that opens with a forward marker or ``-----Original Message-----``
    and has no text of its own) is about the forwarded message: its text, after the header
    block, is cleaned by the same rules. Any other non-empty message that is nothing but quotes
    and signature comes back as the original text, stripped, never as an empty string.
    Whitespace-only input gives ``""``.
    """
    original = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _cut_reply_chain(original)
    lines = _cut_signature_delimiter(lines)
    lines = [line for line in lines if not _QUOTED.match(line)]
    lines = _drop_disclaimers(lines)
    lines = _strip_trailing_sign_off(lines)
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip("\n")
    if cleaned.strip():
        return cleaned
    forwarded = _forwarded_body(original)
    if forwarded is not None and (cleaned := clean_email("\n".join(forwarded))):
        return cleaned
    # A message that is all quote or signature (a bare forward, a reply with the new text
    # lost upstream) still says what it is about; an empty text would leave the model
    # nothing to go on and read downstream as missing data.
    return text.strip()


def _cut_reply_chain(lines: list[str]) -> list[str]:
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if _ORIGINAL_MESSAGE.match(lines[i]) or _FORWARDED.match(lines[i]) or _is_outlook_header(lines, i):
            break
        if _is_notes_header(lines, i):
            if kept and _looks_like_sender(kept[-1]):
                kept.pop()  # "Karen Denne@ACME" on the line above the block's date
            break
        span = _wrote_header_span(lines, i)
        if span:
            if not _has_unquoted_text_after_quote(lines, i + span):
                break
            i += span  # bottom-posted or inline reply: keep what follows the quote
            continue
        kept.append(lines[i])
        i += 1
    return kept


def _wrote_header_span(lines: list[str], i: int) -> int:
    """1 or 2 if an ``On ... wrote:`` header starts at line ``i`` (one or two lines), else 0."""
    if _WROTE.match(lines[i]):
        return 1
    if i + 1 < len(lines) and lines[i].lstrip().lower().startswith("on "):
        if _WROTE.match(lines[i].rstrip() + " " + lines[i + 1].strip()):
            return 2
    return 0


def _is_outlook_header(lines: list[str], i: int) -> bool:
    first = _HEADER_FIELD.match(lines[i])
    if not first or first.group(1).lower() != "from":
        return False
    following = lines[i + 1 : i + 1 + _OUTLOOK_LOOKAHEAD]
    fields = {m.group(1).lower() for line in following if (m := _HEADER_FIELD.match(line))}
    return bool(fields & {"sent", "date"}) and "subject" in fields


def _is_notes_header(lines: list[str], i: int) -> bool:
    """A Lotus Notes (or Exchange) header block at line ``i``: a date and time, then ``To:``
    within two lines and ``Subject:`` a few lines further (long recipient lists wrap)."""
    if len(lines[i]) > 160 or not _DATE_TIME.search(lines[i]):
        return False
    following = lines[i + 1 : i + 1 + _NOTES_LOOKBACK]
    to = next((k for k, line in enumerate(following) if _NOTES_FIELD.match(line) and line.lstrip()[:2].lower() == "to"), None)
    if to is None:
        return False
    rest = lines[i + 2 + to : i + 2 + to + _OUTLOOK_LOOKAHEAD]
    return any(_NOTES_FIELD.match(line) and line.lstrip()[:7].lower() == "subject" for line in rest)


def _looks_like_sender(line: str) -> bool:
    """A Notes sender line: a short name or address, no sentence ("Jane Doe@ACME", "jdoe@acme.example")."""
    stripped = line.strip()
    return 0 < len(stripped) <= 80 and not stripped.endswith((".", "?", "!", ":", ",")) and len(stripped.split()) <= 6


def _forwarded_body(lines: list[str]) -> list[str] | None:
    """The forwarded message's lines when the email opens with a forward (a bare forward), else None.

    The forwarded text is then what the message is about; its header block (sender, date, To,
    cc, Subject) is skipped.
    """
    start = next((k for k, line in enumerate(lines) if line.strip()), None)
    if start is None or not (_FORWARDED.match(lines[start]) or _ORIGINAL_MESSAGE.match(lines[start])):
        return None
    body = start + 1
    head = lines[body : body + 4 + _OUTLOOK_LOOKAHEAD + _NOTES_LOOKBACK]
    fields = [k for k, line in enumerate(head) if _HEADER_FIELD.match(line) or _NOTES_FIELD.match(line)]
    return lines[body + fields[-1] + 1 :] if fields else lines[body:]


def _drop_disclaimers(lines: list[str]) -> list[str]:
    """Lines without legal-disclaimer paragraphs ("CONFIDENTIALITY NOTICE: ...", "This e-mail is
    confidential ...", any paragraph that mentions the intended recipient)."""
    kept: list[str] = []
    paragraph: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            paragraph.append(line)
            continue
        text = " ".join(part.strip() for part in paragraph)
        if paragraph and not (_DISCLAIMER.match(text) or _INTENDED_RECIPIENT.search(text)):
            kept.extend(paragraph)
        paragraph = []
        kept.append(line)
    return kept[:-1]


def _has_unquoted_text_after_quote(lines: list[str], start: int) -> bool:
    rest = [line for line in lines[start:] if line.strip()]
    if not rest or not _QUOTED.match(rest[0]):
        return False
    return any(not _QUOTED.match(line) for line in rest)


def _cut_signature_delimiter(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if line.rstrip() == "--":
            return lines[:i]
    return lines


def _strip_trailing_sign_off(lines: list[str]) -> list[str]:
    while True:
        before = len(lines)
        while lines and (not lines[-1].strip() or _SEPARATOR.match(lines[-1]) or _MOBILE_FOOTER.match(lines[-1])):
            lines = lines[:-1]
        start = _sign_off_start(lines)
        if start is not None:
            lines = lines[:start]
        if len(lines) == before:
            return lines


def _sign_off_start(lines: list[str]) -> int | None:
    """Index of a sign-off line whose trailing lines form a signature, if there is one."""
    non_blank = 0
    for i in range(len(lines) - 1, -1, -1):
        if _SIGN_OFF.match(lines[i]):
            after = [line.strip() for line in lines[i + 1 :] if line.strip()]
            if not after or (_looks_like_name(after[0]) and all(map(_looks_like_signature_line, after))):
                return i
            return None
        if lines[i].strip():
            non_blank += 1
            if non_blank > _MAX_SIGNATURE_LINES:
                return None
    return None


def _looks_like_name(line: str) -> bool:
    """One or two words of letters ("jane doe"), or up to four capitalised words ("Dr Jane A. Doe")."""
    words = line.split()
    if len(words) <= 2:
        return all(w.replace(".", "").replace("'", "").replace("-", "").isalpha() for w in words)
    return len(words) <= 4 and all(w[0].isupper() for w in words)


def _looks_like_signature_line(line: str) -> bool:
    words = line.split()
    if len(line) > 60 or len(words) > 8 or line.endswith(("?", "!")):
        return False
    return not line.endswith(".") or len(words) <= 3
