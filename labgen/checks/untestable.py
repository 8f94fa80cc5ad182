"""What internet.nl tests that a closed lab cannot have: (internet.nl test, reason).

The report lists these as "not tested in the lab", so a student sees the whole internet.nl
picture and why part of it stays outside the lab.
"""

from __future__ import annotations

NOT_TESTED = (
    ("RPKI: route origin of the web servers' addresses (web_rpki_exists, web_rpki_valid)",
     "the lab's addresses are documentation prefixes that no one announces in BGP, so no ROA "
     "can cover them and no route can be validated"),
    ("RPKI: route origin of the name servers' addresses (web_ns_rpki_exists, web_ns_rpki_valid)",
     "the same: the lab's name server is not announced in BGP"),
    ("DNSSEC chain of trust from the public root (web_dnssec_exist, web_dnssec_valid as seen "
     "from the internet)",
     "the lab zone is not delegated from the real root; the lab resolver trusts its DS "
     "directly, which labgen checks instead (dnssec.*)"),
    ("Certificate trusted by the public root stores (web_tls_cert_trusted)",
     "the lab CA is private and name-constrained to the lab domain; labgen checks the chain to "
     "it (https.chain)"),
    ("IPv6 reachability from internet.nl's own network (web_ipv6_ws_reach from outside)",
     "the lab network is closed; labgen checks reachability from the lab's probe instead "
     "(ipv6.reachable, ipv6.ns_reach)"),
)
