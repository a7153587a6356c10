"""Runs a Pulumi program under `pulumi.runtime.set_mocks` and records what it registered.

Stands for the Pulumi engine and the cloud providers: no CLI, no plugin, no cloud. Resources get made-up ids and
the outputs a provider would compute (addresses of ports, floating IPs, instances); invokes (get_network,
get_ami) answer from a table. Recorded per resource: type, name, inputs, which inputs were marked secret, the
resources it depends on and its ignore_changes; and the stack's exports. Upstream reference:
pulumi/pulumi sdk/python/lib/pulumi/runtime/mocks.py (Mocks, MockMonitor, set_mocks) and
https://www.pulumi.com/docs/iac/guides/testing/unit/.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_in_stack


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    secret_inputs: set[str]
    dependencies: list[str]
    ignore_changes: list[str]

    def depends_on(self, other: Registered) -> bool:
        return other.urn in self.dependencies


class CloudMocks(pulumi.runtime.Mocks):
    """Made-up provider outputs, like a cloud would fill them in, and canned invoke answers."""

    def __init__(self, invokes: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
        self.invokes = dict(invokes)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._private = (str(ipaddress.ip_address("10.20.0.10") + n) for n in itertools.count())
        self._public = (str(ipaddress.ip_address("203.0.113.10") + n) for n in itertools.count())

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "openstack:networking/port:Port":
            outputs["allFixedIps"] = [next(self._private)]
        elif args.typ == "openstack:networking/floatingIp:FloatingIp":
            outputs["address"] = next(self._public)
        elif args.typ == "aws:ec2/instance:Instance":
            outputs["privateIp"] = next(self._private)
            outputs["publicIp"] = next(self._public)
        elif args.typ == "aws:ec2/eip:Eip":
            outputs["publicIp"] = next(self._public)
        elif args.typ == "openstack:compute/keypair:Keypair":
            outputs.setdefault("name", args.name)
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            outputs.setdefault("keyName", args.name)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append((args.token, dict(args.args)))
        answer = self.invokes.get(args.token)
        if answer is None:
            raise AssertionError(f"the program invoked {args.token}, which this test does not expect")
        return answer(dict(args.args))


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mocks' monitor, also keeping each registration's dependencies, options and secret markers."""

    def __init__(self, mocks: CloudMocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []
        self.exports: dict[str, Any] = {}
        self.secret_exports: set[str] = set()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object)
            secret = {key for key, value in raw.items() if rpc.is_rpc_secret(value)}
            inputs = {key: rpc.unwrap_rpc_secret(value) for key, value in raw.items()}
            self.registered.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=inputs,
                    secret_inputs=secret,
                    dependencies=list(request.dependencies),
                    ignore_changes=list(request.ignoreChanges),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.endswith("pulumi:pulumi:Stack::") or "::pulumi:pulumi:Stack::" in request.urn:
            raw = rpc.deserialize_properties(request.outputs)
            self.secret_exports = {key for key, value in raw.items() if rpc.is_rpc_secret(value)}
            self.exports = {key: rpc.unwrap_rpc_secret(value) for key, value in raw.items()}
        return super().RegisterResourceOutputs(request)


@dataclass
class ProgramRun:
    monitor: RecordingMonitor
    mocks: CloudMocks
    resources: list[Registered] = field(init=False)

    def __post_init__(self) -> None:
        self.resources = self.monitor.registered

    @property
    def exports(self) -> dict[str, Any]:
        return self.monitor.exports

    def of_type(self, typ: str) -> list[Registered]:
        return [resource for resource in self.resources if resource.type == typ]

    def named(self, name: str) -> Registered:
        (match,) = [resource for resource in self.resources if resource.name == name]
        return match

    def by_urn(self, urn: str) -> Registered:
        (match,) = [resource for resource in self.resources if resource.urn == urn]
        return match


def run_program(
    program: Callable[[], None],
    invokes: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]],
    *,
    preview: bool = False,
    project: str = "oscar-deploy-test",
    config: Mapping[str, str] | None = None,
) -> ProgramRun:
    """Run `program` to completion under mocks, as `pulumi preview` (preview=True) or `pulumi up` would.

    `config` is the stack's config, keys as the CLI stores them (`<project>:<key>`).
    """
    mocks = CloudMocks(invokes)
    monitor = RecordingMonitor(mocks)
    previous = asyncio.get_event_loop_policy().get_event_loop()
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        # set_mocks makes a root stack and closes it at once; run_in_stack makes the one the program exports to.
        pulumi.runtime.set_mocks(mocks, project=project, stack="test", preview=preview, monitor=monitor)
        pulumi.runtime.set_all_config(dict(config or {}))
        settings.set_root_resource(None)
        loop.run_until_complete(run_in_stack(program))
    finally:
        loop.close()
        # Other Pulumi programs in the same test run use the thread's loop: give it back.
        asyncio.set_event_loop(previous)
    return ProgramRun(monitor, mocks)
