#!/usr/bin/python
"""Bring a host to its labgen manifest in one module call: compare; or unpack, validate, roll
back on refusal, and enable, start or reload the service."""

from __future__ import annotations

DOCUMENTATION = r"""
module: labgen_tree
short_description: Compare a host with its labgen manifest, or install what differs, validated
description:
  - Without O(archive), reads each file the manifest names and compares its SHA-256, mode and
    owner (root:root) with the manifest, and changes no file. When nothing differs it makes
    sure the service is enabled and running, so an idempotent run is one call per host.
  - With O(archive) (the files that differ, sent by the action plugin), keeps the current version of
    every file it replaces in memory, unpacks the archive over /, and runs the server's own
    checker. When the checker refuses, every file goes back as it was and the module fails
    without touching the service. Otherwise it refreshes the CA trust store when the lab CA
    changed, enables the service and starts it, or reloads (or restarts) it when it runs.
  - The archive is removed in every case (and a folder left by a deploy that was cut off, by
    the next comparison). File contents never appear in the arguments or the results.
  - The action plugin of the same name (playbooks/action_plugins) runs on the controller; it reads O(manifest),
    calls the module to compare (one call; with nothing to do, the only one), packs what
    differs from O(tree) into one tar archive (only paths its manifest names), streams it into
    a private folder it names (one command reading its standard input), and calls the module
    again to install it.
options:
  tree:
    description: The host's rendered tree on the controller (build/<lab>/hosts/<host>); read by
      the action plugin.
    type: path
  manifest:
    description: The host's manifest on the controller (build/<lab>/manifests/<host>.json); the
      action plugin reads it and passes O(files) and O(dirs).
    type: path
  files:
    description: Absolute path -> {mode, sha256}, from the manifest.
    type: dict
  dirs:
    description: Absolute path -> mode. Missing folders are listed; an existing folder is listed
      only when the manifest makes it private (0700) and its mode differs.
    type: dict
  archive:
    description: A tar archive on the host with the files that differ (paths relative to /),
      inside a private folder ~/.labgen-deploy-* the action plugin made; the module removes
      that folder in every case.
    type: path
  validate:
    description: The server's config checker, run after unpacking. Empty for none.
    type: str
    default: ""
  service:
    description: The systemd units to enable and run, separated by spaces. Empty for none.
    type: str
    default: ""
  change:
    description: What the running service gets when files changed.
    type: str
    choices: [reload, restart]
    default: reload
  restart:
    description: Restart the running service even when no file changed.
    type: bool
    default: false
  announce:
    description: Send a gratuitous ARP and an unsolicited neighbour advertisement for each
      address, so that the other hosts forget
      the hardware address of a container that was restarted (labgen up sets it for its lab
      containers; a real server does not need it).
    type: bool
    default: false
  folders:
    description:
      - The include folders the server reads (folder -> entry name -> how the pristine image
        has it, as {link, target}, {sha256} or {dir}). An entry of such a folder that is not in
        the manifest, not in the image's copy of the folder and not in O(enable) is moved aside
        into O(backup)/<UTC time>/<its path>, as is an image entry that differs from the image's
        (a link the image had is then made again). The service is validated and reloaded as
        after a file change; when the checker refuses, everything moved goes back.
      - Empty (the default, and on servers labgen did not create) sweeps nothing.
    type: dict
    default: {}
  enable:
    description: Names enabled in a Debian *-enabled folder (folder -> names), with a2enmod's
      rules - in mods-enabled NAME.load and NAME.conf and the modules its .load file depends on,
      elsewhere NAME.conf, each a link to ../*-available/. A missing link whose target exists
      (after the archive is unpacked) is made before the checker runs; a module enabled so
      restarts the service (a reload does not load it).
    type: dict
    default: {}
  disable:
    description: Names disabled in a Debian *-enabled folder (folder -> names; their links are
      removed before the checker runs, like a2dissite). Both are undone when the checker refuses.
    type: dict
    default: {}
  commands:
    description: Commands the host must have on its PATH (a student's exercises use them); the
      module fails naming those missing.
    type: list
    elements: str
    default: []
  password:
    description: root's password as a crypt hash, set with chpasswd -e when it differs (the
      hash goes on its standard input, never in an argument or a log).
    type: str
  backup:
    description: Where moved entries go, in a folder named by the UTC time of the run.
    type: str
    default: /var/backups/labgen
"""

