"""labgen command line: parse, call, and map LabgenError subclasses to exit codes."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .engine import Engine
from .errors import LabgenError, SpecError, UsageError
from .render import data_dir, render
from .spec import ENGINES
from .text import printable


def cmd_init(args: argparse.Namespace, file_name: str = "lab.yml", render_hint: str = "labgen render") -> int:
    target = Path(args.dir) / file_name
    if Path(args.dir).exists() and not Path(args.dir).is_dir():
        raise SpecError(f"{args.dir}: is a file, not a folder for {file_name}")
    if (target.exists() or target.is_symlink()) and not args.force:
        raise SpecError(f"{target}: already exists; use --force to overwrite it")
    if target.is_dir() or target.is_symlink():
        kind = file_name.replace(".yml", " file")
        raise SpecError(f"{target}: is a folder or a link, not a {kind}; not overwritten")
    try:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        target.write_text((data_dir("templates") / file_name).read_text(encoding="utf-8"),
                          encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{target}: cannot write it: {exc.strerror}") from None
    print(f"wrote {target}: edit it, then run '{render_hint} -c {target}'")
    return 0


def _base(args: argparse.Namespace) -> Path:
    """-o, else build/ beside the lab or class file, so the folder a command is typed in never
    decides which keys a lab gets."""
    return Path(args.output) if getattr(args, "output", None) else Path(args.config).parent / "build"


def build_folder(args: argparse.Namespace) -> Path:
    """The build folder of a lab; a student's lab lives in its class's build."""
    base = _base(args)
    if getattr(args, "student", None):
        from .classroom.rootzone import student_builds
        return student_builds(base / _class(args).name)
    return base


def _class(args: argparse.Namespace):
    from .classroom.spec import load_class
    return load_class(args.config)


def load_lab(args: argparse.Namespace):
    """The lab a command works on: the lab file's, or with --student that student's lab of the
    class file (under the class's lab root)."""
    from .labfile import lab_for
    return lab_for(args.config, getattr(args, "student", None), _base(args))


def cmd_render(args: argparse.Namespace) -> int:
    lab = load_lab(args)
    out = render(lab, build_folder(args))
    print(f"rendered lab {lab.name} into {out}\n")
    print((out / "SUMMARY.txt").read_text(encoding="utf-8"), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .check import check_build, release_root, report

    lab = load_lab(args)
    build = build_folder(args) / lab.name
    if args.render or not build.is_dir():
        build = render(lab, build_folder(args))
    root = release_root(lab, log=lambda msg: print(msg, file=sys.stderr))
    results = check_build(lab, build, root)
    print(f"checking {build} with the real tools of {lab.target.name}:")
    print(report(results))
    return 0 if all(r.ok for r in results) else 1


def _engine(args: argparse.Namespace, lab):
    return Engine(args.engine, lab.endpoint) if args.engine else Engine.of(lab)


def cmd_up(args: argparse.Namespace) -> int:
    from .exercises.session import end_all
    from .lifecycle import status, status_table, up

    lab = load_lab(args)
    engine = _engine(args, lab)
    up(lab, build_folder(args), engine, verbose=args.verbose)
    for ended in end_all(build_folder(args) / lab.name, "ended by labgen up"):
        print(f"exercise {ended} ended: labgen up brought the lab back to its rendered state")
    print(status_table(lab, status(lab, engine)))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from .lifecycle import count, down

    lab = load_lab(args)
    removed = down(lab.name, _engine(args, lab))
    parts = [count(len(names), kind.rstrip("s")) for kind, names in removed.items() if names]
    print(f"lab {lab.name} is down: removed {', '.join(parts) or 'nothing (it was not running)'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .lifecycle import status, status_table

    lab = load_lab(args)
    rows = status(lab, _engine(args, lab))
    print(status_table(lab, rows))
    return 0 if all(r.healthy for r in rows) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from . import verify

    from .lifecycle import require_up

    lab = load_lab(args)
    require_up(lab, Engine.of(lab), args.config)
    reports = [Path(p) for p in (args.json, args.html) if p]
    for path in reports + ([Path(args.junitxml)] if args.junitxml else []):
        if not path.parent.is_dir():
            raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    now = dt.datetime.now(dt.timezone.utc)
    code, outcomes = verify.run_checks(Path(args.config),
                                       Path(args.junitxml) if args.junitxml else None,
                                       student=args.student, lab=lab)
    if not outcomes:
        raise LabgenError(f"no check ran (pytest exit status {code})")
    report = verify.targets(outcomes)
    print(verify.scorecard(report))
    if args.json:
        Path(args.json).write_text(verify.as_json(lab, report, now), encoding="utf-8")
    if args.html:
        Path(args.html).write_text(verify.as_html(lab, report, now), encoding="utf-8")
    return 0 if verify.all_required_pass(report) else 1


def cmd_watch(args: argparse.Namespace) -> int:
    from . import watch
    from .lifecycle import require_up

    lab = load_lab(args)
    require_up(lab, Engine.of(lab), args.config)
    if not 1 <= args.seconds <= 86400:
        raise UsageError(f"--seconds {args.seconds}: give between 1 and 86400")
    if not 0.2 <= args.interval <= 60:
        raise UsageError(f"--interval {args.interval}: give between 0.2 and 60 seconds")
    for path in (p for p in (args.json, args.html) if p):
        if not Path(path).parent.is_dir():
            raise UsageError(f"cannot write {path}: folder {Path(path).parent} does not exist")
    timeline = watch.watch(lab, Engine.of(lab), args.seconds, args.interval)
    print(watch.summary(timeline))
    if args.json:
        Path(args.json).write_text(json.dumps(timeline.as_dict(), indent=1) + "\n", encoding="utf-8")
    if args.html:
        Path(args.html).write_text(watch.html(timeline), encoding="utf-8")
    return 0 if timeline.secure else 1


def cmd_exercise(args: argparse.Namespace) -> int:
    from .exercises import session

    if args.action == "list":
        lab = load_lab(args) if Path(args.config).exists() or args.config != "lab.yml" else None
        rows = session.listing(lab)
        print(session.as_json(rows) if args.json else session.markdown_table() if args.markdown
              else session.list_text(rows, lab), end="\n" if not args.json else "")
        return 0
    if getattr(args, "all", False):  # every student of the class file, one after the other
        if args.student:
            raise UsageError("give --student NAME or --all, not both")
        code = 0
        for student in _class(args).students:
            print(f"== {student.name}")
            code = max(code, cmd_exercise(argparse.Namespace(**{**vars(args), "all": False,
                                                                "student": student.name})))
        return code
    lab = load_lab(args)
    build = build_folder(args) / lab.name
    engine = Engine.of(lab)
    if args.action == "start":
        print(session.start(lab, args.config, build, engine, args.id))
    elif args.action == "hint":
        print(session.hint(lab, build, args.id))
    elif args.action == "check":
        code, text = session.check(lab, args.config, build, engine, args.id, args.student,
                                   Path(args.json) if args.json else None)
        print(text)
        return code
    elif args.action == "status":
        print(session.status(lab, build))
    else:
        print(session.solve(lab, args.config, build, engine, args.id))
    return 0


def cmd_class(args: argparse.Namespace) -> int:
    from .classroom.rootzone import render_class
    from .lifecycle import count
    from .classroom.spec import load_class

    if args.action == "init":
        return cmd_init(args, "class.yml", "labgen class render")
    klass = load_class(args.config)
    if args.action == "verify":
        return _class_verify(args, klass)
    if args.action == "handouts":
        from .classroom import handouts

        written = handouts.write(klass, _base(args) / klass.name, Path(args.dir))
        print(f"wrote {len(written)} handouts (Markdown and HTML) into {args.dir}")
        return 0
    if args.action == "ds":
        from .classroom.lifecycle import ds_taken_text, take_in_ds

        taken, changed = take_in_ds(klass, _base(args), Engine("podman"), args.student, args.ds)
        print(ds_taken_text(klass.student(args.student), taken, changed))
        return 0
    if args.action == "cds":
        from .classroom.lifecycle import follow_cds

        changes = follow_cds(klass, _base(args), Engine("podman"))
        print("\n".join(changes) if changes else "no student's CDS asks for another DS")
        return 0
    if args.action == "serve":
        from .classroom import service

        service.serve(Path(args.config).resolve(), _base(args).resolve(), Engine("podman"),
                      foreground=not args.background)
        return 0
    if args.action in ("up", "down", "status"):
        from .classroom import lifecycle as class_lifecycle

        engine = Engine(args.engine or "podman")
        out = _base(args)
        if args.action == "up":
            class_lifecycle.up(klass, out, engine)
            return 0
        if args.action == "down":
            removed = class_lifecycle.down(klass, out, engine)
            parts = [count(len(names), kind.rstrip("s")) for kind, names in removed.items() if names]
            print(f"class {klass.name} is down: removed {', '.join(parts) or 'nothing (it was not running)'}")
            return 0
        root, rows = class_lifecycle.status(klass, engine, out / klass.name)
        if getattr(args, "json", False):
            print(class_lifecycle.status_json(klass, out, root, rows, engine), end="")
        else:
            print(class_lifecycle.status_table(klass, root, rows))
        return 0 if class_lifecycle.roots_ok(root) and all(r.ok for r in rows) else 1
    folder = render_class(klass, _base(args))
    print(f"rendered class {klass.name} into {folder}: the lab root {klass.root} and "
          f"{len(klass.students)} student labs")
    anchor = (folder / "root" / "dns" / f"{klass.root}.ds").read_text(encoding="utf-8").strip()
    print(f"trust anchor of the class: {anchor}")
    for student in klass.students:
        secure = "with its DS" if klass.ds == "root" else "insecure until its DS is taken in"
        print(f"  {student.name:<16} {student.lab.domain:<28} {student.lab.ipv4_network}  "
              f"{student.lab.ipv6_network}  delegated {secure}")
    return 0


def _class_verify(args: argparse.Namespace, klass) -> int:
    import time

    from .classroom import scoreboard

    out = _base(args)
    if args.html and not Path(args.html).parent.is_dir():
        raise UsageError(f"cannot write {args.html}: folder {Path(args.html).parent} does not exist")
    while True:
        rows = scoreboard.collect(klass, Path(args.config), out)
        now = dt.datetime.now(dt.timezone.utc)
        if args.watch:
            print("\033[H\033[2J", end="")  # clear the terminal: the board in place
        print(scoreboard.table(klass, rows))
        if args.html:
            Path(args.html).write_text(scoreboard.html(klass, rows, now, args.watch), encoding="utf-8")
        if not args.watch:
            return 0 if all(r.passed for r in rows) else 1
        print(f"(checked {now:%H:%M:%S} UTC; again in {args.watch} s; Ctrl-C stops)")
        time.sleep(args.watch)


def _lab_arguments(sub: argparse.ArgumentParser, output: bool = True, engine: bool = False) -> None:
    sub.add_argument("-c", "--config", default="lab.yml", help="lab file (default: lab.yml)")
    sub.add_argument("--student", metavar="NAME", default=None,
                     help="work on this student's lab; -c is then the class file")
    if output:
        sub.add_argument("-o", "--output", default=None,
                         help="build folder (default: build/ beside the lab file)")
    if engine:
        sub.add_argument("--engine", choices=ENGINES, default=None,
                         help="container engine (default: the lab file's engine, else podman)")


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

    upp = sub.add_parser("up", help="bring the lab up in containers and deploy it with Ansible",
                         description=(
                             "Render when the build is missing or stale, build or reuse the lab "
                             "image, create the lab's dual-stack network and one container per "
                             "host (systemd as PID 1), then run the Ansible playbook that copies "
                             "each host's rendered tree, validates it and starts its service. "
                             "Running it again changes nothing; after a crash it repairs the lab. "
                             "Exit status: 0 up, 2 bad lab file, 3 render, 4 image, 5 network or "
                             "containers, 6 deploy failed."))
    _lab_arguments(upp, engine=True)
    upp.add_argument("-v", "--verbose", action="store_true", help="show Ansible's own output")
    upp.set_defaults(func=cmd_up)

    dwn = sub.add_parser("down", help="remove the lab's containers, network and volumes",
                         description="Remove every container, network and volume labelled with "
                                     "this lab's name, and nothing else. The build folder stays.")
    _lab_arguments(dwn, output=False, engine=True)
    dwn.set_defaults(func=cmd_down)

    sts = sub.add_parser("status", help="show each host, its addresses and its service",
                         description="Show each host's container, IPv4 and IPv6 address and the "
                                     "state of its service. Exit status 0 when every host is "
                                     "healthy, 1 otherwise.")
    _lab_arguments(sts, output=False, engine=True)
    sts.set_defaults(func=cmd_status)

    ver = sub.add_parser("verify", help="check every open standard on the live lab",
                         description="Run labgen's checks (testinfra) from labgen's probe host through the "
                                     "lab resolver, for each web server over IPv4 and IPv6, and "
                                     "print a scorecard. Exit 0 when every required check passes, "
                                     "1 when one fails, 2 on bad usage (the lab not up).")
    _lab_arguments(ver)
    ver.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ver.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    ver.add_argument("--junitxml", metavar="FILE", help="also write pytest's JUnit XML")
    ver.set_defaults(func=cmd_verify)

    wat = sub.add_parser("watch", help="a validating probe: record every answer that is not secure",
                         description="From the lab's probe, through the lab's validating resolver, ask "
                                     "the lab's names (SOA, DNSKEY, each web server's A, AAAA and TLSA, "
                                     "a name that must not exist) every interval, and record every "
                                     "answer that is not secure with its time and Extended DNS Error. "
                                     "Exit 0 when every answer was secure, 1 otherwise.")
    _lab_arguments(wat)
    wat.add_argument("--seconds", type=int, default=60, help="how long to watch (default: 60)")
    wat.add_argument("--interval", type=float, default=1.0, help="seconds between rounds (default: 1)")
    wat.add_argument("--json", metavar="FILE", help="also write the timeline as JSON")
    wat.add_argument("--html", metavar="FILE", help="also write the timeline as a self-contained page")
    wat.set_defaults(func=cmd_watch)

    cls = sub.add_parser("class", help="a class of student labs under one signed lab root",
                         description="A class file describes many student labs under one signed "
                                     "lab root zone; each student's lab is an ordinary lab.")
    class_actions = cls.add_subparsers(dest="action", required=True, metavar="ACTION")
    cinit = class_actions.add_parser("init", help="write a commented starter class.yml")
    cinit.add_argument("dir", nargs="?", default=".", help="folder for class.yml (default: .)")
    cinit.add_argument("--force", action="store_true", help="overwrite an existing class.yml")
    cinit.set_defaults(func=cmd_class)
    crender = class_actions.add_parser(
        "render", help="render every student's lab and the signed lab root",
        description="Validate the class file, render each student's lab (as labgen render does) "
                    "into DIR/<class>/students/, then the lab root zone with one delegation per "
                    "student (NS, glue, DS) into DIR/<class>/root/, signed; its DS is the class's "
                    "one trust anchor.")
    crender.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
    crender.add_argument("-o", "--output", default=None,
                         help="build folder (default: build/ beside the class file)")
    crender.set_defaults(func=cmd_class)
    cver = class_actions.add_parser("verify", help="every student's checks: the scoreboard",
                                    description="Run labgen verify for every student (two at a time) "
                                                "and print one row per student and standard; exit 0 "
                                                "when every student passes every required check.")
    cver.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
    cver.add_argument("--html", metavar="FILE", help="also write the scoreboard as one HTML page")
    cver.add_argument("--watch", metavar="N", type=int, default=None,
                      help="check again every N seconds (the page reloads itself too)")
    cver.set_defaults(func=cmd_class)
    cds = class_actions.add_parser(
        "ds", help="ds: student: take a student's DS into the lab root",
        description="Put a student's DS set into the lab root and redeploy it: the DS given with --ds "
                    "(as the student sends them), or one made from each key-signing DNSKEY of the zone. "
                    "A DS that matches no DNSKEY the student's name server publishes is refused.")
    cds.add_argument("student", help="the student's name (s01, ...)")
    cds.add_argument("--ds", action="append", metavar="'TAG ALG TYPE DIGEST'",
                     help="a DS to take in; give --ds again for more (up to 4: during a KSK roll, "
                          "the old and the new). The set given replaces the one before.")
    cds.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
    cds.set_defaults(func=cmd_class)
    ccds = class_actions.add_parser(
        "cds", help="the lab root follows the students' CDS now (RFC 7344)",
        description="For each student whose name server publishes CDS, take in the DS set the CDS "
                    "asks for if it validates through the DS the lab root publishes now (BIND's "
                    "dnssec-cds checks it), and redeploy the root once. The grading service does this "
                    "every parent propagation delay when BIND signs the students' zones.")
    ccds.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
    ccds.set_defaults(func=cmd_class)
    chand = class_actions.add_parser("handouts", help="one page per student (Markdown and HTML)",
                                     description="Write DIR/<student>.md and .html: the student's zone, "
                                                 "addresses and hosts, how to enter the workstation, "
                                                 "commands to try and the assigned exercises.")
    chand.add_argument("dir", help="folder for the handouts")
    chand.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
    chand.set_defaults(func=cmd_class)
    cserve = class_actions.add_parser(
        "serve", help="run the class's grading service in the foreground (class up starts it)",
        description="The service the students' lab command asks (hints, checks, status, DS) and the "
                    "trainer's live board; it runs until Ctrl-C or SIGTERM. class up starts it in the "
                    "background unless it runs already (under systemd, for example).")
    cserve.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
    cserve.add_argument("-o", "--output", default=None, help="build folder (default: build/ beside the class file)")
    cserve.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    cserve.set_defaults(func=cmd_class)
    for name, text in (("up", "bring every student's lab and the lab root up (converges like labgen up)"),
                       ("down", "remove every container and network of the class, and nothing else"),
                       ("status", "one line per student; exit 0 when every lab and the root are healthy")):
        act = class_actions.add_parser(name, help=text, description=text)
        act.add_argument("-c", "--config", default="class.yml", help="class file (default: class.yml)")
        act.add_argument("-o", "--output", default=None,
                         help="build folder (default: build/ beside the class file)")
        if name == "status":
            act.add_argument("--json", action="store_true",
                             help="as JSON, with each student's access (ssh host, port, user, key file)")
        act.add_argument("--engine", choices=ENGINES, default=None, help="container engine (podman)")
        act.set_defaults(func=cmd_class)

    exe = sub.add_parser("exercise", help="break-and-fix exercises graded by the checks",
                         description="Break the live lab the way real servers break, let a student "
                                     "repair it from the inside, and grade the repair with labgen's "
                                     "checks. State lives in the build folder (exercises.json).")
    actions = exe.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text, id_arg in (
            ("list", "the catalogue; with -c, which exercises apply to that lab", None),
            ("start", "inject the exercise's fault into the live lab and print the task", "required"),
            ("hint", "the next hint (remembered: check shows fixes once all were seen)", "required"),
            ("check", "grade the exercise (all active ones without ID): exit 0 solved, 1 not yet",
             "optional"),
            ("status", "active and ended exercises of this lab", None),
            ("solve", "trainer: put back what the fault changed and print the reference fix", "required")):
        act = actions.add_parser(name, help=text, description=text)
        if id_arg:
            act.add_argument("id", nargs=None if id_arg == "required" else "?", default=None,
                             help="exercise id (labgen exercise list)")
        _lab_arguments(act)
        if name != "list":
            act.add_argument("--all", action="store_true",
                             help="every student of the class file given with -c")
        if name == "check":
            act.add_argument("--json", metavar="PATH", default=None,
                             help="also write the checks that ran as labgen verify --json does")
        if name == "list":
            act.add_argument("--json", action="store_true", help="as JSON")
            act.add_argument("--markdown", action="store_true", help="as README's Markdown table")
        act.set_defaults(func=cmd_exercise)
    return p


ERROR_LIMIT = 4000  # characters of an error message: a failed deploy names up to four hosts
INTERRUPTED = "labgen: interrupted; running the same command again finishes the job"


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    # Progress lines and errors keep their order when the output goes to a file or a pipe.
    sys.stdout.reconfigure(line_buffering=True)
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: signals stay the caller's
        previous = None
    try:
        args = parser().parse_args(argv)
        return args.func(args)
    except LabgenError as exc:
        where = "" if exc.phase in ("labgen", "lab file") else f"{exc.phase} failed: "
        # Some messages carry a host's words (a deploy's module answer, a container's output):
        # escaped here, once for every error, so none can rewrite the reader's terminal.
        print(f"labgen: error: {where}{printable(str(exc), limit=ERROR_LIMIT)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (labgen ... | head): nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter's final flush
        return 141
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
