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
_MAX_SIGNATURE_LINES = 6  # non-blank lines after a sign-off that can still be a signature


def clean_email(text: str) -> str:
    """The message without quoted reply chains and signatures.

    Removed, in this order:

    1. **Reply chains**: everything from the first reply header to the end of the message.
       A reply header is

       - a line ``-----Original Message-----``;
       - an Outlook header block: a ``From:`` line followed within six lines by ``Sent:`` or
         ``Date:`` and by ``Subject:`` (a separator line such as ``_____`` just above it goes
         in step 4);
       - a line ``On <date>, <name> wrote:`` whose date contains a digit, also when a client
         has wrapped it over two lines.

       The one exception is a bottom-posted or inline reply: when ``On ... wrote:`` is followed
       by ``>`` quoted lines and then by unquoted text, that text is the new reply, so only the
       header goes here (and the quoted lines in step 3).
    2. **Signatures** after the standard delimiter: a line ``-- `` (or ``--``) and everything
       after it.
    3. **Quoted lines**: every line whose first non-blank character is ``>``.
    4. **Trailing sign-offs**, repeatedly from the end:

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

    A non-empty message that is nothing but quotes and signature comes back as the original
    text, stripped, never as an empty string. Whitespace-only input gives ``""``.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = _cut_reply_chain(lines)
    lines = _cut_signature_delimiter(lines)
    lines = [line for line in lines if not _QUOTED.match(line)]
    lines = _strip_trailing_sign_off(lines)
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip("\n")
    if cleaned.strip():
        return cleaned
    # A message that is all quote or signature (a bare forward, a reply with the new text
    # lost upstream) still says what it is about; an empty text would leave the model
    # nothing to go on and read downstream as missing data.
    return text.strip()


def _cut_reply_chain(lines: list[str]) -> list[str]:
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if _ORIGINAL_MESSAGE.match(lines[i]) or _is_outlook_header(lines, i):
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
