"""CAA (RFC 8659): the zone says which CA may issue its certificates."""

from __future__ import annotations

from labgen.checks import check
from labgen.checks.netutil import dig, records


@check("caa.issuer", "CAA exists and names the lab CA", standard="RFC 8659; internet.nl CAA",
       why="CAA tells every public CA not to issue for the zone, so a mis-issued certificate "
           "is less likely.",
       fix="Publish CAA 0 issue \"<the lab CA>\" at the zone apex (caa.issuer in the lab file).",
       needs=("dns",))
def test_caa_names_lab_ca(client, lab):
    flags, answers, status = dig(client, lab.domain, "CAA")
    caa = records(answers, "CAA")
    assert f'0 issue "{lab.caa.issuer}"' in caa, \
        f'expected CAA 0 issue "{lab.caa.issuer}"; saw {"; ".join(caa) or status or "no answer"}'
    others = [r for r in caa if r.split()[1] == "issue" and r != f'0 issue "{lab.caa.issuer}"']
    assert not others, f"CAA also allows another CA: {'; '.join(others)}"
    assert "ad" in flags, "the CAA answer is not DNSSEC-validated"
