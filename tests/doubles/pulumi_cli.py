"""TEST DOUBLE: stands in for the `pulumi` CLI binary under the Automation API. It is not Pulumi.

The Automation API (pulumi/pulumi sdk/python/lib/pulumi/automation, SDK 3.272) runs `pulumi` for every
operation; the real CLI cannot run in this test tier (no download, no cloud). This script answers the commands
`oscar_deploy.iac.pulumi_runner` makes it run, in the shapes upstream's CLI uses
(https://www.pulumi.com/docs/iac/cli/commands/):

* `version` prints `v3.272.0` or $PULUMI_STAND_IN_VERSION (after 3.205 the Automation API streams engine
  events over gRPC: `--event-log tcp://127.0.0.1:PORT`, pulumirpc.Events/StreamEvents, one JSON event each);
* `stack select --stack S` fails with "error: no stack named 'S' found" for a stack that does not exist, and
  `stack init S` creates it; stacks are `organization/<project>/<stack>`, the project from ./Pulumi.yaml;
* `config set KEY --secret` reads the value from stdin when none is given, less one trailing newline
  (pkg/cmd/pulumi/config/config_set.go, sdk/go/common/util/cmdutil RemoveTrailingNewline) and, like
  Pulumi's passphrase provider (pkg/secrets/passphrase/manager.go, readPassphrase), needs
  PULUMI_CONFIG_PASSPHRASE or else the file named by PULUMI_CONFIG_PASSPHRASE_FILE (trimmed); it stores a
  digest of passphrase and value, never the value; `config set-all --plaintext k=v` stores plain values;
* `up`, `preview`, `refresh`, `destroy` send the scenario's engine events and end with its exit code and
  stderr; with a lock in the state they fail with the diy backend's message (pkg/backend/diy/lock.go):
  "the stack is currently locked by N lock(s)..." and one "<url>: created by user@host (pid N) at <time>" line
  per lock; `cancel` removes the locks (pkg/backend/diy CancelCurrentUpdate); with `hold` in an operation's
  scenario the operation starts a child (as Pulumi starts its provider plugins, in its process group), writes
  `held` (its pid and the child's) and runs until SIGINT, Pulumi's signal to cancel an update, after which it
  writes `interrupted` and ends with the scenario's exit code; every SIGINT or SIGTERM it gets is appended to
  `signals` (SIGTERM ends it at once);
* `stack output --json [--show-secrets]` masks secret outputs as "[secret]" unless asked not to;
  `stack history --json` prints one update summary; `stack export` prints `{"version": 3, "deployment": ...}`
  and `stack import --file F` replaces it; `stack rm --yes S` deletes the stack, unless its state still holds
  resources (a successful `destroy` empties it): then it fails with "'S' still has resources; removal rejected;
  pass --force to override" (pkg/cmd/pulumi/stack/stack_rm.go) unless `--force` is given.

Every invocation is appended to `calls.jsonl` in $PULUMI_STAND_IN_DIR (argv, the whole environment, stdin
when read, cwd, and the mode of a file passed to `stack import`), so tests can check what was run.
The scenario and the stacks live in `state.json` in the same folder. Nothing here ships in the wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

VERSION = "v3.272.0"
SECRET_SENTINEL = "[secret]"


def main(argv: list[str]) -> int:
    if argv == ["version"] and "PULUMI_STAND_IN_DIR" not in os.environ:
        print(os.environ.get("PULUMI_STAND_IN_VERSION", VERSION))  # an installed copy, asked for its version
        return 0
    folder = Path(os.environ["PULUMI_STAND_IN_DIR"])
    state_file = folder / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    state.setdefault("stacks", {})
    state.setdefault("scenario", {})
    state.setdefault("locks", [])
    record: dict[str, Any] = {"argv": argv, "env": dict(os.environ), "cwd": str(Path.cwd())}
    args = [arg for arg in argv if arg != "--non-interactive"]
    try:
        code = dispatch(args, state, record)
    finally:
        with (folder / "calls.jsonl").open("a") as log:
            log.write(json.dumps(record) + "\n")
        state_file.write_text(json.dumps(state, indent=1))
    return code


def option(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def project_name() -> str:
    import yaml

    return str(yaml.safe_load(Path("Pulumi.yaml").read_text())["name"])


def qualified(stack: str) -> str:
    return stack if stack.count("/") == 2 else f"organization/{project_name()}/{stack.split('/')[-1]}"


def fail(message: str) -> int:
    sys.stderr.write(message + "\n")
    return 255


def passphrase() -> str | None:
    if "PULUMI_CONFIG_PASSPHRASE" in os.environ:
        return os.environ["PULUMI_CONFIG_PASSPHRASE"]
    path = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        return Path(path).read_text().strip()
    return None


def dispatch(args: list[str], state: dict[str, Any], record: dict[str, Any]) -> int:
    if args[:1] == ["version"]:
        print(os.environ.get("PULUMI_STAND_IN_VERSION", VERSION))
        return 0
    if args[:1] == ["stack"] and args[1:2] == ["init"]:
        name = qualified(args[2])
        if name in state["stacks"]:
            return fail(f"error: stack '{name}' already exists")
        state["stacks"][name] = {"config": {}, "deployment": {"manifest": {"version": VERSION}}, "outputs": {}}
        return 0
    if args[:1] == ["cancel"]:
        state["locks"] = []
        print("The currently running update has been canceled!")
        return 0
    stack_option = option(args, "--stack")
    if args[:2] == ["stack", "rm"]:
        stack_option = args[-1]
    if stack_option is None:
        return fail(f"error: the stand-in needs --stack for {' '.join(args[:2])}")
    name = qualified(stack_option)
    stack = state["stacks"].get(name)
    if stack is None:
        return fail(f"error: no stack named '{name}' found")
    command = args[0] if args[0] in ("up", "preview", "refresh", "destroy") else " ".join(args[:2])
    if state["locks"] and command in ("up", "refresh", "destroy", "stack import"):
        lines = [
            f"error: the stack is currently locked by {len(state['locks'])} lock(s). Either wait for the other "
            "process(es) to end or delete the lock file with `pulumi cancel`."
        ]
        for lock in state["locks"]:
            lines.append(
                f"  file:///state/.pulumi/locks/{name}/{lock['id']}.json: created by {lock['username']}@"
                f"{lock['hostname']} (pid {lock['pid']}) at {lock['timestamp']}"
            )
        return fail("\n".join(lines))
    if command == "stack select":
        return 0
    if command == "config set":
        key = args[2]
        if "--secret" in args:
            phrase = passphrase()
            if phrase is None:
                return fail(
                    "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
                    "PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
                )
            value = sys.stdin.read().removesuffix("\n") if "--" not in args else args[-1]
            record["stdin"] = value  # what Pulumi would store, after its newline trimming
            digest = hashlib.sha256(f"{phrase}\0{value}".encode()).hexdigest()
            stack["config"][key] = {"secure": digest}
        else:
            stack["config"][key] = {"value": args[-1]}
        return 0
    if command == "config set-all":
        for index, arg in enumerate(args):
            if arg in ("--plaintext", "--secret"):
                key, _, value = args[index + 1].partition("=")
                stack["config"][key] = {"value": value} if arg == "--plaintext" else {"secure": "argv"}
        return 0
    if command in ("up", "preview", "refresh", "destroy"):
        return operation(command, args, state, stack)
    if command == "stack output":
        show = "--show-secrets" in args
        outputs = {
            key: (item["value"] if show or not item.get("secret") else SECRET_SENTINEL)
            for key, item in stack["outputs"].items()
        }
        print(json.dumps(outputs))
        return 0
    if command == "stack history":
        summary = {
            "kind": "update",
            "startTime": "2026-11-30T08:00:00.000000Z",
            "endTime": "2026-11-30T08:01:00.000000Z",
            "message": "",
            "environment": {},
            "config": {},
            "result": "succeeded",
            "resourceChanges": state["scenario"].get("changes", {}),
        }
        print(json.dumps([summary]))
        return 0
    if command == "stack export":
        print(json.dumps({"version": 3, "deployment": stack["deployment"]}))
        return 0
    if command == "stack import":
        path = Path(str(option(args, "--file")))
        record["import_file_mode"] = oct(stat.S_IMODE(path.stat().st_mode))
        record["import_folder_mode"] = oct(stat.S_IMODE(path.parent.stat().st_mode))
        stack["deployment"] = json.loads(path.read_text())["deployment"]
        return 0
    if command == "stack rm":
        if stack["deployment"].get("resources") and "--force" not in args:
            return fail(f"error: '{name}' still has resources; removal rejected; pass --force to override")
        del state["stacks"][name]
        return 0
    return fail(f"error: the stand-in does not know `{' '.join(args)}`")


def operation(command: str, args: list[str], state: dict[str, Any], stack: dict[str, Any]) -> int:
    scenario = state["scenario"].get(command, {})
    send_events(option(args, "--event-log"), scenario.get("events", []))
    if scenario.get("hold"):
        hold_until_interrupted(Path(os.environ["PULUMI_STAND_IN_DIR"]))
    code = int(scenario.get("exit", 0))
    if scenario.get("stderr"):
        sys.stderr.write(scenario["stderr"] + "\n")
    if code == 0 and command == "up":
        stack["outputs"] = scenario.get("outputs", {})
        stack["deployment"].pop("pending_operations", None)
    if code == 0 and command == "destroy":
        stack["outputs"] = {}
        stack["deployment"].pop("resources", None)
    return code


def hold_until_interrupted(folder: Path) -> None:
    import signal
    import subprocess
    import time

    def note(signum: int) -> None:
        with (folder / "signals").open("a") as record:
            record.write(f"{signal.Signals(signum).name}\n")

    interrupted: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _frame: (note(signum), sys.exit(128 + signum)))
    plugin = subprocess.Popen(["sleep", "600"])
    (folder / "held.part").write_text(json.dumps({"pid": os.getpid(), "plugin": plugin.pid}))
    (folder / "held.part").rename(folder / "held")
    while not interrupted:
        time.sleep(0.05)
    note(interrupted[0])
    (folder / "interrupted").write_text("SIGINT")


def send_events(destination: str | None, events: list[dict[str, Any]]) -> None:
    if destination is None:
        return
    if destination.startswith("tcp://"):
        import grpc
        from pulumi.runtime.proto import events_pb2, events_pb2_grpc

        with grpc.insecure_channel(destination.removeprefix("tcp://")) as channel:
            stub = events_pb2_grpc.EventsStub(channel)
            stub.StreamEvents(iter([events_pb2.EventRequest(event=json.dumps(event)) for event in events]))
        return
    with Path(destination).open("a") as log:
        for event in events:
            log.write(json.dumps(event) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
