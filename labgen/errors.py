"""Exceptions that the CLI maps to exit codes. Each carries a message a person can act on.

The exit status says which phase failed: 2 the lab file or the command line (usage), 3 render,
4 the lab image, 5 the network or containers, 6 the Ansible deploy; 1 anything else.
"""


class LabgenError(Exception):
    """Base class: anything labgen reports to the user instead of a traceback."""

    exit_code = 1
    phase = "labgen"


class SpecError(LabgenError):
    """The lab file is wrong: names the file, the key and the problem."""

    exit_code = 2
    phase = "lab file"


class RenderError(LabgenError):
    """Rendering failed; the previous build/ is left exactly as it was."""

    exit_code = 3
    phase = "render"


class NotOwnedError(LabgenError):
    """render would replace a file or folder labgen did not make: refused, nothing touched."""

    exit_code = 2
    phase = "render"


class ToolError(LabgenError):
    """An external tool (debootstrap, a config checker) is missing or failed."""


class ImageError(LabgenError):
    """The lab image could not be built or found."""

    exit_code = 4
    phase = "image"


class EngineError(LabgenError):
    """The container engine is missing or refused to create the network or a container."""

    exit_code = 5
    phase = "containers"


class DeployError(LabgenError):
    """The Ansible playbook failed: names the host, the task and Ansible's message."""

    exit_code = 6
    phase = "deploy"


class UsageError(LabgenError):
    """The command cannot run as asked (verify before the lab is up, say): one line, no phase."""

    exit_code = 2
    phase = "labgen"
