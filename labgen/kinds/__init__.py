"""What each kind of lab host is, one record per kind: its Debian packages, its systemd unit, the
server's own test of its config, how a changed config is taken in (reload or restart), the
include folders labgen owns, and the binaries the grader calls on it. The rest of labgen reads
these records (the image, the render, the inventory the playbook reads, the config sandbox, the
lifecycle and the checks), so a new kind of host is one module here and its templates (README:
"Host kinds").

A host's kind is its web server's software, else its role (spec.Host). The modules may import
what they render from (hostpaths, dnszone, signing, parentzone), never render itself.
"""

from __future__ import annotations

from ..spec import SOFTWARE
from . import apache, bind, client, nginx, pebble, unbound
from .kind import Kind

# In the order the image disables their units (part of the image's cache key).
KINDS: dict[str, Kind] = {k.name: k for k in (nginx.KIND, apache.KIND, bind.AUTHDNS, bind.PARENT,
                                              unbound.KIND, client.CLIENT, client.PROBE,
                                              pebble.KIND)}
WEB = SOFTWARE  # the kinds a lab file's servers may be (the model's list; each has its record here)


def of(host) -> Kind:
    """The kind of a spec.Host."""
    return KINDS[host.software or host.role]


def group_vars() -> dict[str, str]:
    """playbooks/group_vars/<role>.yml: each role's kind as the playbook reads it, for any
    inventory (a sysadmin's for real servers names groups only); labgen's own inventory also
    sets them per host (with BIND's seed first when it signs). A unit test keeps them in step."""
    import yaml

    class Indented(yaml.SafeDumper):  # lists indented under their key, as yamllint wants
        def increase_indent(self, flow=False, indentless=False):
            return super().increase_indent(flow, False)

    found = {}
    for kind in KINDS.values():
        found[kind.role] = ("# Written from labgen/kinds (kinds.group_vars); a unit test keeps it in step.\n"
                            + yaml.dump(hostvars(kind), Dumper=Indented, sort_keys=False))
    return found


# What runs before a kind's config test on one host (Kind.prepare), as the playbook reads it: a
# host variable of its own, so that the kind's variables can be the same for every host of a
# group. (A host named like its group, nginx in group nginx, takes the playbook's group_vars over
# its own inventory variables: a per-host labgen_validate would be lost there.)
PREPARE = "{{ labgen_prepare | default('') }}"


def hostvars(kind: Kind) -> dict:
    """What the playbook's one task reads of a host's kind (site.yml): the config test it runs
    before any reload (after the host's labgen_prepare), its unit, how a change reaches it, the
    links it enables and disables, and the commands it must have."""
    found = {"labgen_validate": kind.config_test.format(prepare=PREPARE), "labgen_service": kind.unit,
             "labgen_change": kind.change}
    for name, links in (("labgen_enable", kind.enable), ("labgen_disable", kind.disable)):
        if links:
            found[name] = {folder: [n.format(fqdn="{{ labgen_fqdn }}") for n in names] for folder, names in links}
    if kind.commands:
        found["labgen_commands"] = list(kind.commands)
    return found
