"""Exceptions that the CLI maps to exit codes. Each carries a message a person can act on."""


class LabgenError(Exception):
    """Base class: anything labgen reports to the user instead of a traceback."""

    exit_code = 1


class SpecError(LabgenError):
    """The lab file is wrong: names the file, the key and the problem."""

    exit_code = 2


class RenderError(LabgenError):
    """Rendering failed; the previous build/ is left exactly as it was."""


class ToolError(LabgenError):
    """An external tool (debootstrap, a config checker) is missing or failed."""
