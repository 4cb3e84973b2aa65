"""Type stubs for guarded file mappings (ext/mapping.pyx): a read of a page a
truncated file no longer has reads zeros instead of killing the process."""

from typing_extensions import Buffer

GUARDED: bool

def guard(mapped: Buffer, populate: bool = False) -> int: ...
def unguard(slot: int) -> bool: ...
