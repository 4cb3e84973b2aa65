# Status codes returned by nogil kernels; ecgingest maps them to exceptions
# after the kernel returns (see each module's _raise_for_status).
cdef enum KernelStatus:
    OK = 0
    TRUNCATED = -1
    BAD_VALUE = -2
    OVERFLOW = -3
    BAD_CODE = -4
    UNSUPPORTED = -5
