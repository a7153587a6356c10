"""OSCAR platform stack: the program lives in oscar_deploy.platform.stack (run with `pulumi up` here)."""

from pathlib import Path

from oscar_deploy.platform.stack import program

program(Path(__file__).resolve().parent)
