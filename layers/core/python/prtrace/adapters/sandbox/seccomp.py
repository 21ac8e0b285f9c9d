"""A seccomp filter for the bwrap backend (`bwrap --seccomp FD`), a layer behind the
namespaces: syscalls a test suite has no use for and that widen the kernel's attack surface
(io_uring, bpf, perf events, keyrings, userfaultfd, module and mount APIs, ptrace) fail
with EPERM. x86_64 only; elsewhere the sandbox runs without this layer (`filter_program`
answers None) and the other layers still hold.
"""

from __future__ import annotations

import errno
import platform
import struct
from typing import Final

_AUDIT_ARCH_X86_64: Final = 0xC000003E
_X32_SYSCALL_BIT: Final = 0x40000000
_LD_W_ABS: Final = 0x20
_JEQ_K: Final = 0x15
_JGE_K: Final = 0x35
_RET_K: Final = 0x06
_RET_ALLOW: Final = 0x7FFF0000
_RET_KILL_PROCESS: Final = 0x80000000
_RET_EPERM: Final = 0x00050000 | errno.EPERM

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl).
BLOCKED_X86_64: Final[dict[str, int]] = {
    "ptrace": 101,
    "syslog": 103,
    "vhangup": 153,
    "pivot_root": 155,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)  # struct sock_filter


def filter_program() -> bytes | None:
    """The BPF program bwrap loads, or None on an architecture this filter does not cover."""
    if platform.machine() != "x86_64":
        return None
    numbers = sorted(BLOCKED_X86_64.values())
    deny = 5 + len(numbers) + 1  # index of the final "deny" instruction
    program = [
        _insn(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),  # another ABI: never
        _insn(_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        _insn(_JGE_K, deny - 4 - 1, 0, _X32_SYSCALL_BIT),  # the x32 ABI: denied
    ]
    for number in numbers:
        program.append(_insn(_JEQ_K, deny - len(program) - 1, 0, number))
    program.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    program.append(_insn(_RET_K, 0, 0, _RET_EPERM))
    assert len(program) == deny + 1
    return b"".join(program)
