"""The OpenStack nodes of one oscar-deploy cluster, for plain `pulumi up` in this folder.

The program itself is `oscar_deploy.providers.openstack.program` (the CLI runs the same one inline); this file
only reads the stack's config (see README.md here) and calls it.
"""

import pulumi

from oscar_deploy.providers.openstack.program import declare, input_from_config

declare(input_from_config(pulumi.Config()))
