#!/usr/bin/python3
"""labgen-certs: this web server's certificates from the lab's ACME CA, and DANE through renewals.
Written by labgen onto each web server of a lab with `certificates: acme` (labgen/acme.py).

  labgen-certs renew [--force] [--new-key] [--repair]   get a certificate from the ACME CA
                      (certbot, HTTP-01) when a third of its lifetime is left, or it is not the
                      CA's, keeping the key (the TLSA record stays right); --new-key takes a new key
                      the way certbot does by default, which breaks DANE: no TLSA record names it;
                      --repair (labgen up's): then move a served key no TLSA record names to the
                      next key
  labgen-certs roll [--no-wait]   use the next key: wait until its TLSA record has been published
                      for the record's TTL, swap, then replace the old key's record with a new
                      next key's (dynamic update, TSIG)
  labgen-certs status             keys, TLSA records at the name server, certificates
  labgen-certs seed               labgen's deploy: take labgen's rendered keys when they are new

The timer labgen-certs.timer runs `renew`. Settings: /etc/labgen/acme/certs.json.
"""

import fcntl
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

CONFIG = "/etc/labgen/acme/certs.json"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ISSUE_TRIES = 4


class Failed(Exception):
    """A step that did not work, said for a person."""


def run(args, what, stdin=None, env=None):
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()[-6:]
        raise Failed(f"{what} failed: " + " / ".join(line.strip() for line in said if line.strip()))
    return done.stdout


def spki_of_key(path):
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         capture_output=True).stdout
    return hashlib.sha256(der).hexdigest() if der else ""


def spki_of_cert(path):
    if not os.path.exists(path):
        return ""
    return spki_of_pem(read(path))


def spki_of_pem(text):
    """SHA-256 of the SPKI of the first certificate in text (PEM; "" when there is none)."""
    pem = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=text, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest() if pem and der else ""


def not_after(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-enddate", "-dateopt", "iso_8601"],
                         capture_output=True, text=True).stdout
    return out.strip().removeprefix("notAfter=") or "unknown"


def expires_within(path, seconds):
    return subprocess.run(["openssl", "x509", "-in", path, "-noout", "-checkend", str(int(seconds))],
                          capture_output=True).returncode != 0


def install(content, dest, mode):
    """Replace dest at once (a server reloading meanwhile reads the old or the new file)."""
    folder = os.path.dirname(dest)
    if not os.path.isdir(folder):  # private keys' folders are the owner's alone
        os.makedirs(folder, mode=0o700 if mode == 0o600 else 0o755)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".labgen-")
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, dest)


