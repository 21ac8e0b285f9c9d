"""Shell integration: record the commands typed in an interactive bash or zsh.

`prtrace record start --shell bash` (or `prtrace record shell bash` in a session already
recording) prints a snippet to `eval`. It starts one helper per shell, a coprocess running
`agent` below, and hooks the shell: before a typed command runs (bash: a DEBUG trap armed by
PROMPT_COMMAND, the logic of bash-preexec written inline; zsh: a preexec hook) it sends the
command line and the working directory, and waits for the answer; when the prompt returns
(precmd) it sends the exit status and waits again. The helper speaks to the session's
recorder process in its protocol (protocol.py), as `prtrace run` does: the edits made before
the command are recorded first, then a `cmd_run` with the command line, working directory,
exit code and duration, journaled before the shell gets its answer; without a recorder, the
helper records directly (direct.py). The typed command runs in the shell as it would
without prtrace: its output is not captured (`prtrace run -- …` captures it) and a typed
pytest is a `cmd_run`, not a `test_run`.

Which commands are recorded: the first word of the line (after `VAR=value` assignments and
`time`, `command`, `builtin`, `noglob`, `nocorrect`, `sudo`) is looked up in the deny list,
DEFAULT_DENY plus the words of $PRTRACE_SHELL_DENY, minus the words of $PRTRACE_SHELL_ALLOW;
`PRTRACE_SHELL_ALLOW=*` records everything. Both are read at every command, so `export` them
whenever. Command lines are redacted like every recorded argv.

Wire (the shell's side): NUL-terminated fields; `B<n>`, line, cwd, allow, deny before a
command (answer: `<n> rec`, `<n> skip`, or `<n>` and an error to show), `E<n>`, exit status
after it (answer: `<n> ok` or an error), one answer line each. The shell numbers its
messages and passes over an answer that came after it stopped waiting (30 s).
"""

from __future__ import annotations

import os
import select
import shlex
import sys
import time
from pathlib import Path

from prtrace_client.recorder import protocol

SHELLS = ("bash", "zsh")
DEFAULT_DENY = frozenset(
    """
    cd pushd popd dirs prtrace
    export unset set setopt unsetopt shopt source . alias unalias history fc exit logout
    clear reset fg bg jobs disown type which hash rehash eval exec declare typeset local
    readonly trap umask ulimit bindkey compdef autoload zle
    vi vim nvim view vimdiff gvim nano pico emacs emacsclient code subl micro hx helix kak
    ed joe mcedit
    less more most man info pager
    """.split()  # noqa: SIM905 - a list of words, read as such
)
_PREFIXES = frozenset({"time", "command", "builtin", "noglob", "nocorrect", "sudo", "nohup"})
_OPERATOR_CHARS = set("();<>|&")
ANSWER_TIMEOUT_S = 30  # the shell waits this long for the helper, then runs the command


# ---- which commands, and as which argv ---------------------------------------------------


def _tokens(line: str) -> list[str] | None:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # an unclosed quote: the shell will say so
        return None


def command_word(line: str) -> str:
    """The command a typed line runs: its first word past assignments and prefixes, as a
    base name ("" when there is none)."""
    for word in _tokens(line) or line.split():
        if "=" in word and not word.startswith("=") and word.split("=", 1)[0].isidentifier():
            continue
        if word in _PREFIXES or word.startswith("-"):
            continue
        return os.path.basename(word) if word not in {".", ".."} else word
    return ""


def is_recorded(line: str, allow: str = "", deny: str = "") -> bool:
    allowed = set(allow.split())
    if "*" in allowed:
        return bool(line.strip())
    word = command_word(line)
    if not word:
        return False
    denied = (DEFAULT_DENY | set(deny.split())) - allowed
    return word not in denied


def command_argv(line: str, shell: str) -> list[str]:
    """The recorded argv: the words of a simple command; `SHELL -c LINE` for anything with
    shell syntax (pipes, lists, redirections, subshells) or that does not split."""
    tokens = _tokens(line)
    if tokens and not any(set(token) <= _OPERATOR_CHARS for token in tokens):
        return tokens
    return [shell, "-c", line.strip()]


# ---- the helper ---------------------------------------------------------------------------


class _Typed:
    """The command between its `B` and its `E`."""

    def __init__(self, directory: str | None, prepared: dict[str, object]) -> None:
        self.directory = directory  # None: recorded directly
        self.prepared = prepared
        self.started = time.monotonic()


