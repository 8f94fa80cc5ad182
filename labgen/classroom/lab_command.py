#!/usr/bin/python3
"""lab: ask the class's grading service for your exercises, a hint, a grade, your status, or to
take in your DS. Written by labgen onto your workstation.

The service knows you by the network your request arrives on; it grades your lab from a host
you cannot enter. Changing this program changes nothing about your grade.
"""

import http.client
import json
import sys

SERVICE = "@SERVICE@"  # the grading service on your network (labgen fills it in)
WAIT = 600  # seconds: a check waits its turn behind other students' checks

USAGE = """usage: lab COMMAND
  lab exercises          the exercises of the class, and which are active or solved
  lab hint ID            the next hint for an active exercise
  lab check              grade your lab now (your active exercises, or every check)
  lab status             your lab's hosts, exercises and last check
  lab ds submit [DS...]  put your zone's DS into the lab root: the DS given ('TAG ALG TYPE
                         DIGEST', as dnssec-dsfromkey prints it without the owner; several, each
                         in quotes, during a KSK roll), or one made from each key-signing
                         DNSKEY your name server publishes"""


def ask(method, path, body=b""):
    conn = http.client.HTTPConnection(SERVICE, 80, timeout=WAIT)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "text/plain"})
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        print(f"lab: cannot reach the grading service at {SERVICE}: {error}", file=sys.stderr)
        sys.exit(3)
    finally:
        conn.close()


def main(argv):
    routes = {("exercises",): ("GET", "/exercises"), ("status",): ("GET", "/status"),
              ("check",): ("POST", "/check")}
    if tuple(argv) in routes:
        method, path = routes[tuple(argv)]
        body = b""
    elif len(argv) == 2 and argv[0] == "hint":
        method, path, body = "POST", f"/hint/{argv[1]}", b""
    elif len(argv) >= 2 and argv[:2] == ["ds", "submit"]:
        # One DS as four words, or several, each quoted as one argument: one per line.
        given = argv[2:]
        method, path, body = "POST", "/ds", ("\n" if any(" " in a for a in given) else " ").join(given).encode()
    else:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("help", "-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("help", "-h", "--help") else 2
    status, text = ask(method, path, body)
    try:
        doc = json.loads(text)
    except ValueError:
        doc = {"text": text.strip()}
    print(doc.get("text", ""))
    if status != 200:
        return 2
    return 0 if doc.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
