"""Benchmark data: BANKING77 and NLU++ messages wrapped in long, realistic business emails.

    python benchmarks/long_messages.py build [--data ../shared/data] [--seed 0]
    python benchmarks/long_messages.py baseline [--threads 2]

There is no long-email dataset in ../shared/data, so ``build`` makes one, reproducibly, at run
time (nothing of it is committed): each message of BANKING77 (train and test) and of NLU++
banking (folds 0-15 train, 16-19 test) becomes the new text of an email with

- a greeting, the message itself, a sign-off and a signature;
- a quoted or forwarded earlier thread of 1-4 other messages of the same dataset *with other
  labels*, behind Outlook, Lotus Notes or Gmail reply and forward headers;
- for a share of them, a long legal disclaimer or a pasted report (tables of figures), so that
  lengths run from a few hundred to 30,000+ characters.

The labels stay those of the new message: quoted text from other intents is noise that a good
system must discount. Files go to benchmarks/runs/long_messages/{banking77,nlupp}/ as
``train.csv`` / ``test.csv`` (columns ``id, subject, body, label`` or ``labels``), beside
``plain_train.csv`` / ``plain_test.csv`` with the unwrapped messages for comparison.

``baseline`` trains and evaluates the TF-IDF baseline on plain, wrapped and wrapped +
``--clean-email`` data and prints a Markdown table (the teacher rows come with windowed
teachers, see issue 16).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CLI, run  # noqa: E402

OUT = HERE / "runs" / "long_messages"

FIRST = ["Alex", "Sam", "Priya", "Tomasz", "Grace", "Omar", "Lena", "Hiro", "Marta", "Kofi", "Ines", "Ravi", "Chloe", "Jonas"]
LAST = ["Whitlock", "Brenner", "Osei", "Ortega", "Nakamura", "Fischer", "Haddad", "Kowalski", "Moreau", "Lindqvist", "Adeyemi"]
COMPANIES = ["Northwind Logistics", "Bluefield Partners", "Kestrel Foods", "Orchard Lane Ltd", "Tidewater Consulting"]
ROLES = ["Accounts Payable", "Office Manager", "Finance Director", "Operations Lead", "Procurement Officer", "Founder"]
GREETINGS = ["Hi,", "Hello,", "Dear Support,", "Hi team,", "Good morning,", "Hello there,", "To whom it may concern,"]
SIGN_OFFS = ["Kind regards,", "Best regards,", "Thanks,", "Many thanks,", "Regards,", "Cheers,", "Best,"]
SUBJECTS = ["Question about my account", "Urgent", "Re: your message", "Fwd: account query", "Help needed", "Re: Re: follow-up", "Card", "(no subject)"]
DISCLAIMERS = [
    "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use of the intended "
    "recipient(s) and may contain confidential and privileged information. Any unauthorised review, use, disclosure "
    "or distribution is prohibited. If you are not the intended recipient, please contact the sender by reply e-mail "
    "and destroy all copies of the original message.",
    "This email and any files transmitted with it are confidential and intended solely for the use of the individual "
    "or entity to whom they are addressed. If you have received this email in error please notify the system manager. "
    "Please note that any views or opinions presented in this email are solely those of the author.",
    "DISCLAIMER: The information contained in this message is proprietary and may be legally privileged. It is "
    "intended only for the addressee. Access to this e-mail by anyone else is unauthorised. Registered office: "
    "1 Harbour Street, Portsmouth. Registered in England and Wales, company number 01234567.",
]
REPORT_ITEMS = ["Opening balance", "Transfers in", "Transfers out", "Card spend", "Direct debits", "Fees", "Interest",
                "Refunds", "Chargebacks", "Closing balance", "FX conversions", "Standing orders", "Cash withdrawals"]
REPORT_UNITS = ["North", "South", "East", "West", "Central", "Online", "Branch", "Corporate", "Retail", "Treasury"]


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def _date(rng: random.Random) -> tuple[int, int, int, int, int]:
    return rng.randint(1, 28), rng.randint(1, 12), rng.choice([2023, 2024, 2025]), rng.randint(7, 18), rng.randint(0, 59)


def _signature(rng: random.Random, first: str, last: str) -> str:
    lines = [f"{first} {last}"]
    if rng.random() < 0.6:
        lines.append(f"{rng.choice(ROLES)} | {rng.choice(COMPANIES)}")
    if rng.random() < 0.5:
        lines.append(f"+44 20 7946 {rng.randint(1000, 9999)}")
    return "\n".join(lines)


def _report(rng: random.Random) -> str:
    """A pasted statement or report: a title and a table of figures, 2,000-30,000 characters."""
    rows = rng.choice([20, 60, 150, 450])
    lines = [f"{rng.choice(['Monthly statement summary', 'Reconciliation report', 'Transaction export', 'Expense report'])} - "
             f"{rng.choice(REPORT_UNITS)} {rng.randint(1, 12):02d}/{rng.choice([2024, 2025])}", ""]
    for _ in range(rows):
        lines.append(f"{rng.choice(REPORT_UNITS):<10} {rng.choice(REPORT_ITEMS):<18} GBP {rng.uniform(-99999, 99999):>12,.2f}   ref {rng.randint(10**7, 10**8 - 1)}")
    return "\n".join(lines)


def _quoted(rng: random.Random, text: str, header_style: str, me: tuple[str, str]) -> str:
    """An earlier message of the thread, behind the reply or forward header of one mail client."""
    first, last = _name(rng)
    day, month, year, hour, minute = _date(rng)
    body = f"{rng.choice(GREETINGS)}\n\n{text}\n\n{rng.choice(SIGN_OFFS)}\n{first}"
    if header_style == "gmail":
        quoted = "\n".join("> " + line if line else ">" for line in body.split("\n"))
        return f"On {day} {['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec'][month - 1]} {year} at {hour:02d}:{minute:02d}, {first} {last} <{first.lower()}@mail.example> wrote:\n{quoted}"
    if header_style == "outlook":
        return (f"________________________________\nFrom: {first} {last} <{first.lower()}.{last.lower()}@mail.example>\n"
                f"Sent: {day:02d}/{month:02d}/{year} {hour:02d}:{minute:02d}\nTo: {me[0]} {me[1]}\nSubject: RE: {rng.choice(SUBJECTS)}\n\n{body}")
    if header_style == "notes_forward":
        return (f"---------------------- Forwarded by {me[0]} {me[1]}/LON/ACME on {month:02d}/{day:02d}/{year} {hour:02d}:{minute:02d} "
                f"{'AM' if hour < 12 else 'PM'} ---------------------------\n\n\n{first} {last}@ACME\n"
                f"{month:02d}/{day:02d}/{year} {hour:02d}:{minute:02d} {'AM' if hour < 12 else 'PM'}\n"
                f"To: {me[0]} {me[1]}/LON/ACME@ACME\ncc:\nSubject: {rng.choice(SUBJECTS)}\n\n{body}")
    return (f"-----Original Message-----\nFrom: {first} {last}\nSent: {day:02d}/{month:02d}/{year} {hour:02d}:{minute:02d}\n"
            f"To: support\nSubject: {rng.choice(SUBJECTS)}\n\n{body}")


def wrap(rng: random.Random, text: str, others: list[str]) -> tuple[str, str]:
    """(subject, body) of an email whose new text is ``text``, quoting ``others`` below it."""
    first, last = _name(rng)
    parts = [rng.choice(GREETINGS), text]
    if rng.random() < 0.2:
        parts.append("Please see the figures below.\n\n" + _report(rng))
    parts.append(f"{rng.choice(SIGN_OFFS)}\n{_signature(rng, first, last)}")
    if rng.random() < 0.35:
        parts.append(rng.choice(DISCLAIMERS))
    for other in others:
        parts.append(_quoted(rng, other, rng.choice(["gmail", "outlook", "notes_forward", "original"]), (first, last)))
    return rng.choice(SUBJECTS), "\n\n".join(parts)


def _read(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, rows: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def build_set(name: str, splits: dict[str, list[dict]], label_key: str, seed: int) -> Path:
    """Wrapped and plain CSVs of one dataset; quoted messages come from the same split, other labels."""
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        rng = random.Random(f"{seed}-{name}-{split}")
        wrapped, plain = [], []
        for i, row in enumerate(rows):
            others = []
            while len(others) < rng.randint(1, 4):
                other = rows[rng.randrange(len(rows))]
                if other[label_key] != row[label_key] and not set(other[label_key].split(";")) & set(row[label_key].split(";")):
                    others.append(other["text"])
            subject, body = wrap(rng, row["text"], others)
            wrapped.append({"id": f"{split}-{i}", "subject": subject, "body": body, label_key: row[label_key]})
            plain.append({"id": f"{split}-{i}", "text": row["text"], label_key: row[label_key]})
        _write(out / f"{split}.csv", wrapped, ["id", "subject", "body", label_key])
        _write(out / f"plain_{split}.csv", plain, ["id", "text", label_key])
        lengths = sorted(len(r["body"]) for r in wrapped)
        print(f"{name} {split}: {len(wrapped)} emails, body length median {statistics.median(lengths):,.0f}, "
              f"p95 {lengths[int(0.95 * (len(lengths) - 1))]:,}, max {lengths[-1]:,} characters", file=sys.stderr)
    return out


def build(data: Path, seed: int) -> None:
    if (data / "banking77" / "train.csv").exists():
        splits = {s: _read(data / "banking77" / f"{s}.csv") for s in ("train", "test")}
        build_set("banking77", splits, "label", seed)
    else:
        print(f"BANKING77 not found under {data}: skipped", file=sys.stderr)
    if (data / "nlupp" / "banking.csv").exists():
        rows = _read(data / "nlupp" / "banking.csv")
        splits = {"train": [r for r in rows if int(r["fold"]) <= 15], "test": [r for r in rows if int(r["fold"]) >= 16]}
        build_set("nlupp", splits, "labels", seed)
    else:
        print(f"NLU++ not found under {data}: skipped", file=sys.stderr)


def baseline(threads: int) -> None:
    """TF-IDF on plain, wrapped, and wrapped + cleaned messages of each built set."""
    rows = []
    for name in ("banking77", "nlupp"):
        folder = OUT / name
        if not (folder / "train.csv").exists():
            continue
        variants = {
            "plain": (["--text-column", "text"], "plain_"),
            "wrapped": (["--text-column", "subject", "--text-column", "body"], ""),
            "wrapped + clean_email": (["--text-column", "subject", "--text-column", "body", "--clean-email"], ""),
        }
        for variant, (options, prefix) in variants.items():
            tag = variant.replace(" + ", "-").replace(" ", "_")
            model, result = folder / f"baseline-{tag}", folder / f"baseline-{tag}.json"
            if not (model / "manifest.json").exists():
                run([*CLI, "baseline", "--train", str(folder / f"{prefix}train.csv"), *options, "--id-column", "id", "--out", str(model), "--quiet"])
            if not result.exists():
                run([*CLI, "evaluate", str(model), "--data", str(folder / f"{prefix}test.csv"), "--json", str(result),
                     "--name", f"tfidf {variant}", "--threads", str(threads), "--quiet"])
            scores = json.loads(result.read_text())
            rows.append((name, variant, scores.get("accuracy"), scores["micro_f1"], scores["macro_f1"], scores["latency_ms_p95"]))
    print("| data | TF-IDF on | accuracy | micro-F1 | macro-F1 | batch-1 p95 ms |\n|---|---|---:|---:|---:|---:|")
    for name, variant, accuracy, micro, macro, p95 in rows:
        print(f"| {name} | {variant} | {'—' if accuracy is None else f'{accuracy:.4f}'} | {micro:.4f} | {macro:.4f} | {p95:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "baseline"])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.step == "build":
        build(args.data, args.seed)
    else:
        baseline(args.threads)


if __name__ == "__main__":
    main()
