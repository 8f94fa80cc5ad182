"""CAA (RFC 8659): the zone says which CA may issue its certificates."""

from __future__ import annotations

import re

from labgen.checks import check
from labgen.checks.netutil import dig, records


@check("caa.issuer", "CAA exists and names the lab CA", standard="RFC 8659; internet.nl CAA",
       why="CAA tells every public CA not to issue for the zone, so a mis-issued certificate "
           "is less likely.",
       fix="Publish CAA 0 issue \"<the lab CA>\" at the zone apex (caa.issuer in the lab file).",
       needs=("dns",))
def test_caa_names_lab_ca(probe, lab):
    flags, answers, status = dig(probe, lab.domain, "CAA")
    caa = records(answers, "CAA")
    assert f'0 issue "{lab.caa.issuer}"' in caa, \
        f'expected CAA 0 issue "{lab.caa.issuer}"; saw {"; ".join(caa) or status or "no answer"}'
    others = [r for r in caa if r.split()[1] == "issue" and r != f'0 issue "{lab.caa.issuer}"']
    assert not others, f"CAA also allows another CA: {'; '.join(others)}"
    assert "ad" in flags, "the CAA answer is not DNSSEC-validated"


# CAA property tags (RFC 8659 section 4.2, RFC 9495 issuemail, and the BIMI/contact ones CAs
# know); an unknown tag with the critical flag forbids every issuance.
CAA_TAGS = ("issue", "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# issue / issuewild value: [issuer-domain-name] *(";" tag=value) (RFC 8659 section 4.2).
ISSUE_VALUE = re.compile(rf"\s*(?:{LABEL}(?:\.{LABEL})*)?\s*(?:;\s*(?:[A-Za-z0-9]+=[\x21-\x3a\x3c-\x7e]*\s*)?)*")


def caa_problems(record: str) -> list[str]:
    """What is wrong with one CAA record's presentation text ('0 issue "ca.example"')."""
    match = re.fullmatch(r'(\d+)\s+([A-Za-z0-9]+)\s+"(.*)"', record)
    if not match:
        return [f"{record!r} is not flags, tag and a quoted value"]
    flags, tag, value = int(match.group(1)), match.group(2).lower(), match.group(3)
    problems = []
    if flags not in (0, 128):
        problems.append(f"{record!r} has flags {flags}; only 0 and 128 (critical) are defined")
    if tag not in CAA_TAGS and flags & 128:
        problems.append(f"{record!r} marks the unknown tag {tag} critical: no CA may issue")
    if tag in ("issue", "issuewild", "issuemail") and not ISSUE_VALUE.fullmatch(value):
        problems.append(f"{record!r} is not an issuer domain name with optional key=value "
                        "parameters")
    if tag == "iodef" and not re.fullmatch(r"(mailto:\S+@\S+|https?://\S+)", value):
        problems.append(f"{record!r} is not a mailto: or http(s):// address")
    return problems


@check("caa.syntax", "Every CAA record is well-formed (flags, tag, issuer)",
       standard="RFC 8659 section 4; internet.nl CAA", needs=("dns",),
       why="A CA that cannot parse a CAA record may refuse to issue, or read it differently "
           "from what the zone meant.",
       fix="Write CAA records as 0 issue \"<CA domain>\" (and 0 iodef \"mailto:...\"); labgen "
           "renders them from caa.issuer and caa.iodef.")
def test_caa_syntax(probe, lab):
    _, answers, status = dig(probe, lab.domain, "CAA")
    caa = records(answers, "CAA")
    assert caa, f"{lab.domain} has no CAA records ({status}); expected the lab's"
    problems = [p for record in caa for p in caa_problems(record)]
    assert not problems, "; ".join(problems)
