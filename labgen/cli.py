"""labgen command line: parse, call, and map LabgenError subclasses to exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import LabgenError, SpecError
from .render import data_dir, render
from .spec import load


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir) / "lab.yml"
    if target.exists() and not args.force:
        raise SpecError(f"{target}: already exists; use --force to overwrite it")
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    target.write_text((data_dir("templates") / "lab.yml").read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {target}: edit it, then run 'labgen render -c {target}'")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    lab = load(args.config)
    out = render(lab, Path(args.output))
    print(f"rendered lab {lab.name} into {out}\n")
    print((out / "SUMMARY.txt").read_text(encoding="utf-8"), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .check import check_build, release_root, report

    lab = load(args.config)
    build = Path(args.output) / lab.name
    if args.render or not build.is_dir():
        build = render(lab, Path(args.output))
    root = release_root(lab, log=lambda msg: print(msg, file=sys.stderr))
    results = check_build(lab, build, root)
    print(f"checking {build} with the real tools of {lab.target.name}:")
    print(report(results))
    return 0 if all(r.ok for r in results) else 1


def _lab_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-c", "--config", default="lab.yml", help="lab file (default: lab.yml)")
    sub.add_argument("-o", "--output", default="build", help="build folder (default: build)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labgen", description=(
        "Turn one lab file into a secure web-server lab: hardened nginx and Apache configs, "
        "a lab CA, a DNSSEC-signed zone with TLSA/CAA/AAAA records and a validating resolver."))
    p.add_argument("--version", action="version", version=f"labgen {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="write a commented starter lab.yml",
                          description="Write a commented starter lab.yml whose every value is the default.")
    init.add_argument("dir", nargs="?", default=".", help="folder for lab.yml (default: .)")
    init.add_argument("--force", action="store_true", help="overwrite an existing lab.yml")
    init.set_defaults(func=cmd_init)

    rend = sub.add_parser("render", help="render configs, certificates and the signed zone",
                          description=(
                              "Validate the lab file and render build/<lab>/: one file tree per host "
                              "(nginx, Apache, BIND, Unbound configs, certificates, signed zone), "
                              "pki/ (keys are kept between renders), dns/, inventory.yml and "
                              "SUMMARY.txt. A failed render leaves the previous build untouched."))
    _lab_arguments(rend)
    rend.set_defaults(func=cmd_render)

    chk = sub.add_parser("check", help="check a rendered build offline with the real servers' checkers",
                         description=(
                             "Run nginx -t, apache2ctl configtest, named-checkconf -z and "
                             "unbound-checkconf on the rendered trees, in a root file system of the "
                             "target's Debian release (made with debootstrap and cached); validate "
                             "the signed zone with ldns-verify-zone against labgen's DS; verify each "
                             "certificate with openssl and match it with its TLSA record. Needs root. "
                             "Exit status 0 when all pass, 1 when one fails."))
    _lab_arguments(chk)
    chk.add_argument("--render", action="store_true", help="render first, even if a build exists")
    chk.set_defaults(func=cmd_check)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except LabgenError as exc:
        print(f"labgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("labgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