RETURN = r"""
files:
  description: Paths whose content, mode or owner differ, or that are missing.
  type: list
  returned: always
dirs:
  description: Folders to create or to make private.
  type: list
  returned: always
service:
  description: What was done to the service (enabled, started, reloaded, restarted) or "".
  type: str
  returned: always
moved:
  description: Entries of the include folders moved aside, each {path, to}.
  type: list
  returned: always
"""

import fcntl
import hashlib
import os
import shutil
import socket
import stat
import struct
import time

from ansible.module_utils.basic import AnsibleModule

CA_FOLDER = "/usr/local/share/ca-certificates/"


def differs(path, want):
    try:
        info = os.stat(path)
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return True
    return (digest != want["sha256"] or f"{stat.S_IMODE(info.st_mode):04o}" != want["mode"]
            or info.st_uid != 0 or info.st_gid != 0)


def compare(params):
    files = [p for p, want in sorted(params["files"].items()) if differs(p, want)]
    dirs = []
    for path, mode in sorted(params["dirs"].items()):
        if not os.path.isdir(path):
            dirs.append(path)
        # Private means no access for group or others; a set-group-ID bit inherited from the
        # parent (/etc/bind has one) grants nothing, and tar keeps it.
        elif mode == "0700" and os.stat(path).st_mode & 0o777 != 0o700:
            dirs.append(path)
        # And an open folder that became private (named, as user bind, reads zones there).
        elif mode != "0700" and os.stat(path).st_mode & 0o005 != int(mode, 8) & 0o005:
            dirs.append(path)
    return files, dirs


def announce():
    """A gratuitous ARP and an unsolicited neighbour advertisement for every address: a
    restarted container has a new hardware address, and the other hosts would send to the old
    one until their neighbour entry expires."""
    for name in os.listdir("/sys/class/net"):
        if name == "lo":
            continue
        try:
            with open(f"/sys/class/net/{name}/address") as handle:
                mac = bytes.fromhex(handle.read().strip().replace(":", ""))
            index = socket.if_nametoindex(name)
        except (OSError, ValueError):
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # SIOCGIFADDR
                ip = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))[20:24]
            frame = (b"\xff" * 6 + mac + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
                     + mac + ip + b"\x00" * 6 + ip)
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
                raw.bind((name, 0))
                raw.send(frame)
        except OSError:
            pass
        try:
            with open("/proc/net/if_inet6") as handle:
                addresses = [bytes.fromhex(line.split()[0]) for line in handle
                             if line.split()[5] == name]
            with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                for address in addresses:  # type 136, override flag, target, its MAC (option 2)
                    packet = (struct.pack("!BBHI", 136, 0, 0, 0x20000000) + address
                              + b"\x02\x01" + mac)
                    sock.sendto(packet, ("ff02::1", 0, 0, index))
        except (OSError, ValueError, IndexError):
            pass


