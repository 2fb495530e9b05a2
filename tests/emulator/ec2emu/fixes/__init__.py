"""Corrections that make moto behave like AWS where ec2-reconciler depends on it.

Each module here exposes `install()` (patch moto once, at server start) and `reset()`
(forget any state the module keeps, called on POST /_emulator/reset). Every correction
cites the AWS behaviour it restores in its docstring.
"""

MODULES = ["volumes", "images", "instances", "snapshot_copies", "tags"]
