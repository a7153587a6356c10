"""Pulumi through its Automation API: the runner seam, state backend, secrets, CLI install and progress.

`runner.StackRunner` is the seam the phases use (tests replace it with a recording fake); `runner.PulumiRunner`
implements it over `pulumi.automation`. `operations` adds what every run needs around it: recovery of an
interrupted update, progress from engine events, and one-line errors.
"""