def keep(paths):
    """The current version of each file, in memory only: (content, mode, uid, gid) or None."""
    saved = {}
    for path in paths:
        try:
            info = os.lstat(path)
            with open(path, "rb") as handle:
                saved[path] = (handle.read(), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
        except OSError:
            saved[path] = None
    return saved


def put_back(saved):
    for path, old in saved.items():
        try:
            os.unlink(path)
        except OSError:
            pass
        if old is None:
            continue
        content, mode, uid, gid = old
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def _suffixes(folder):
    return (".load", ".conf") if folder.endswith("/mods-enabled") else (".conf",)


def _enabled(folder, names):
    """What enabling names in a Debian *-enabled folder owns: entry -> {link: target}."""
    available = folder[: -len("enabled")] + "available"
    relative = "../" + os.path.basename(available) + "/"
    owned, todo, seen = {}, list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for suffix in _suffixes(folder):  # the target may arrive with this deploy (a rendered site)
            owned[name + suffix] = {"link": relative + name + suffix}
        if folder.endswith("/mods-enabled"):  # a2enmod also enables what a module depends on
            try:
                with open(os.path.join(available, name + ".load"), encoding="utf-8") as handle:
                    for line in handle:
                        if line.lower().startswith("# depends:"):
                            todo += line.split(":", 1)[1].split()
            except OSError:
                pass
    return owned


def _matches(path, want):
    if "link" in want:
        return os.path.islink(path) and os.readlink(path) == want["link"]
    if os.path.islink(path):
        return False
    if want.get("dir"):
        return os.path.isdir(path)
    if "sha256" in want:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest() == want["sha256"]
    return False


def strays(params):
    """(path, link to make again or None) of every entry of the include folders labgen does not
    own: not in the manifest, not as the image has it, not enabled by O(enable)."""
    owned_paths = set(params["files"]) | set(params["dirs"])
    found = []
    for folder, image in sorted(params["folders"].items()):
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        wanted = {**(image or {}), **_enabled(folder, params["enable"].get(folder) or [])}
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if path in owned_paths:
                continue  # the manifest's: compared and installed like every rendered file
            want = wanted.get(name)
            if want is not None and _matches(path, want):
                continue
            found.append((path, want.get("link") if want else None))
    return found


def relinks(params):
    """What the *-enabled folders need: [(path, target)] for each enabled name's link that is
    missing while its target exists (a wrong one is a stray), [(path, None)] for each disabled
    name's link that is there."""
    todo = []
    for folder, names in sorted(params["enable"].items()):
        for entry, want in sorted(_enabled(folder, names or []).items()):
            path = os.path.join(folder, entry)
            if not os.path.lexists(path) and os.path.exists(os.path.join(folder, want["link"])):
                todo.append((path, want["link"]))
    for folder, names in sorted(params["disable"].items()):
        for name in names or []:
            for suffix in _suffixes(folder):
                if os.path.islink(path := os.path.join(folder, name + suffix)):
                    todo.append((path, None))
    return todo


def relink(todo):
    """Make or remove each link; returns [(path, the link it was or None)] for unlink_back."""
    done = []
    for path, target in todo:
        before = os.readlink(path) if os.path.islink(path) else None
        if target is None:
            os.unlink(path)
        else:
            os.symlink(target, path)
        done.append((path, before))
    return done


def unlink_back(done):
    for path, before in reversed(done):
        if os.path.lexists(path):
            os.unlink(path)
        if before:
            os.symlink(before, path)


def sweep(found, backup):
    """Move each stray into backup/<UTC time>/<its path> (never deleted), and make a link the
    image or O(enable) has there again. Returns [{path, to, link}], for put_aside_back."""
    if not found:
        return []
    if os.path.islink(backup):  # a link would send what is moved elsewhere (even back in)
        os.unlink(backup)
    root = os.path.join(backup, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(root), 0o700)  # the moved files may hold secrets
    moved = []
    for path, link in found:
        dest = root + path
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        n = 0
        while os.path.lexists(dest if not n else f"{dest}.{n}"):
            n += 1
        dest = dest if not n else f"{dest}.{n}"
        shutil.move(path, dest)
        if link:
            os.symlink(link, path)
        moved.append({"path": path, "to": dest, "link": link or ""})
    return moved


def put_aside_back(moved):
    for entry in reversed(moved):
        if entry["link"] and os.path.islink(entry["path"]):
            os.unlink(entry["path"])
        shutil.move(entry["to"], entry["path"])


def validate_or_restore(module, saved, moved, linked, files, dirs):
    """Run the server's checker; when it refuses, put back the files, what was moved and the
    links as they were."""
    params = module.params
    if not params["validate"]:
        return
    # Through the shell: a kind's checker may be a preparation and the check ("seed && check");
    # split into arguments, "&&" would only be one more argument of the first command.
    rc, out, err = module.run_command(["/bin/sh", "-c", params["validate"]])
    if rc == 0:
        return
    put_back(saved)
    put_aside_back(moved)
    unlink_back(linked)
    what = "rendered config" if files or dirs else "config without the files labgen does not own"
    module.fail_json(
        msg=f"'{params['validate']}' refused the {what}, so nothing was reloaded and the previous "
            f"files are back in place: {' '.join((err or out).split())}",
        files=files, dirs=dirs, moved=[m["path"] for m in moved])


def systemctl(module, *args):
    return module.run_command(["systemctl", *args])


def ensure_service(module, names, files_changed, units_changed=False):
    """Enable and run each unit (names: space-separated); reload or restart one that already
    ran (units_changed: systemd rereads its unit files first). Says what was done."""
    if units_changed and not module.check_mode:
        systemctl(module, "daemon-reload")
    return "; ".join(f"{name} {done}" if len(names.split()) > 1 else done
                     for name in names.split() if (done := _ensure_one(module, name, files_changed)))


def _ensure_one(module, name, files_changed):
    if name.endswith(".socket"):
        return _ensure_socket(module, name, files_changed)
    done = []
    if systemctl(module, "is-enabled", "--quiet", name)[0] != 0:
        if not module.check_mode:
            rc, _, err = systemctl(module, "enable", "--quiet", name)
            if rc != 0:
                module.fail_json(msg=f"systemctl enable {name} failed: {err.strip()}")
        done.append("enabled")
    if systemctl(module, "is-active", "--quiet", name)[0] != 0:
        action = "start"
    elif module.params["restart"] or (files_changed and (module.params["change"] == "restart"
                                                         or name.endswith(".timer"))):
        action = "restart"
    elif files_changed:
        action = "reload"
    else:
        return ", ".join(done)
    if not module.check_mode:
        rc, out, err = systemctl(module, action, name)
        if rc != 0:
            status = systemctl(module, "status", "--no-pager", "--lines=5", name)[1]
            module.fail_json(msg=f"systemctl {action} {name} failed: {(err or out).strip()}",
                             stderr=status)
    done.append({"start": "started", "reload": "reloaded", "restart": "restarted"}[action])
    return ", ".join(done)


def _ensure_socket(module, name, files_changed):
    """A socket-activated unit (ssh.socket): enabled and listening; its service starts on the
    first connection, so an idle host runs nothing. Changed files reload the service only
    where it already runs (a socket has no reload of its own)."""
    done = []
    for check, action, word in (("is-enabled", "enable", "enabled"), ("is-active", "start", "started")):
        if systemctl(module, check, "--quiet", name)[0] != 0:
            if not module.check_mode:
                rc, _, err = systemctl(module, action, "--quiet", name)
                if rc != 0:
                    module.fail_json(msg=f"systemctl {action} {name} failed: {err.strip()}")
            done.append(word)
    service = name.removesuffix(".socket") + ".service"
    if files_changed and systemctl(module, "is-active", "--quiet", service)[0] == 0:
        if not module.check_mode:
            systemctl(module, "reload-or-restart", service)
        done.append("reloaded")
    return ", ".join(done)


def apply(module, files, dirs, found):
    params = module.params
    saved = keep(files)
    moved, linked = [], []
    try:
        rc, out, err = module.run_command(["tar", "-C", "/", "--numeric-owner", "-xpf",
                                           params["archive"]])
        if rc != 0:
            put_back(saved)
            module.fail_json(msg=f"unpacking the archive failed: {err.strip()}", files=files,
                             dirs=dirs)
        moved = sweep(found, params["backup"])
        linked = relink(relinks(params))
        validate_or_restore(module, saved, moved, linked, files, dirs)
    finally:
        stage = os.path.dirname(params["archive"])
        if os.path.basename(stage).startswith(".labgen-deploy-"):
            shutil.rmtree(stage, ignore_errors=True)
        else:
            try:
                os.unlink(params["archive"])
            except OSError:
                pass
    if any(path.startswith(CA_FOLDER) for path in files):
        rc, out, err = module.run_command(["update-ca-certificates"])
        if rc != 0:
            module.fail_json(msg=f"update-ca-certificates failed: {err.strip()}")
    return moved, linked


def tidy(module, found, todo):
    """No rendered file differs, but the include folders hold entries labgen does not own or
    miss its links: move them aside, make the links, let the checker judge (all undone on
    refusal)."""
    moved = sweep(found, module.params["backup"])
    linked = relink(todo)
    validate_or_restore(module, {}, moved, linked, [], [])
    return moved, linked


def new_module(linked):
    """A module enabled needs a restart: a reload does not load it."""
    return any(os.path.dirname(path).endswith("/mods-enabled") and os.path.islink(path)
               for path, _ in linked)


def missing_commands(module):
    path = os.environ.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    lacking = [name for name in module.params["commands"] if not shutil.which(name, path=path)]
    if lacking:
        module.fail_json(msg=f"this host lacks {', '.join(lacking)}, which the lab's exercises use "
                             f"(install them, or rebuild the lab image)")


def set_password(module):
    """root's password hash as the inventory gives it; chpasswd reads it on standard input."""
    wanted = module.params["password"]
    if not wanted:
        return False
    with open("/etc/shadow", encoding="utf-8") as handle:
        current = next((line.split(":")[1] for line in handle if line.startswith("root:")), None)
    if current == wanted:
        return False
    if not module.check_mode:
        rc, _, err = module.run_command(["chpasswd", "-e"], data=f"root:{wanted}")
        if rc != 0:
            module.fail_json(msg=f"chpasswd could not set root's password: {err.strip()}")
    return True


def _shown(moved):
    return [{"path": m["path"], "to": m["to"]} for m in moved]


def main():
    module = AnsibleModule(
        argument_spec={"tree": {"type": "path"}, "manifest": {"type": "path"},
                       "files": {"type": "dict", "required": True},
                       "dirs": {"type": "dict", "required": True},
                       "archive": {"type": "path"},
                       "validate": {"type": "str", "default": ""},
                       "service": {"type": "str", "default": ""},
                       "change": {"type": "str", "default": "reload",
                                  "choices": ["reload", "restart"]},
                       "restart": {"type": "bool", "default": False},
                       "announce": {"type": "bool", "default": False},
                       "folders": {"type": "dict", "default": {}},
                       "enable": {"type": "dict", "default": {}},
                       "disable": {"type": "dict", "default": {}},
                       "commands": {"type": "list", "elements": "str", "default": []},
                       "password": {"type": "str", "no_log": True},
                       "backup": {"type": "str", "default": "/var/backups/labgen"}},
        supports_check_mode=True)
    # One deploy at a time on a host: a deploy cut off on this machine (Ctrl-C) does not stop the
    # module already running on the host, and the next deploy must not overlap it.
    lock = os.open(os.path.join("/run/lock" if os.path.isdir("/run/lock") else "/tmp",
                                "labgen-tree.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    files, dirs = compare(module.params)
    if module.params["archive"] is None:
        missing_commands(module)
        if module.params["announce"] and not module.check_mode:
            announce()
        if not module.check_mode:  # what a deploy cut off between the two calls left behind
            home = os.path.expanduser("~")
            for name in os.listdir(home):
                if name.startswith(".labgen-deploy-"):
                    shutil.rmtree(os.path.join(home, name), ignore_errors=True)
        if files or dirs:  # the action plugin sends them as an archive and calls again with it
            module.exit_json(changed=False, files=files, dirs=dirs, service="", moved=[])
        found, todo = strays(module.params), relinks(module.params)
        if (found or todo) and module.check_mode:
            module.exit_json(changed=True, files=[], dirs=[], service="",
                             moved=[{"path": path, "to": ""} for path, _ in found])
        moved, linked = tidy(module, found, todo) if found or todo else ([], [])
    else:
        moved, linked = ([], []) if module.check_mode else apply(module, files, dirs,
                                                                 strays(module.params))
    module.params["restart"] |= new_module(linked)
    done = ensure_service(module, module.params["service"], bool(files or dirs or moved or linked),
                          any(path.startswith("/etc/systemd/") for path in files))
    password = set_password(module)
    module.exit_json(changed=bool(files or dirs or done or moved or linked or password), files=files,
                     dirs=dirs, service=done, moved=_shown(moved))


if __name__ == "__main__":
    main()
