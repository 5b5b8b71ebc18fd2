"""A built-in sample dataset: customer-service emails to a made-up online retailer.

``textdistill demo`` and the tests need data that looks like the real thing without shipping
anyone's mail. This module writes it: emails and chat messages from customers of
"Brightbasket", an invented shop with a paid membership, labelled with hierarchical intents
such as ``Billing > Refund request`` or ``Delivery > Late delivery``. About one message in
eight has two intents.

The text is generated, not copied: per intent a table of subjects, situations, requests and
chat one-liners, filled with order numbers, products, dates, amounts and names, and wrapped
in varied greetings and sign-offs. Some messages are all lowercase or have typos, some are
one-line chats, some are long. Neighbouring intents share vocabulary on purpose (a refund
versus cancelling a membership, a damaged delivery versus a product complaint), so a TF-IDF
baseline does well but not perfectly. The annotated file stands for a sample collected
early: it uses only part of each intent's phrasings and none of the words later customers use
instead (``SYNONYMS``: "package" for "parcel", "terminate" for "cancel"), which the unannotated
and test messages use. A pretrained teacher knows those words mean the same, TF-IDF cannot;
students learn them from the teacher's soft targets on the unannotated messages. A small
annotated validation file is written like the later messages, as one validates on recent traffic. About a
fifth of the messages carry a signature block, a phone app footer, a quoted reply chain or a
forwarded earlier email about another intent, for the ``clean_email`` option to remove. All names, numbers and addresses are fictional; phone
numbers come from the ranges reserved for drama and email domains end in ``.example``.

Generation is deterministic for a seed and uses no global random state.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

MULTI_LABEL_SHARE = 0.12
OVERLAP_SHARE = 0.5  # how often a message opens with a situation shared with a neighbouring intent
GENERIC_SHARE = 0.35  # how often a subject or a request says nothing about the intent
# Share of each intent's own phrasings that annotated messages use. The annotated sample was
# collected early and misses the other ways customers put things; unannotated and test messages
# use them all, so a model has to generalise beyond the words it was trained on.
ANNOTATED_PHRASINGS = 0.6
# Words that later traffic often uses instead of the annotated sample's (other customers,
# other regions: "package" for "parcel", "terminate" for "cancel"). Unannotated and test
# messages swap each occurrence with probability SYNONYM_SHARE; annotated ones never do, so a
# model must know that the words mean the same, as a pretrained encoder does and TF-IDF cannot.
SYNONYMS = {
    "refund": "reimbursement", "refunded": "reimbursed", "parcel": "package", "courier": "carrier",
    "delivery": "shipment", "delivered": "shipped", "invoice": "bill", "invoices": "bills",
    "receipt": "proof of purchase", "password": "passcode", "log in": "sign on", "login": "sign-on",
    "cancel": "terminate", "cancelled": "terminated", "membership": "plan subscription",
    "damaged": "banged up", "broken": "busted", "faulty": "defective", "late": "overdue",
    "address": "location", "charged": "debited", "twice": "two times", "payment": "transaction",
    "declined": "rejected", "upgrade": "step up", "complaint": "grievance", "love": "adore",
    "great": "fantastic", "suggest": "propose", "suggestion": "proposal", "idea": "thought",
    "close": "shut down", "delete": "erase", "details": "info", "arrived": "showed up",
    "broke": "stopped working", "replacement": "substitute", "money": "cash",
}
SYNONYM_SHARE = 0.6
FORWARDED_SHARE = 0.06  # emails with an earlier email about another intent forwarded below them
LABEL_SEP = ";"
SUPPORT_ADDRESS = "support@brightbasket.example"


@dataclass(frozen=True)
class SampleDataset:
    """Where the sample files are, and the leaf labels they use."""

    train: Path
    test: Path
    unannotated: Path
    labels: tuple[str, ...]
    validation: Path
    label_errors: Path  # the annotations of train planted wrong: id, given labels, true labels


@dataclass(frozen=True)
class _Intent:
    """How customers phrase one intent. Templates use the slots of ``_slots``."""

    weight: float  # relative frequency as the main intent of a message
    subjects: tuple[str, ...]
    situations: tuple[str, ...]  # what happened or what the customer wants to know
    overlaps: tuple[str, ...]  # situations shared with neighbouring intents
    asks: tuple[str, ...]  # what they want done
    chats: tuple[str, ...]  # one-line chat messages
    partners: tuple[str, ...]  # intents that plausibly come up in the same message


# Situations that neighbouring intents share on purpose: alone, they do not settle the intent.
CHARGED_AGAIN = "I've been charged {amount} again this month and I don't want to keep paying for it."
WRONG_AMOUNT = "The amount taken from my card for order {order} doesn't match my order confirmation."
PAYMENT_PROBLEM = "There's a problem with the payment for order {order}."
NOT_WORKING = "The {product} doesn't work properly."
FAULTY_ON_ARRIVAL = "The {product} I received on {date} is faulty."
NEVER_ARRIVED = "My parcel never turned up; I think the courier took it to the wrong place."
MOVED = "I've moved to {address}."
CANT_LOG_IN_TO_CHANGE = "I can't log in to change my details."
DONE_WITH_YOU = "I don't want anything more to do with Brightbasket."
PLAN_NOT_RIGHT = "I'm not sure the {plan} plan is right for me any more."
RATTLING = "Is the {product} supposed to make a rattling noise?"
LIKE_THE_APP = "I really like the new app."
# Requests that neighbouring intents share.
NOT_CHARGED_AGAIN = "Please make sure I'm not charged again."
MONEY_BACK = "I'd like the money back, please."
REPLACEMENT = "Can you send me a replacement?"
UPDATE_RECORDS = "Please update your records."
CONFIRM_BY_EMAIL = "Please confirm by email once it's done."

INTENTS: dict[str, _Intent] = {
    "Billing > Refund request": _Intent(
        weight=1.6,
        subjects=("Refund request", "Refund for order {order}", "Money back please", "Returning the {product}",
                  "Where is my refund?", "Refund not received", "Request for reimbursement", "Return and refund"),
        situations=(
            "I sent the {product} back on {date} and haven't seen the money yet.",
            "I returned order {order} over two weeks ago but the refund still hasn't shown up on my card.",
            "The {product} wasn't what I expected so I've sent it back.",
            "I was told on {date} that a refund of {amount} had been issued, but nothing has arrived in my account.",
            "Your courier collected the return for order {order} on {date}.",
            "I changed my mind about the {product}; it's still unopened in the box.",
            "I was charged {amount} for an item you then told me was out of stock.",
            "I cancelled order {order} before it shipped, so I shouldn't have paid for it.",
            "I was charged {amount} for my membership this month even though I stopped it last month.",
        ),
        overlaps=(CHARGED_AGAIN, WRONG_AMOUNT, FAULTY_ON_ARRIVAL),
        asks=(
            "Could you please refund the {amount} to my original payment method?",
            "Please can you process my refund as soon as possible.",
            "I would like a full refund, not store credit.",
            "When can I expect the money back?",
            "Can you confirm the refund has gone through and give me a reference?",
            "Please just give me my money back, I don't want a replacement.",
            "Can I get a refund for this?",
            NOT_CHARGED_AGAIN, MONEY_BACK,
        ),
        chats=("hi where is my refund for {order}", "still waiting on my refund of {amount}",
               "want my money back for the {product} pls", "how long do refunds take?", "refund for {order} please",
               "i returned the {product} weeks ago, where's my money"),
        partners=("Delivery > Late delivery", "Delivery > Damaged item", "Product > Complaint",
                  "Subscription > Cancel"),
    ),
    "Billing > Invoice copy": _Intent(
        weight=1.0,
        subjects=("Invoice request", "Copy of invoice for order {order}", "VAT invoice needed",
                  "Receipt for my purchase", "Invoice", "Need an invoice for expenses", "Invoice {invoice}"),
        situations=(
            "I need a VAT invoice for order {order} for my company's accounts.",
            "Our finance team has asked for an itemised invoice for the {product} we bought on {date}.",
            "I can't find the receipt for my last purchase anywhere in my account.",
            "The invoice I received has our old company name on it and our accountant won't accept it.",
            "I'm claiming the {product} back on expenses and need a proper invoice showing the VAT.",
            "I need copies of all the invoices for my {plan} membership for the last tax year.",
            "The PDF invoice attached to the order confirmation won't open.",
        ),
        overlaps=(WRONG_AMOUNT,),
        asks=(
            "Could you email me a copy of the invoice?",
            "Please send the invoice to {email}.",
            "Can you reissue the invoice with our company name, {company}, on it?",
            "Would it be possible to get a receipt in PDF format?",
            "Please could you send invoice {invoice} again.",
            "Where can I download my invoices?",
        ),
        chats=("can i get an invoice for order {order}", "need a receipt for the {amount} payment",
               "how do i download my invoice", "pls resend invoice {invoice}"),
        partners=("Billing > Double charge", "Account > Update details"),
    ),
    "Billing > Payment failed": _Intent(
        weight=1.1,
        subjects=("Payment failed", "Card declined", "Can't pay for my order", "Problem at checkout",
                  "Payment not going through", "Error when paying", "Payment issue"),
        situations=(
            "Every time I try to pay at checkout I get an error saying the payment could not be processed.",
            "My card ending {card} keeps getting declined even though there's plenty of money on it.",
            "I tried to renew my {plan} membership but the payment failed.",
            "I got an email saying the payment for order {order} was unsuccessful.",
            "The checkout page just spins and then says 'transaction failed'.",
            "PayPal says the payment went through but your site says it failed.",
            "My bank says they haven't blocked anything, so the problem must be on your side.",
        ),
        overlaps=(PAYMENT_PROBLEM,),
        asks=(
            "Can you tell me why the payment is failing?",
            "Is there another way I can pay?",
            "Please can you check what's wrong so I can complete my order.",
            "Can you hold the order while I sort out the payment?",
            "Could you try taking the payment again?",
            "Please let me know how to update my card details so the payment works.",
        ),
        chats=("payment keeps failing at checkout", "card declined again??", "why cant i pay",
               "payment error on order {order}", "my card wont go through"),
        partners=("Subscription > Upgrade", "Account > Update details"),
    ),
    "Billing > Double charge": _Intent(
        weight=0.9,
        subjects=("Charged twice", "Double charge on my card", "Duplicate payment", "Billed twice for order {order}",
                  "Overcharged", "Two payments taken"),
        situations=(
            "I've been charged twice for order {order}: two payments of {amount} on {date}.",
            "My bank statement shows the same {amount} payment to Brightbasket two times.",
            "I was billed twice for my {plan} membership this month.",
            "You took {amount} for my order even though it was already paid with a gift card.",
            "The total taken from my card is higher than the amount in my order confirmation.",
            "There's a second charge of {amount} on my card from {date} that I don't recognise.",
        ),
        overlaps=(CHARGED_AGAIN, WRONG_AMOUNT, PAYMENT_PROBLEM),
        asks=(
            "Please refund the duplicate payment.",
            "Can you reverse the second charge?",
            "Could you look into this and put the extra money back?",
            "Please confirm which of the two payments you will cancel.",
            NOT_CHARGED_AGAIN, MONEY_BACK,
        ),
        chats=("charged twice for the same order", "2 payments of {amount} came out??",
               "you billed me twice this month", "why have i been charged twice"),
        partners=("Billing > Invoice copy", "Subscription > Cancel"),
    ),
    "Account > Password reset": _Intent(
        weight=1.2,
        subjects=("Can't log in", "Password reset", "Locked out of my account", "Reset link not working",
                  "Login problem", "Forgot password", "Account access"),
        situations=(
            "I've forgotten my password and the reset email never arrives.",
            "The password reset link says it has expired every time I click it.",
            "My account is locked after too many login attempts.",
            "I can't sign in on the app; it says my password is wrong but I'm sure it's right.",
            "I requested a new password three times today and nothing came through, not even in spam.",
            "I changed my phone and now I can't get the verification code to log in.",
        ),
        overlaps=(CANT_LOG_IN_TO_CHANGE,),
        asks=(
            "Can you send me a password reset link?",
            "Please unlock my account.",
            "How do I reset my password?",
            "Could you help me get back into my account?",
            "Please reset my login so I can see my orders.",
        ),
        chats=("cant log in", "forgot my password help", "reset link expired", "locked out of my account",
               "password reset email not coming through"),
        partners=("Account > Update details", "Delivery > Late delivery"),
    ),
    "Account > Close account": _Intent(
        weight=0.9,
        subjects=("Close my account", "Delete my account", "Account deletion", "Please remove my data",
                  "GDPR deletion request", "Closing my account"),
        situations=(
            "I no longer want to shop with you and would like my account closed.",
            "I'd like all my personal data deleted under GDPR.",
            "I opened an account by mistake and want it removed.",
            "I've moved abroad and won't be using my Brightbasket account any more.",
            "I keep getting marketing emails even though I unsubscribed, so I'd rather just delete everything.",
            "I don't want you holding my card details any more.",
        ),
        overlaps=(DONE_WITH_YOU,),
        asks=(
            "Please close my account and confirm by email.",
            "Can you delete my account and all the data you hold on me?",
            "How do I permanently delete my account?",
            "Please confirm once my account has been removed.",
            CONFIRM_BY_EMAIL,
        ),
        chats=("delete my account please", "how do i close my account", "remove all my data",
               "i want my account deleted"),
        partners=("Subscription > Cancel", "Billing > Refund request"),
    ),
    "Account > Update details": _Intent(
        weight=1.0,
        subjects=("Change of email address", "Update my details", "New phone number", "Change name on account",
                  "Update billing address", "Account details"),
        situations=(
            "I've got a new email address, {email}, and want my account to use it.",
            "My surname has changed since I got married, so the name on my account needs updating.",
            "I have a new phone number, {phone}, and need it on my account for delivery texts.",
            "I've moved house and my default address needs changing to {address}.",
            "The date of birth on my account is wrong.",
            "I can't find where to change my billing address in the app.",
        ),
        overlaps=(MOVED, CANT_LOG_IN_TO_CHANGE),
        asks=(
            "Can you update my details please?",
            "Please change the email on my account.",
            "How do I change it myself next time?",
            "Could you make the change for me, as the settings page gives an error?",
            UPDATE_RECORDS, CONFIRM_BY_EMAIL,
        ),
        chats=("need to change my email", "update my phone number to {phone}", "how to change address on account",
               "change my name on the account pls"),
        partners=("Delivery > Wrong address", "Account > Password reset"),
    ),
    "Delivery > Late delivery": _Intent(
        weight=2.2,
        subjects=("Where is my order?", "Order {order} not arrived", "Late delivery", "Still waiting for my parcel",
                  "Delivery delayed", "Order not received", "Tracking not updating", "Order {order}"),
        situations=(
            "My order {order} was due on {date} and still hasn't arrived.",
            "The tracking hasn't updated for {days} days.",
            "I paid for next-day delivery but it's been {days} days.",
            "The courier says the parcel is out for delivery but it never turns up.",
            "I ordered the {product} as a present for {deadline} and it's still not here.",
            "Tracking says delivered but there's nothing on my doorstep or with the neighbours.",
            "It's been over a week since I ordered and I haven't even had a dispatch email.",
        ),
        overlaps=(NEVER_ARRIVED,),
        asks=(
            "Can you tell me where my parcel is?",
            "Please chase the courier and let me know when it will arrive.",
            "When will it be delivered?",
            "If it can't get here by {deadline}, please cancel it.",
            "Can you give me an updated delivery date?",
        ),
        chats=("where is my order {order}", "parcel still not here", "my delivery is late again",
               "tracking hasnt moved in {days} days", "any update on my order?", "still no sign of my {product}"),
        partners=("Billing > Refund request", "Subscription > Cancel", "Delivery > Wrong address"),
    ),
    "Delivery > Damaged item": _Intent(
        weight=1.3,
        subjects=("Damaged item", "Item arrived broken", "Order {order} damaged", "Broken on arrival",
                  "Parcel damaged in transit", "Faulty item received"),
        situations=(
            "The {gadget} arrived with a cracked case.",
            "The box was crushed and the {product} inside is broken.",
            "When I opened the parcel the {product} was smashed.",
            "Part of my order arrived damaged; the {product} has a big dent in it.",
            "The packaging was soaking wet and the {product} is ruined.",
            "The {product} was faulty out of the box; it looks like it was dropped in transit.",
        ),
        overlaps=(NOT_WORKING, FAULTY_ON_ARRIVAL),
        asks=(
            "I've attached photos. Can you send a replacement?",
            "Please send a new one or tell me how to return it.",
            "What do you need from me to sort this out?",
            "Can I get a replacement sent out quickly?",
            "Please arrange a collection of the broken item.",
            REPLACEMENT, MONEY_BACK,
        ),
        chats=("item arrived broken", "{product} came damaged", "box crushed and the {product} is smashed",
               "got a broken {product} in my delivery"),
        partners=("Billing > Refund request", "Product > Complaint"),
    ),
    "Delivery > Wrong address": _Intent(
        weight=0.9,
        subjects=("Wrong delivery address", "Change delivery address", "Order going to my old address",
                  "Delivered to the wrong house", "Address mistake on order {order}"),
        situations=(
            "I've just realised order {order} is going to my old address.",
            "I made a typo in the postcode when I placed the order.",
            "The courier delivered my parcel to the wrong house on my street.",
            "The delivery address on my order is {old_address} but I've moved to {address}.",
            "My parcel was left at number 14 instead of number 41.",
        ),
        overlaps=(NEVER_ARRIVED, MOVED),
        asks=(
            "Can you change the delivery address before it ships?",
            "Please redirect the parcel to {address}.",
            "Is it too late to change where it's going?",
            "Can you contact the courier and get it to the right address?",
            UPDATE_RECORDS,
        ),
        chats=("wrong address on my order", "can u change the delivery address for {order}",
               "parcel delivered to the wrong house", "typo in my postcode on order {order}"),
        partners=("Account > Update details", "Delivery > Late delivery"),
    ),
    "Product > Question": _Intent(
        weight=1.3,
        subjects=("Question about the {product}", "Product question", "Is this compatible?", "Sizing question",
                  "Before I buy", "Warranty question", "Back in stock?"),
        situations=(
            "I'm thinking of buying the {product} and wanted to check a few things first.",
            "Does the {product} come with a warranty?",
            "Will the {gadget} work with my {device}?",
            "What size {garment} should I order? I'm normally a {size}.",
            "Will the {product} be back in stock soon?",
            "Is the {product} dishwasher safe?",
            "How long does the battery on the {gadget} last?",
        ),
        overlaps=(RATTLING,),
        asks=(
            "Could you let me know before I place an order?",
            "Any information would be appreciated.",
            "Can you tell me the exact dimensions as well?",
            "Is there anything else I'd need to buy with it?",
        ),
        chats=("is the {gadget} waterproof?", "does the {product} come in black", "when is the {product} back in stock",
               "what size {garment} should i get, im usually a {size}"),
        partners=("Subscription > Upgrade", "Feedback > Suggestion"),
    ),
    "Product > Complaint": _Intent(
        weight=1.1,
        subjects=("Complaint", "Very disappointed with the {product}", "Poor quality", "Product stopped working",
                  "Not as described", "Unhappy with my purchase"),
        situations=(
            "The {product} stopped working after only {days} days of normal use.",
            "The quality of the {product} is nothing like the photos on your website.",
            "The {product} is not as described; the material feels cheap and the stitching is coming apart.",
            "This is the second {product} from you that has broken within a month.",
            "The {product} smells of chemicals and gave me a headache.",
            "The {gadget} keeps overheating and switching itself off.",
            "The {product} was faulty and now the replacement is faulty too.",
        ),
        overlaps=(NOT_WORKING, FAULTY_ON_ARRIVAL, RATTLING),
        asks=(
            "I expect better for the price I paid.",
            "I want to make a formal complaint.",
            "What are you going to do about this?",
            "Please pass this on to your quality team.",
            "I'd like this escalated to a manager.",
            REPLACEMENT, MONEY_BACK,
        ),
        chats=("{product} broke after {days} days", "really poor quality {product}",
               "not happy with the {product} at all", "the {gadget} doesnt work properly"),
        partners=("Billing > Refund request", "Delivery > Damaged item"),
    ),
    "Subscription > Cancel": _Intent(
        weight=1.4,
        subjects=("Cancel subscription", "Cancel my {plan} membership", "Stop my subscription", "Please cancel",
                  "Unsubscribe from {plan}", "Cancellation", "End my membership"),
        situations=(
            "I'd like to cancel my {plan} membership.",
            "I no longer need the monthly subscription box.",
            "Money is tight at the moment so I need to stop my {plan} plan.",
            "I signed up for the free trial and forgot to cancel before it ended.",
            "I don't use the membership enough to justify {amount} a month.",
            "I tried to cancel in the app but the button doesn't do anything.",
            "I was charged {amount} again this month for a membership I never use.",
        ),
        overlaps=(CHARGED_AGAIN, DONE_WITH_YOU, PLAN_NOT_RIGHT),
        asks=(
            "Please cancel it before the next payment on {deadline}.",
            "Please make sure I'm not charged again.",
            "Can you confirm the cancellation in writing?",
            "How do I stop the automatic renewal?",
            "Please end it at the end of the current billing period.",
            NOT_CHARGED_AGAIN, MONEY_BACK, CONFIRM_BY_EMAIL,
        ),
        chats=("cancel my subscription", "stop my {plan} membership pls", "how do i cancel",
               "dont renew my plan", "please cancel before the next payment"),
        partners=("Billing > Refund request", "Account > Close account"),
    ),
    "Subscription > Upgrade": _Intent(
        weight=0.9,
        subjects=("Upgrade my plan", "Switch to {plan2}", "Upgrade to {plan2}", "Change of plan", "Upgrade question",
                  "Move to the annual plan"),
        situations=(
            "I'm on the {plan} plan and want to move up to {plan2}.",
            "I'd like to switch from monthly to annual billing to save money.",
            "My partner wants to join so we need the Family plan.",
            "I've been enjoying {plan} and want the extra benefits of {plan2}.",
            "Your email said I could upgrade to {plan2} for {amount} a month.",
        ),
        overlaps=(PLAN_NOT_RIGHT,),
        asks=(
            "Can you upgrade me today?",
            "How much would the difference be for the rest of this month?",
            "Please switch my plan and let me know the new price.",
            "Will the upgrade start straight away?",
            CONFIRM_BY_EMAIL,
        ),
        chats=("upgrade me to {plan2}", "how do i switch to annual", "want to upgrade my plan",
               "can i move to {plan2}"),
        partners=("Billing > Payment failed", "Product > Question"),
    ),
    "Feedback > Praise": _Intent(
        weight=0.8,
        subjects=("Thank you!", "Great service", "Compliment for your team", "Happy customer", "Well done",
                  "Brilliant experience"),
        situations=(
            "I just wanted to say how impressed I am with the {product}.",
            "{agent} in your support team was incredibly helpful last week.",
            "My order arrived a day early and beautifully packed.",
            "I've been a customer for {years} years and you've never let me down.",
            "The way you handled my return was quick and painless.",
        ),
        overlaps=(LIKE_THE_APP,),
        asks=(
            "Please pass my thanks on to the team.",
            "Keep up the great work!",
            "No reply needed, just wanted to say thanks.",
            "I'll definitely be recommending you to friends.",
        ),
        chats=("love the {product}, thanks!", "great service as always", "thanks {agent}, you were a star",
               "arrived early, brilliant"),
        partners=("Feedback > Suggestion", "Subscription > Upgrade"),
    ),
    "Feedback > Suggestion": _Intent(
        weight=0.8,
        subjects=("Suggestion", "Idea for your website", "Feature request", "Feedback on the app", "A suggestion",
                  "Small improvement"),
        situations=(
            "It would be great if the app let you save more than one delivery address.",
            "Have you thought about offering plastic-free packaging?",
            "Your website would be much easier to use with a filter for size.",
            "It would help if the tracking email included a delivery time slot.",
            "Could you add a dark mode to the app?",
            "I'd love to see more vegan options in the subscription box.",
        ),
        overlaps=(LIKE_THE_APP,),
        asks=(
            "Just a thought for the future.",
            "Hope this is useful feedback.",
            "I think a lot of customers would appreciate it.",
            "Would you consider it?",
        ),
        chats=("pls add dark mode to the app", "suggestion: paper packaging instead of plastic",
               "would be nice to have a wishlist", "the app needs a size filter"),
        partners=("Feedback > Praise", "Product > Question"),
    ),
}

# Subjects and requests that say nothing about the intent.

def _annotated_phrasings(intent: _Intent) -> _Intent:
    """``intent`` with only its first ``ANNOTATED_PHRASINGS`` of subjects, situations, requests
    and chat lines (at least one of each); shared overlaps are kept whole."""

    def head(options: tuple[str, ...]) -> tuple[str, ...]:
        return options[: max(1, round(len(options) * ANNOTATED_PHRASINGS))]

    return replace(intent, subjects=head(intent.subjects), situations=head(intent.situations), asks=head(intent.asks), chats=head(intent.chats))


ANNOTATED_INTENTS = {label: _annotated_phrasings(intent) for label, intent in INTENTS.items()}

GENERIC_SUBJECTS = ("Order {order}", "Help", "Query", "Problem with my order", "Question", "Help please",
                    "My account", "Customer enquiry", "Urgent", "Brightbasket")
GENERIC_ASKS = ("Please can you help?", "Please look into this.", "What are my options?",
                "Can someone get back to me?", "Please advise.", "Let me know what you can do.")
# Sentences any customer might add, whatever they write about.
FILLERS = (
    "I've been a customer for {years} years.",
    "I tried the help centre but couldn't find an answer.",
    "This is the second time I've written about this.",
    "My order number is {order}.",
    "My account email is {email}.",
    "I tried calling but was on hold for {minutes} minutes.",
    "I'd appreciate a quick reply.",
    "Sorry if this is the wrong address to write to.",
    "I placed the order on {date}.",
    "Your chat bot wasn't able to help.",
)
GREETINGS = ("", "Hi,", "Hello,", "Hi there,", "Dear Sir/Madam,", "Dear Brightbasket team,", "Hello Customer Service,",
             "Good morning,", "Hey,", "Hi {agent},", "To whom it may concern,", "Dear Support,")
REPLY_OPENERS = ("Thanks for getting back to me.", "Following up on my last email.", "Thanks for your reply.",
                 "Sorry, but this still isn't sorted.")
CONNECTORS = ("Also, ", "On a separate note, ", "While I'm at it, ", "Separately, ", "Oh, and ", "One more thing: ")
CLOSINGS = ("", "", "Thanks in advance.", "Looking forward to hearing from you.", "I look forward to your reply.",
            "Many thanks for your help.", "Hope you can help.")
SIGN_OFFS = ("Thanks,", "Thank you,", "Kind regards,", "Best regards,", "Regards,", "Best,", "Cheers,",
             "Many thanks,", "Yours sincerely,", "Yours faithfully,", "Thanks!", "Thx")
MOBILE_FOOTERS = ("Sent from my iPhone", "Sent from my Samsung Galaxy smartphone.", "Get Outlook for Android",
                  "Sent from Yahoo Mail on Android", "Sent from my iPad")
DISCLAIMER = ("This email and any attachments are confidential and intended solely for the addressee. "
              "If you have received it in error, please delete it and notify the sender.")
SUPPORT_REPLIES = (
    "We're sorry to hear about the problem with your order. Could you reply with your order number\n"
    "so we can look into it?",
    "You can track deliveries, request a refund or manage your membership at any time from the\n"
    "My Account page.",
    "We've passed your request to the relevant team, who will be in touch within 2 working days.",
    "Your case reference is {case}. Please keep it in the subject line of any reply.",
)

FIRST_NAMES = ("Jane", "Tom", "Priya", "Mohammed", "Chloe", "Oluwaseun", "Wei", "Siobhan", "Lukasz", "Fatima",
               "Gareth", "Aisha", "Ben", "Hannah", "Raj", "Emily", "Daniel", "Sofia", "Kwame", "Megan", "Liam",
               "Zara", "Tomasz", "Grace", "Arjun", "Niamh", "Yusuf", "Ellie", "Marco", "Chen")
LAST_NAMES = ("Smith", "Patel", "Khan", "Jones", "Williams", "O'Brien", "Nowak", "Taylor", "Brown", "Okafor", "Li",
              "Evans", "Hughes", "Ahmed", "Murphy", "Wilson", "Kowalski", "Singh", "Davies", "Clarke", "Robinson",
              "Mensah", "Rossi", "Walsh", "Thompson")
AGENTS = ("Sam", "Alex", "Jordan", "Priya", "Chris", "Robyn", "Kieran", "Maya")
MAIL_DOMAINS = ("mail.example", "inbox.example", "post.example", "webmail.example")
PRODUCTS = ("coffee grinder", "kettle", "air fryer", "yoga mat", "rain jacket", "running shoes", "desk lamp",
            "duvet set", "cast iron pan", "kids' scooter", "electric toothbrush", "backpack", "blender",
            "office chair", "wool jumper", "hair dryer", "garden hose", "board game", "water bottle",
            "bedside table", "vacuum cleaner", "knife set", "wireless earbuds", "bluetooth speaker",
            "smart watch", "baby monitor")
GADGETS = ("wireless earbuds", "bluetooth speaker", "smart watch", "baby monitor", "fitness tracker",
           "portable charger", "electric toothbrush")
DEVICES = ("iPhone 13", "Samsung Galaxy S22", "Pixel 7", "old Android phone", "iPad", "work laptop")
GARMENTS = ("rain jacket", "wool jumper", "running shoes", "walking boots", "fleece")
SIZES = ("size 10", "medium", "large", "size 8", "small", "UK 9")
PLANS = ("Basic", "Plus", "Premium", "Family")
COMPANIES = ("Hollis & Grant Ltd", "Bluefield Dental Practice", "Marlow Joinery", "Kestrel Accounting LLP",
             "Oakridge Primary School", "Tandem Design Studio", "Riverside Vets")
JOB_TITLES = ("Office Manager", "Operations Lead", "Practice Manager", "Director", "Finance Assistant",
              "Head of Procurement")
STREETS = ("Elm Grove", "Station Road", "Mill Lane", "Church Street", "Victoria Terrace", "Orchard Close",
           "High Street", "Park Avenue")
TOWNS = ("Leeds", "Bristol", "Norwich", "Cardiff", "York", "Brighton", "Derby", "Exeter", "Glasgow", "Belfast")
MISSPELLINGS = {"receive": "recieve", "address": "adress", "definitely": "definately", "separate": "seperate",
                "received": "recieved", "until": "untill", "cancelled": "canceled", "tomorrow": "tommorow",
                "password": "pasword", "delivery": "delivary", "refund": "refun"}
LABEL_ERROR_SHARE = 0.02  # of the training annotations, planted wrong
TODAY = dt.date(2026, 3, 2)  # the sample's "now": dates in messages fall in the weeks before it
# English names written out, so that the text does not depend on the process's locale.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")


def write_sample_dataset(
    directory: str | Path,
    *,
    seed: int = 0,
    n_train: int = 1200,
    n_test: int = 400,
    n_unannotated: int = 800,
    n_validation: int = 200,
    n_label_errors: int | None = None,
) -> SampleDataset:
    """Write ``train.csv``, ``test.csv``, ``unannotated.csv`` and ``validation.csv`` to ``directory``.

    Train, test and validation have columns ``id,subject,body,labels`` (labels joined by ``;``);
    the unannotated pool has ``id,subject,body``. The validation file is a small annotated
    sample of recent traffic (all phrasings and later words, like test and unannotated): the
    practice of validating on what the model will see, so that early stopping and the
    weak-teacher check judge the shift the annotated file misses. Ids (``msg-000123``) are
    unique across the files. The same seed always writes the same files; the validation file
    is drawn last, so the other three do not depend on its size.

    Like real annotations, train has some wrong ones: ``n_label_errors`` messages (default 2 %
    of ``n_train``, 24 of 1,200) carry another top-level intent than the one they are about, drawn with a random
    generator of their own (so the texts do not change with it). ``label_errors.csv`` lists them
    (``id, given, true``), for ``textdistill check`` to be measured against.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = ("train", "test", "unannotated", "validation")
    paths = {name: directory / f"{name}.csv" for name in names}
    next_id = 0
    for name, n in zip(names, (n_train, n_test, n_unannotated, n_validation), strict=True):
        rows = []
        intents = INTENTS if name != "train" else ANNOTATED_INTENTS
        for label_set in _label_sets(n, rng):
            subject, body = _message(label_set, rng, intents)
            if name != "train":
                subject, body = _later_words(subject, rng), _later_words(body, rng)
            row = {"id": f"msg-{next_id:06d}", "subject": subject, "body": body}
            if name != "unannotated":
                row["labels"] = LABEL_SEP.join(label_set)
            rows.append(row)
            next_id += 1
        if name == "train":
            n_errors = round(LABEL_ERROR_SHARE * n_train) if n_label_errors is None else n_label_errors
            planted = _plant_label_errors(rows, n_errors, random.Random(f"label-errors-{seed}"))
        _write_csv(paths[name], rows, with_labels=name != "unannotated")
    errors = directory / "label_errors.csv"
    with errors.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("id", "given", "true"), *planted])
    return SampleDataset(paths["train"], paths["test"], paths["unannotated"], tuple(sorted(INTENTS)), paths["validation"], errors)


