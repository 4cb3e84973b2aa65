"""HL7 aECG kernel (ext/hl7aecg.pyx); use ecgingest.formats.hl7aecg instead."""

from collections.abc import Callable
from typing import Any

import numpy as np
from typing_extensions import disjoint_base

STATUS_OK: int
STATUS_BAD_VALUE: int
STATUS_OVERFLOW: int
ELEMENT_SIZE: int

def count_integers(text: bytes | bytearray | memoryview | np.ndarray) -> int: ...
def parse_integers(text: bytes | bytearray | memoryview | np.ndarray,
                   count: int) -> tuple[int, np.ndarray, int, int, int]: ...
def stack_int32(rows: list[np.ndarray]) -> np.ndarray: ...

@disjoint_base
class Digits:
    def __new__(cls, root: Any) -> Digits: ...
    def text(self, index: int, start: int, size: int) -> bytes: ...
    def counts(self, indices: list[int]) -> tuple[np.ndarray, int]: ...
    def parse(self, indices: list[int], counts: np.ndarray
              ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]: ...

def tree_records(root: Any, element_type: type, number: Callable[[str | None], float | None],
                 label: Callable[[str], str]) -> tuple[
    list[tuple[Any, ...]], tuple[list[dict[str, Any]], list[int]], Digits]: ...

def document_records(document: Document, number: Callable[[str | None], float | None],
                     label: Callable[[str], str]) -> tuple[
    list[tuple[Any, ...]], tuple[list[dict[str, Any]], list[int]], Digits] | None: ...
def bind_libxml2(new_context: int, free_context: int, read_memory: int,
                 free_document: int) -> bool: ...

@disjoint_base
class Document: ...

def parse_document(text: bytes, utf8: bool) -> Document | None: ...