def make_key(algorithm, dest):
    """A new private key like the rendered one: "ec" (P-256) or "rsa:<bits>"."""
    args = (["-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{algorithm[4:]}"]
            if algorithm.startswith("rsa:") else ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    run(["openssl", "genpkey", *args, "-out", dest], "making a new key")
    os.chmod(dest, 0o600)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Server:
    def __init__(self, config):
        self.c = config
        os.makedirs(config["state"], mode=0o700, exist_ok=True)

    def state(self, name):
        return os.path.join(self.c["state"], name)

    # ------------------------------------------------------------ the ACME CA

    def root(self):
        """The ACME CA's current root (pebble makes a new one at each start)."""
        context = ssl.create_default_context(cafile=CA_BUNDLE)
        problem = ""
        for _ in range(30):
            try:
                with urllib.request.urlopen(self.c["roots"], timeout=10, context=context) as answer:
                    return answer.read()
            except OSError as exc:
                problem = str(getattr(exc, "reason", exc))
                time.sleep(1)
        raise Failed(f"cannot reach the lab's ACME CA at {self.c['roots']}: {problem}")

    def from_ca(self, crt, root):
        """The certificate at crt chains to the ACME CA's root."""
        if not os.path.exists(crt):
            return False
        with tempfile.NamedTemporaryFile() as anchor:
            anchor.write(root)
            anchor.flush()
            # That root alone: not the system's store, which trusts the lab CA too.
            return subprocess.run(["openssl", "verify", "-no-CApath", "-no-CAstore", "-CAfile", anchor.name,
                                   "-untrusted", crt, crt],
                                  capture_output=True).returncode == 0

    def issue(self, key):
        """A certificate for key from the ACME CA: certbot with a CSR, proved by HTTP-01 from
        the server's web root. Returns the full chain (PEM). A few tries: at labgen up the
        name server or the resolver the CA asks may still be starting; and once with a new
        account, as pebble forgets every account when it restarts."""
        for attempt in range(ISSUE_TRIES):
            try:
                return self._issue(key)
            except Failed as exc:
                if attempt == ISSUE_TRIES - 1:
                    raise
                if "account" in str(exc).lower():
                    shutil.rmtree(os.path.join(self.state("certbot"), "config", "accounts"), ignore_errors=True)
                time.sleep(2)

    def _issue(self, key):
        with tempfile.TemporaryDirectory(prefix="labgen-certs-") as work:
            csr = os.path.join(work, "request.csr")
            run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={self.c['fqdn']}",
                 "-addext", f"subjectAltName=DNS:{self.c['fqdn']}", "-out", csr], "making the request")
            certbot = self.state("certbot")
            env = {**os.environ, "REQUESTS_CA_BUNDLE": CA_BUNDLE}
            run(["certbot", "certonly", "--non-interactive", "--agree-tos",
                 "--register-unsafely-without-email", "--server", self.c["directory"],
                 "--webroot", "-w", self.c["webroot"], "-d", self.c["fqdn"], "--csr", csr,
                 "--cert-path", os.path.join(work, "cert.pem"),
                 "--fullchain-path", os.path.join(work, "fullchain.pem"),
                 "--chain-path", os.path.join(work, "chain.pem"),
                 "--config-dir", f"{certbot}/config", "--work-dir", f"{certbot}/work",
                 "--logs-dir", f"{certbot}/logs"], "certbot (HTTP-01 at the lab's ACME CA)", env=env)
            return read(os.path.join(work, "fullchain.pem"))

    def reload(self):
        run(self.c["reload"], " ".join(self.c["reload"]))

    # ------------------------------------------------------------ TLSA at the name server

    def published(self):
        """The 3 1 1 digests of the TLSA record at the lab's name server (lower case)."""
        out = run(["dig", "+norec", "+short", "+tries=10", f"@{self.c['ns']}", self.c["tlsa_owner"], "TLSA"],
                  "asking the name server for the TLSA record")
        found = set()
        for line in out.splitlines():
            parts = line.split()
            if parts[:3] == ["3", "1", "1"]:
                found.add("".join(parts[3:]).lower())
        return found

    def update(self, delete=(), add=()):
        """Change this server's TLSA record on the name server (dynamic update, TSIG)."""
        owner, ttl = self.c["tlsa_owner"] + ".", self.c["ttl"]
        lines = [f"server {self.c['ns']}", f"zone {self.c['zone']}"]
        lines += [f"update delete {owner} TLSA 3 1 1 {d}" for d in delete]
        lines += [f"update add {owner} {ttl} TLSA 3 1 1 {d}" for d in add]
        run(["nsupdate", "-k", self.c["tsig"]], "the dynamic update of the TLSA record",
            stdin="\n".join(lines + ["send", ""]))

    def published_at(self, kind):
        try:
            return float(read(self.state(f"{kind}.next-published")))
        except (OSError, ValueError):
            return 0.0

    def mark_published(self, kind, when=None):
        install(f"{when or time.time()}\n".encode(), self.state(f"{kind}.next-published"), 0o644)

    # ------------------------------------------------------------ the commands

    def seed(self):
        """Take labgen's rendered keys when labgen made a new set, or a key file is missing;
        after that the keys are this program's (a deploy must never put back a key a roll
        retired). A server without a certificate for its key gets the rendered one from the lab
        CA until the ACME CA's arrives."""
        kinds = self.c["kinds"]
        digest = hashlib.sha256(b"".join(read(k[p]) for k in kinds.values()
                                         for p in ("rendered_key", "rendered_next", "bootstrap"))).hexdigest()
        marker = self.state("seeded")
        new = not os.path.exists(marker) or read(marker).decode().strip() != digest
        for kind, k in kinds.items():
            if new or not os.path.exists(k["key"]):
                install(read(k["rendered_key"]), k["key"], 0o600)
            if new or not os.path.exists(k["next"]):
                install(read(k["rendered_next"]), k["next"], 0o600)
                self.mark_published(kind)
            if spki_of_cert(k["crt"]) != spki_of_key(k["key"]):
                if spki_of_cert(k["bootstrap"]) == spki_of_key(k["key"]):
                    install(read(k["bootstrap"]), k["crt"], 0o644)
                else:  # a key of this program's: a day's self-signed stand-in until renew
                    run(["openssl", "req", "-x509", "-key", k["key"], "-subj", f"/CN={self.c['fqdn']}",
                         "-addext", f"subjectAltName=DNS:{self.c['fqdn']}", "-days", "1",
                         "-out", k["crt"]], "making a stand-in certificate")
        if new:
            install(f"{digest}\n".encode(), marker, 0o644)

    def renew(self, force=False, new_key=False):
        root, renewed = self.root(), []
        for kind, k in self.c["kinds"].items():
            due = (force or new_key or not self.from_ca(k["crt"], root)
                   or spki_of_cert(k["crt"]) != spki_of_key(k["key"])
                   or expires_within(k["crt"], self.c["lifetime"] * self.c["renew_when_left"]))
            if not due:
                continue
            key = k["key"]
            with tempfile.TemporaryDirectory() as work:
                if new_key:
                    key = os.path.join(work, "new.key")
                    make_key(k["new_key"], key)
                chain = self.issue(key)
                if new_key:
                    install(read(key), k["key"], 0o600)
                install(chain, k["crt"], 0o644)
            renewed.append(kind)
            print(f"{kind}: a new certificate from the ACME CA, valid until {not_after(k['crt'])}"
                  + (" (a NEW KEY: no TLSA record names it)" if new_key else " (same key)"))
        if renewed:
            self.reload()
            print("renewed: " + ", ".join(renewed))
        else:
            print("nothing to renew: every certificate is the ACME CA's and has more than a third of its lifetime left")

    def roll(self, wait=True, only=None):
        """Serve the next key: its TLSA record out for publish_wait first, then the swap, then
        the old key's record replaced by a new next key's (only: these kinds)."""
        kinds = {kind: k for kind, k in self.c["kinds"].items() if only is None or kind in only}
        retired = {}
        for kind, k in kinds.items():
            upcoming = spki_of_key(k["next"])
            if upcoming not in self.published():
                self.update(add=[upcoming])
                self.mark_published(kind)
                print(f"{kind}: published the next key's TLSA record")
            left = self.published_at(kind) + self.c["publish_wait"] - time.time()
            if left > 0 and wait:
                print(f"{kind}: waiting {left:.0f} s: caches may hold the TLSA record without the "
                      f"next key until then (TTL {self.c['ttl']} s)", flush=True)
                time.sleep(left)
        for kind, k in kinds.items():
            chain = self.issue(k["next"])
            retired[kind] = spki_of_key(k["key"])
            install(read(k["next"]), k["key"], 0o600)
            install(chain, k["crt"], 0o644)
        self.reload()
        self.wait_served({kind: spki_of_key(k["key"]) for kind, k in kinds.items()})
        print("now serving the next key" + ("s" if len(kinds) > 1 else ""))
        for kind, k in kinds.items():
            make_key(k["new_key"], k["next"] + ".new")
            os.replace(k["next"] + ".new", k["next"])
            self.update(delete=[retired[kind]], add=[spki_of_key(k["next"])])
            self.mark_published(kind)
            print(f"{kind}: the old key's TLSA record replaced by a new next key's")

    def served(self, kind):
        """The key this server gives a client that asks for `kind` (SHA-256 of its SPKI)."""
        sigalgs = "rsa_pss_rsae_sha256:rsa_pkcs1_sha256" if kind == "rsa" else "ecdsa_secp256r1_sha256"
        try:
            done = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:443", "-servername",
                                   self.c["fqdn"], "-sigalgs", sigalgs], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        return spki_of_pem(done.stdout)

    def wait_served(self, keys, limit=30):
        """A reload returns before the server has read its new key: the old key's record may
        go only once every handshake gives the new one, or a cache that fetched the record
        set meanwhile refuses the old key still served."""
        end = time.time() + limit
        while True:
            waiting = [kind for kind, key in keys.items() if self.served(kind) != key]
            if not waiting:
                return
            if time.time() > end:
                raise Failed(f"the server still serves the old {', '.join(waiting)} key {limit} s after its "
                             "reload: the old key's TLSA record stays")
            time.sleep(0.2)

    def repair(self):
        """labgen up's: a served key that no TLSA record names (a renewal that took a new key)
        gives way to the next key, whose record is out; with no such key, the served key's
        record is published (DANE clients that cached the record set refuse until its TTL)."""
        published, stray = self.published(), []
        for kind, k in self.c["kinds"].items():
            if spki_of_key(k["key"]) in published:
                continue
            if spki_of_key(k["next"]) in published:
                stray.append(kind)
            else:
                self.update(add=[spki_of_key(k["key"])])
                print(f"{kind}: published the served key's TLSA record, which was missing "
                      f"(caches may hold the record without it for {self.c['ttl']} s)")
        if stray:
            print(f"{', '.join(stray)}: the served key has no TLSA record: moving to the next key")
            self.roll(only=stray)

    def status(self):
        published = self.published()
        for kind, k in self.c["kinds"].items():
            served, upcoming = spki_of_key(k["key"]), spki_of_key(k["next"])
            print(f"{kind}:")
            print(f"  current key {served[:16]}... TLSA {'published' if served in published else 'MISSING'}")
            print(f"  next key    {upcoming[:16]}... TLSA {'published' if upcoming in published else 'not yet published'}")
            print(f"  certificate for the current key: {spki_of_cert(k['crt']) == served}, "
                  f"valid until {not_after(k['crt'])}")
            others = published - {served, upcoming}
            if others:
                print(f"  TLSA records naming neither key: {len(others)}")


def main(argv):
    if not argv or argv[0] not in ("renew", "roll", "status", "seed"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(CONFIG, encoding="utf-8") as f:
        server = Server(json.load(f))
    with open(server.state("lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the timer and a person never run at once
        try:
            if argv[0] == "renew":
                server.renew(force="--force" in argv, new_key="--new-key" in argv)
                if "--repair" in argv:
                    server.repair()
            elif argv[0] == "roll":
                server.roll(wait="--no-wait" not in argv)
            elif argv[0] == "status":
                server.status()
            else:
                server.seed()
        except Failed as exc:
            print(f"labgen-certs: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"labgen-certs: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