def _plant_label_errors(rows: list[dict[str, str]], n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """Give ``n`` single-intent rows the label of an intent under another parent; (id, given, true) each."""
    single = [row for row in rows if LABEL_SEP not in row["labels"]]
    planted = []
    for row in rng.sample(single, min(n, len(single))):
        true = row["labels"]
        parent = true.split(" > ")[0]
        row["labels"] = rng.choice(sorted(label for label in INTENTS if not label.startswith(parent)))
        planted.append((row["id"], row["labels"], true))
    return sorted(planted)


def _label_sets(n: int, rng: random.Random) -> list[tuple[str, ...]]:
    """``n`` label sets in random order: main intents in proportion to their weights (largest
    remainder, so every intent gets its share even in a small file), and a second intent for
    ``MULTI_LABEL_SHARE`` of them."""
    total = sum(intent.weight for intent in INTENTS.values())
    exact = {label: n * intent.weight / total for label, intent in INTENTS.items()}
    counts = {label: int(x) for label, x in exact.items()}
    by_remainder = sorted(exact, key=lambda label: exact[label] - counts[label], reverse=True)
    for label in by_remainder[: n - sum(counts.values())]:
        counts[label] += 1
    mains = [label for label, count in counts.items() for _ in range(count)]
    rng.shuffle(mains)
    multi = set(rng.sample(range(n), round(n * MULTI_LABEL_SHARE)))
    return [
        (main, rng.choice(INTENTS[main].partners)) if i in multi else (main,) for i, main in enumerate(mains)
    ]


def _message(labels: tuple[str, ...], rng: random.Random, intents: dict[str, _Intent]) -> tuple[str, str]:
    """Subject and body of one message about ``labels`` (the first is the main intent), in the
    phrasings of ``intents``."""
    slots = _slots(rng)
    style = rng.choices(("chat", "email", "long"), weights=(0.15, 0.7, 0.15))[0]
    if style == "chat":
        text = _chat(labels, rng, intents).format(**slots)
        body = _add_typos(text, rng) if rng.random() < 0.3 else text
        subject = "" if rng.random() < 0.3 else _subject(intents[labels[0]], rng, is_reply=False).lower()
        return subject.format(**slots), body

    quoted = rng.random() < 0.1
    forwarded = not quoted and rng.random() < FORWARDED_SHARE
    body = _email(labels, rng, intents, long=style == "long", is_reply=quoted).format(**slots)
    if rng.random() < 0.08:
        body = body.lower()
    if rng.random() < 0.15:
        body = _add_typos(body, rng)
    footer = _footer(slots, rng)
    if footer:
        body += "\n\n" + footer
    if quoted:
        body += "\n\n" + _reply_chain(slots, rng)
    if forwarded:
        body += "\n\n" + _forwarded_thread(labels, slots, rng, intents)
    return _subject(intents[labels[0]], rng, is_reply=quoted).format(**slots), body


def _chat(labels: tuple[str, ...], rng: random.Random, intents: dict[str, _Intent]) -> str:
    parts = [_chat_line(intents[label], rng) for label in labels]
    text = " and also ".join(parts)
    return text if rng.random() < 0.7 else text.capitalize()


def _chat_line(intent: _Intent, rng: random.Random) -> str:
    if rng.random() < OVERLAP_SHARE / 2:
        return _lower_first(rng.choice(intent.overlaps)).rstrip(".")
    return rng.choice(intent.chats)


def _email(labels: tuple[str, ...], rng: random.Random, intents: dict[str, _Intent], *, long: bool, is_reply: bool) -> str:
    main = intents[labels[0]]
    sentences = _situations(main, rng, 2 if long else 1)
    n_fillers = rng.randint(1, 3) if long else int(rng.random() < 0.35)
    for filler in rng.sample(FILLERS, n_fillers):
        sentences.insert(rng.randint(0, len(sentences)), filler)
    sentences.append(_ask(main, rng))
    if is_reply:
        sentences.insert(0, rng.choice(REPLY_OPENERS))
    paragraphs = [" ".join(sentences)]
    for label in labels[1:]:
        other = intents[label]
        paragraphs.append(
            rng.choice(CONNECTORS) + _lower_first(_situations(other, rng, 1)[0]) + " " + _ask(other, rng)
        )
    greeting = rng.choice(GREETINGS)
    closing = rng.choice(CLOSINGS)
    sign_off = rng.choice(SIGN_OFFS) + "\n" + rng.choice(("{first}", "{name}")) if rng.random() < 0.8 else ""
    blocks = [greeting, *paragraphs, closing, sign_off]
    return "\n\n".join(block for block in blocks if block)


def _situations(intent: _Intent, rng: random.Random, n: int) -> list[str]:
    """``n`` different situations; the first is one shared with a neighbour ``OVERLAP_SHARE`` of the time."""
    shared = [rng.choice(intent.overlaps)] if rng.random() < OVERLAP_SHARE else []
    return shared + rng.sample(intent.situations, n - len(shared))


def _ask(intent: _Intent, rng: random.Random) -> str:
    return rng.choice(GENERIC_ASKS if rng.random() < GENERIC_SHARE else intent.asks)


def _subject(intent: _Intent, rng: random.Random, *, is_reply: bool) -> str:
    if rng.random() < 0.04:
        return ""
    subject = rng.choice(GENERIC_SUBJECTS if rng.random() < GENERIC_SHARE else intent.subjects)
    if rng.random() < 0.15:
        subject = subject.lower()
    elif rng.random() < 0.03:
        subject = "URGENT: " + subject
    return rng.choice(("Re: ", "RE: ")) + subject if is_reply else subject


def _footer(slots: dict[str, str], rng: random.Random) -> str:
    """A business signature block (sometimes after a ``-- `` line, sometimes with a legal
    disclaimer), a phone app footer, or nothing."""
    draw = rng.random()
    if draw < 0.07:
        lines = [slots["name"], f"{rng.choice(JOB_TITLES)} | {slots['company']}", f"Tel: {slots['phone']}"]
        if rng.random() < 0.5:
            lines.insert(0, "-- ")
        if rng.random() < 0.3:
            lines += ["", DISCLAIMER]
        return "\n".join(lines)
    if draw < 0.12:
        return rng.choice(MOBILE_FOOTERS)
    return ""


def _reply_chain(slots: dict[str, str], rng: random.Random) -> str:
    """Support's earlier reply, quoted the way Gmail or Outlook quote it."""
    sent = dt.datetime.combine(TODAY, dt.time(9)) - dt.timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 600))
    day, month, time = DAY_NAMES[sent.weekday()], MONTH_NAMES[sent.month - 1], f"{sent:%H:%M}"
    reply = "\n\n".join([f"Hi {slots['first']},", rng.choice(SUPPORT_REPLIES), f"Kind regards,\n{slots['agent']}"])
    sender = f"Brightbasket Support <{SUPPORT_ADDRESS}>"
    style = rng.randrange(4)
    if style < 2:
        when = f"On {day[:3]}, {sent.day} {month[:3]} {sent.year} at {time}, "
        wrapped = "Brightbasket Support <\n" + SUPPORT_ADDRESS + ">"  # a client's line wrap
        header = when + (sender if style == 0 else wrapped) + " wrote:"
        quoted = "\n".join("> " + line if line else ">" for line in reply.split("\n"))
        return f"{header}\n{quoted}".format(**slots)
    header = [
        f"From: {sender}",
        f"Sent: {day}, {sent.day} {month} {sent.year} {time}",
        f"To: {slots['name']} <{slots['email']}>",
        "Subject: Your Brightbasket enquiry",
    ]
    first_line = "-----Original Message-----" if style == 2 else "_" * 32
    return "\n".join([first_line, *header, "", reply]).format(**slots)


