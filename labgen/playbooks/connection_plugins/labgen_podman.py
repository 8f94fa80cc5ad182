# The Podman connection with pipelining: containers.podman.podman runs `podman exec` without -i,
# so Ansible must copy every module into the container first (a temporary folder, the file,
# chmod, the run, rm: five or six engine calls per task). This one passes the module on
# stdin (`podman exec -i`), so a task is one engine call. It never copies a file by path
# (`podman mount`, then a copy on this machine): a path inside the container's mounted file
# system is the container's to choose, and a link there would be followed on this machine.
# labgen's own transfer (action_plugins/labgen_tree.py) is a stream on a command's stdin.
# GNU General Public License v3.0+ (like the plugin it extends)

from __future__ import annotations

DOCUMENTATION = """
    name: labgen_podman
    short_description: Run tasks in a Podman container, with pipelining
    description:
        - containers.podman.podman with pipelining (the module goes to C(podman exec -i) on
          stdin) and no copy of files by path, used by labgen up for its lab containers.
    options:
      remote_addr:
        description:
          - The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description:
          - User (name or UID) that runs commands inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description:
          - Extra arguments to pass to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description:
          - Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
      pipelining:
        description:
          - Send modules on stdin instead of copying them into the container first.
        type: boolean
        default: true
        env:
          - name: ANSIBLE_PIPELINING
        vars:
          - name: ansible_pipelining
"""

import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    transport = "labgen_podman"
    has_pipelining = True

    def _connect(self):
        # No `podman mount`: files are never copied by path (see put_file).
        ConnectionBase._connect(self)
        self._connected = True
        return self

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "-i"] if in_data is not None else ["exec"]
        if self.user:
            args += ["--user", self.user]
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)

    def put_file(self, in_path, out_path):
        raise AnsibleConnectionFailure(REFUSED)

    def fetch_file(self, in_path, out_path):
        raise AnsibleConnectionFailure(REFUSED)


REFUSED = ("labgen copies no file by path into or out of a lab container (a link inside it would be "
           "followed on this machine); send data on a command's standard input instead")