def _begin(line: str, cwd: str, shell: str) -> _Typed | None:
    """Record the edits before a typed command; None when no session records here."""
    argv = command_argv(line, shell)
    directory = protocol.served_session(cwd)
    if directory is not None:
        try:
            return _Typed(directory, protocol.begin(directory, argv, cwd, typed=True))
        except protocol.RecorderUnavailable:
            pass  # recorded directly below
    session = protocol.session_dir(cwd)
    if session is None or not os.path.exists(os.path.join(session, protocol.SESSION_FILE)):
        return None
    from prtrace_client.recorder import direct  # the direct path

    return _Typed(None, direct.begin_run(argv, Path(cwd), typed=True))


def _end(typed: _Typed, code: int) -> None:
    duration_ms = round((time.monotonic() - typed.started) * 1000)
    if typed.directory is not None:
        try:
            protocol.end(typed.directory, typed.prepared, code, duration_ms)
            return
        except protocol.RecorderUnavailable:
            pass
    from prtrace_client.recorder import direct  # the direct path

    direct.finish_run(typed.prepared, code, b"", b"", duration_ms)


def _reply(text: str) -> None:
    """One answer line to the shell (the agent's stdout)."""
    data = (" ".join(text.split()) + "\n").encode()
    try:
        while data:
            data = data[os.write(1, data) :]
    except OSError:
        pass  # the shell went away: it ends this agent too


def agent(shell: str) -> int:
    """The helper: answers the shell's hooks on stdin/stdout until the shell is gone."""
    parent = os.getppid()
    buffer = b""
    fields: list[bytes] = []
    typed: _Typed | None = None
    while True:
        ready, _, _ = select.select([0], [], [], 2.0)
        if not ready:
            if os.getppid() != parent:  # the shell exited (a child may hold our stdin)
                return 0
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return 0
        buffer += chunk
        *complete, buffer = buffer.split(b"\0")
        fields.extend(complete)
        while fields:
            kind, number = fields[0][:1], fields[0][1:].decode("ascii", "replace")
            wanted = 5 if kind == b"B" else 2
            if len(fields) < wanted:
                break
            message = [field.decode("utf-8", "surrogateescape") for field in fields[:wanted]]
            del fields[:wanted]

            def _answer(text: str, number: str = number) -> None:
                _reply(f"{number} {text}")

            try:
                if kind == b"B":
                    _, line, cwd, allow, deny = message
                    typed = None
                    if is_recorded(line, allow, deny):
                        typed = _begin(line, cwd, shell)
                    _answer("rec" if typed is not None else "skip")
                elif kind == b"E":
                    if typed is not None:
                        current, typed = typed, None
                        _end(current, int(message[1]))
                    _answer("ok")
                else:
                    fields.clear()
                    _answer(f"prtrace: unknown message {message[0]!r} from the shell")
            except Exception as exc:  # the shell shows it; the next command is recorded
                typed = None
                _answer(f"prtrace: this command was not recorded: {exc}")


# ---- the snippets ----------------------------------------------------------------------------

_HEADER = """\
# prtrace shell integration ({shell}): each command typed in this shell is recorded in the
# active prtrace session of the repository it runs in (command line, directory, exit code,
# duration; not its output: use `prtrace run -- …` for that). Not recorded: cd, editors,
# pagers, prtrace itself, shell builtins; add words to PRTRACE_SHELL_DENY, record denied
# ones with PRTRACE_SHELL_ALLOW (`*`: everything). Command lines are redacted.
"""

# What bash and zsh share: the message exchange with the agent (the coprocess's file
# descriptors are {to} and {from}) and what a command's start and end say to it.
_COMMON = r"""
__prtrace_say() {  # KIND FIELD…: one message, and the answer to it in $__prtrace_reply
  local kind=$1 reply=
  shift
  __prtrace_n=$(( ${__prtrace_n:-0} + 1 ))
  printf '%s\0' "$kind$__prtrace_n" "$@" >&{to} 2>/dev/null || return 1
  __prtrace_reply='prtrace: the recorder did not answer; this command may not be recorded'
  while IFS= read -r -t {timeout} -u {from} reply; do
    # An answer that came too late to an earlier message is passed over.
    if [[ $reply == "$__prtrace_n "* ]]; then __prtrace_reply=${reply#* }; break; fi
  done
  return 0
}
__prtrace_begin() {  # LINE: a command starts; recorded unless the agent skips it
  __prtrace_began=
  __prtrace_say B "$1" "$PWD" "${PRTRACE_SHELL_ALLOW-}" "${PRTRACE_SHELL_DENY-}" ||
    return 0
  case $__prtrace_reply in
    rec) __prtrace_began=1 ;;
    skip) ;;
    *) printf '%s\n' "$__prtrace_reply" >&2 ;;
  esac
  return 0
}
__prtrace_end() {  # CODE: the command begun last ended with this exit code
  if [[ -n ${__prtrace_began-} ]]; then
    __prtrace_began=
    if __prtrace_say E "$1" && [[ $__prtrace_reply != ok ]]; then
      printf '%s\n' "$__prtrace_reply" >&2
    fi
  fi
}
"""