def _forwarded_thread(labels: tuple[str, ...], slots: dict[str, str], rng: random.Random, intents: dict[str, _Intent]) -> str:
    """An earlier email about another intent, forwarded below the new message the way Lotus
    Notes or Gmail forward it: noise the labels must not follow (``clean_email`` removes it)."""
    other = rng.choice([label for label in intents if label not in labels])
    earlier_slots = _slots(rng)
    earlier = _email((other,), rng, intents, long=rng.random() < 0.3, is_reply=False).format(**earlier_slots)
    sent = dt.datetime.combine(TODAY, dt.time(9)) - dt.timedelta(days=rng.randint(3, 60), minutes=rng.randint(0, 600))
    if rng.random() < 0.5:
        stamp = f"{sent:%d/%m/%Y %I:%M} {'AM' if sent.hour < 12 else 'PM'}"
        header = [
            f"----- Forwarded by {slots['name']}/{slots['company'].split()[0]} on {stamp} -----",
            "",
            f"{earlier_slots['name']} {stamp}",
            f"To: {slots['name']} <{slots['email']}>",
            f"cc: {SUPPORT_ADDRESS}",
            "Subject: " + _subject(intents[other], rng, is_reply=False).format(**earlier_slots),
        ]
    else:
        day, month = DAY_NAMES[sent.weekday()], MONTH_NAMES[sent.month - 1]
        header = [
            "---------- Forwarded message ---------",
            f"From: {earlier_slots['name']} <{earlier_slots['email']}>",
            f"Date: {day[:3]}, {sent.day} {month[:3]} {sent.year} at {sent:%H:%M}",
            "Subject: " + _subject(intents[other], rng, is_reply=False).format(**earlier_slots),
            f"To: {SUPPORT_ADDRESS}",
        ]
    return "\n".join(header) + "\n\n" + earlier


