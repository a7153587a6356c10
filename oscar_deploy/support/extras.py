"""Cloud SDKs are optional extras: `pip install 'oscar-deploy[openstack]'` or `'oscar-deploy[aws]'`.

Code that needs one imports it through `import_extra`, at the moment it is needed, so a missing extra costs
nothing until that target is used and then says in one line how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from oscar_deploy.support.errors import OperationError

# Every module the cloud code imports, by the extra that installs it.
EXTRA_MODULES = {
    "openstack": ("pulumi_openstack", "openstack", "keystoneauth1"),
    "aws": ("pulumi_aws", "boto3", "botocore"),
}


class MissingExtraError(OperationError):
    """A cloud SDK that is not installed; the message is the install command."""


def install_command(extra: str) -> str:
    return f"pip install 'oscar-deploy[{extra}]'"


def import_extra(module: str, extra: str) -> ModuleType:
    """Import `module`, which the extra `extra` installs, or fail with the command that installs it."""
    if module.split(".")[0] not in EXTRA_MODULES.get(extra, ()):
        raise ValueError(f"{module} is not a module of the {extra!r} extra")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        raise MissingExtraError(
            f"target {extra}: the Python package {missing} is not installed; run {install_command(extra)}"
        ) from None
