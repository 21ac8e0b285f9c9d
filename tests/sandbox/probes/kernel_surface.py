"""Tries syscalls that widen the kernel's attack surface and prints what each answered.
Run inside the sandbox by the isolation probes and, as a control, outside it. x86_64."""

import ctypes
import errno
import json

libc = ctypes.CDLL(None, use_errno=True)


def call(number, *args):
    result = libc.syscall(number, *args)
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


params = ctypes.create_string_buffer(120)
print(
    json.dumps(
        {
            "keyctl": call(250, 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
            "io_uring_setup": call(425, 1, params),
            "perf_event_open": call(298, None, 0, -1, -1, 0),
        }
    )
)