def _slots(rng: random.Random) -> dict[str, str]:
    """Fillers for the templates' ``{slots}``, drawn fresh for every message."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    gadget = rng.choice(GADGETS)  # often also the message's product, so that the two agree
    plan = rng.randrange(len(PLANS) - 1)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}{rng.randint(1, 99)}", f"{first}{rng.randint(70, 99)}"))
    return {
        "first": first,
        "name": f"{first} {last}",
        "email": re.sub(r"[^a-z0-9.]", "", local.lower()) + "@" + rng.choice(MAIL_DOMAINS),
        "order": rng.choice(("BB-", "#", "")) + str(rng.randrange(10**5, 10**6)),
        "invoice": f"INV-2026-{rng.randrange(10**5):05d}",
        "case": f"CS{rng.randrange(10**6):06d}",
        "product": gadget if rng.random() < 0.35 else rng.choice(PRODUCTS),
        "gadget": gadget,
        "garment": rng.choice(GARMENTS),
        "device": rng.choice(DEVICES),
        "size": rng.choice(SIZES),
        "amount": f"£{rng.randint(4, 180)}.{rng.choice(('00', '49', '95', '99'))}",
        "date": _date_phrase(TODAY - dt.timedelta(days=rng.randint(1, 40)), rng),
        "deadline": _date_phrase(TODAY + dt.timedelta(days=rng.randint(2, 20)), rng),
        "days": str(rng.randint(3, 16)),
        "minutes": str(rng.randint(15, 70)),
        "years": str(rng.randint(2, 12)),
        "plan": PLANS[plan],
        "plan2": PLANS[rng.randrange(plan + 1, len(PLANS))],
        "card": f"{rng.randrange(10**4):04d}",
        "company": rng.choice(COMPANIES),
        "phone": rng.choice(("07700 900{:03d}", "020 7946 0{:03d}")).format(rng.randrange(1000)),
        "address": _address(rng),
        "old_address": _address(rng),
        "agent": rng.choice(AGENTS),
    }


def _date_phrase(date: dt.date, rng: random.Random) -> str:
    weekday, month = DAY_NAMES[date.weekday()], MONTH_NAMES[date.month - 1]
    return rng.choice((f"{date.day} {month}", f"{month} {date.day}", f"{date:%d/%m/%Y}",
                       f"{weekday} {date.day} {month[:3]}"))


def _address(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTUWY"
    area, unit = "".join(rng.choices(letters, k=2)), "".join(rng.choices(letters, k=2))
    postcode = f"{area}{rng.randint(1, 28)} {rng.randint(1, 9)}{unit}"
    return f"{rng.randint(1, 120)} {rng.choice(STREETS)}, {rng.choice(TOWNS)} {postcode}"


_SYNONYM_PATTERN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)) + r")\b", re.IGNORECASE)


def _later_words(text: str, rng: random.Random) -> str:
    """``text`` with each word of ``SYNONYMS`` swapped for its synonym ``SYNONYM_SHARE`` of the
    time, keeping a leading capital."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() >= SYNONYM_SHARE:
            return word
        synonym = SYNONYMS[word.lower()]
        return synonym[0].upper() + synonym[1:] if word[0].isupper() else synonym

    return _SYNONYM_PATTERN.sub(swap, text)


def _lower_first(sentence: str) -> str:
    """Lower-case the first letter, unless it starts "I", an acronym or a name (``PayPal``, ``{agent}``)."""
    first_word = sentence.split()[0]
    if first_word == "I" or first_word.startswith("I'") or not first_word[1:].islower():
        return sentence
    return sentence[0].lower() + sentence[1:]


def _add_typos(text: str, rng: random.Random) -> str:
    """Common misspellings, and now and then a dropped, doubled or swapped letter."""

    def typo(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.lower() in MISSPELLINGS and rng.random() < 0.6:
            return MISSPELLINGS[word.lower()]
        if len(word) < 4 or rng.random() > 0.06:
            return word
        i = rng.randrange(1, len(word) - 1)
        kind = rng.randrange(3)
        if kind == 0:
            return word[:i] + word[i + 1 :]
        if kind == 1:
            return word[:i] + word[i] + word[i:]
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]

    return re.sub(r"[A-Za-z]+", typo, text)


def _write_csv(path: Path, rows: list[dict[str, str]], *, with_labels: bool) -> None:
    columns = ["id", "subject", "body"] + (["labels"] if with_labels else [])
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
