"""ec2emu: moto (EC2 and KMS) served over HTTP, with request counting, fault injection,
an adjustable clock, pending-state transitions, and corrections where moto deviates from
documented AWS behaviour. See tests/emulator/README.md.

Import order matters: `MOTO_EC2_LOAD_DEFAULT_AMIS` must be set before moto is imported,
so moto is only imported inside `ec2emu.server` (and the fixes it loads), never here.
"""