_BASH_AGENT = r"""
if [[ -z ${__prtrace_agent_pid-} ]] || ! kill -0 "$__prtrace_agent_pid" 2>/dev/null; then
  { coproc __PRTRACE_AGENT {
      exec {python} -m prtrace_client.recorder.shell agent bash 2>/dev/null; }; } 2>/dev/null
  __prtrace_agent_pid=$__PRTRACE_AGENT_PID
  disown "$__prtrace_agent_pid" 2>/dev/null  # no job notices: it ends with the shell
fi
"""

# bash has no preexec hook: a DEBUG trap armed by the prompt sees the first simple
# command of each line typed, and the history gives the whole line.
_BASH_HOOKS = r"""
__prtrace_preexec() {
  [[ -n ${__prtrace_armed-} && -z ${COMP_LINE-} ]] || return 0
  __prtrace_armed=
  [[ $BASH_COMMAND == __prtrace_* ]] && return 0
  local line=$BASH_COMMAND
  if [[ -o history ]]; then
    line=$(HISTTIMEFORMAT= builtin history 1)
    line=${line#*[0-9]  }
    [[ $line == *"$BASH_COMMAND"* ]] || line=$BASH_COMMAND
  fi
  __prtrace_begin "$line"
}
__prtrace_precmd() {
  local code=$?
  __prtrace_armed=
  __prtrace_end "$code"
  return $code
}
__prtrace_arm() { local code=$?; __prtrace_armed=1; return $code; }
if [[ ${PROMPT_COMMAND[*]-} != *__prtrace_precmd* ]]; then
  if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) == "declare -a"* ]]; then
    PROMPT_COMMAND=(__prtrace_precmd "${PROMPT_COMMAND[@]}" __prtrace_arm)
  else
    PROMPT_COMMAND="__prtrace_precmd${PROMPT_COMMAND:+;$PROMPT_COMMAND};__prtrace_arm"
  fi
fi
trap '__prtrace_preexec' DEBUG
"""

_ZSH_AGENT = r"""
if [[ -z ${__prtrace_agent_pid-} ]] || ! kill -0 "$__prtrace_agent_pid" 2>/dev/null; then
  coproc {python} -m prtrace_client.recorder.shell agent zsh 2>/dev/null
  __prtrace_agent_pid=$!
  exec {__prtrace_to}>&p {__prtrace_from}<&p
fi
"""

_ZSH_HOOKS = r"""
__prtrace_preexec() { __prtrace_begin "$1"; }
__prtrace_precmd() {
  local code=$?
  __prtrace_end "$code"
  return $code
}
autoload -Uz add-zsh-hook
add-zsh-hook preexec __prtrace_preexec
add-zsh-hook precmd __prtrace_precmd
"""

_SHELL_PARTS = {
    "bash": (_BASH_AGENT, '"${__PRTRACE_AGENT[1]}"', '"${__PRTRACE_AGENT[0]}"', _BASH_HOOKS),
    "zsh": (_ZSH_AGENT, "$__prtrace_to", "$__prtrace_from", _ZSH_HOOKS),
}


def snippet(shell: str, python: str | None = None, timeout_s: int = ANSWER_TIMEOUT_S) -> str:
    """The code to `eval` in an interactive `shell` (bash or zsh)."""
    if shell not in SHELLS:
        raise ValueError(f"no shell integration for {shell!r}: choose one of {', '.join(SHELLS)}")
    agent_start, to_agent, from_agent, hooks = _SHELL_PARTS[shell]
    common = _COMMON.replace("{to}", to_agent).replace("{from}", from_agent)
    return _HEADER.format(shell=shell) + (agent_start + common + hooks).replace(
        "{python}", shlex.quote(python or sys.executable)
    ).replace("{timeout}", str(timeout_s))


def main() -> int:
    if sys.argv[1:2] == ["agent"] and sys.argv[2:3] and sys.argv[2] in SHELLS:
        return agent(sys.argv[2])
    sys.stderr.write("usage: python -m prtrace_client.recorder.shell agent bash|zsh\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
