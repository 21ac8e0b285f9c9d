"""Shell integration: a real interactive bash (and zsh) with the snippet of
`prtrace record start --shell …` evaluated records the typed commands (command line,
directory, exit code, duration) through the session's recorder, skips the denied ones, redacts
secrets, and its helper ends with the shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prtrace_client.recorder.shell import command_argv, command_word, is_recorded, snippet
from tests.client.recorder.test_recorder_process import (
    FAST,
    _alive,
    journaled,
    prtrace,
    wait_until,
)

GITHUB_PAT = "ghp_" + "R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK"
PY = f"{sys.executable} -m prtrace_cli.fast"
PRTRACE = Path(sys.executable).with_name("prtrace")  # the console script users run


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("git status", "git"),
        ("FOO=1 BAR=2 /usr/bin/vim x", "vim"),
        ("time command pytest -q", "pytest"),
        ("sudo -E apt-get install x", "apt-get"),
        (". ./env.sh", "."),
        ("", ""),
        ("FOO=1", ""),
    ],
)
def test_the_command_word_skips_assignments_and_prefixes(line: str, word: str) -> None:
    assert command_word(line) == word


def test_the_deny_list_and_its_overrides() -> None:
    for denied in ("cd ..", "vim x", "less log", "prtrace run -- x", "export A=1", "source x"):
        assert not is_recorded(denied), denied
    assert is_recorded("pytest -q")
    assert not is_recorded("make test", deny="make lint")
    assert is_recorded("cd ..", allow="cd")
    assert is_recorded("vim x", allow="*")
    assert not is_recorded("   ", allow="*")


def test_simple_commands_keep_their_words_and_shell_syntax_runs_through_the_shell() -> None:
    assert command_argv("pytest -k 'a and b' -q", "bash") == ["pytest", "-k", "a and b", "-q"]
    assert command_argv("ls | wc -l", "zsh") == ["zsh", "-c", "ls | wc -l"]
    assert command_argv("make && make test", "bash") == ["bash", "-c", "make && make test"]
    assert command_argv("echo 'unclosed", "bash") == ["bash", "-c", "echo 'unclosed"]


def test_only_bash_and_zsh_have_a_snippet() -> None:
    assert "trap '__prtrace_preexec' DEBUG" in snippet("bash", "/py")
    assert "add-zsh-hook preexec __prtrace_preexec" in snippet("zsh", "/py")
    with pytest.raises(ValueError, match="no shell integration for 'fish'"):
        snippet("fish")


def typed_session(repo: Path, shell: list[str], name: str, lines: list[str], *options: str) -> str:
    """Run an interactive `shell` reading `lines` as typed input; its output."""
    start = f"{PY} record start --title typed --no-hook {' '.join(options)} --shell {name}"
    script = [f'eval "$({start})"', *lines]
    done = subprocess.run(
        shell,
        cwd=repo,
        input="\n".join([*script, "exit", ""]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


SHELLS = [
    pytest.param(["bash", "--norc", "--noprofile", "-i"], "bash", id="bash"),
    pytest.param(
        ["zsh", "-f", "-i"],
        "zsh",
        id="zsh",
        marks=pytest.mark.skipif(
            shutil.which("zsh") is None, reason="zsh missing: .ci/sandbox-setup.sh installs it"
        ),
    ),
]


@pytest.mark.slow  # a real interactive bash and zsh, about 3 s each
@pytest.mark.parametrize(("shell", "name"), SHELLS)
def test_typed_commands_are_recorded_through_the_recorder(
    buggy_repo: Path, env: Path, shell: list[str], name: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "agent.pid"
    output = typed_session(
        buggy_repo,
        shell,
        name,
        [
            "echo fixed > NOTES.md",
            "",
            "cd ranges",
            "ls | wc -l",
            "false",
            "export FOO=1",
            "less /dev/null",
            "FOO=2 git status --short",
            f"echo token {GITHUB_PAT}",
            "export PRTRACE_SHELL_DENY=git",
            "git log -1 --format=%s",
            "sleep 0.3",
            f"{PRTRACE} record status",
            f"printf '%s' $__prtrace_agent_pid > {pid_file}",
        ],
    )
    assert "integration: the commands typed in this shell are recorded" in output
    assert "not recorded" not in output, output
    assert "did not answer" not in output, output

    events = journaled(env)
    typed = [
        (e["payload"]["argv"], e["payload"]["cwd"], e["payload"]["exit_code"])
        for e in events
        if e["type"] == "cmd_run"
    ]
    assert typed[:6] == [
        ([name, "-c", "echo fixed > NOTES.md"], ".", 0),
        ([name, "-c", "ls | wc -l"], "ranges", 0),
        (["false"], "ranges", 1),
        (["FOO=2", "git", "status", "--short"], "ranges", 0),
        (["echo", "token", typed[4][0][2]], "ranges", 0),
        (["sleep", "0.3"], "ranges", 0),
    ]
    assert typed[4][0][2].startswith("[REDACTED:github-token:hmac-sha256=")
    assert GITHUB_PAT not in str(events)
    assert typed[6][0][2].startswith("printf")  # nothing else: cd, export, less, prtrace, git
    assert len(typed) == 7
    # The edit the first command made is recorded before the next command.
    assert [e["type"] for e in events[:3]] == ["cmd_run", "file_edit", "cmd_run"]
    assert events[1]["payload"]["path"] == "NOTES.md"
    sleep = next(e for e in events if e["type"] == "cmd_run" and e["payload"]["argv"][0] == "sleep")
    assert 300 <= sleep["payload"]["duration_ms"] < 10_000
    assert "stdout_ref" not in sleep["payload"]  # typed commands' output is not captured

    agent = int(pid_file.read_text())
    wait_until(lambda: not _alive(agent))  # the helper ended with the shell
    prtrace(buggy_repo, "record", "stop", expect=1)  # no API here: journaled only


def test_without_a_recorder_process_typed_commands_are_recorded_directly(
    buggy_repo: Path, env: Path
) -> None:
    bash = ["bash", "--norc", "--noprofile", "-i"]
    output = typed_session(
        buggy_repo, bash, "bash", ["echo x > NOTES.md", "false", "cd ranges"], "--no-recorder"
    )
    assert "not recorded" not in output, output
    assert not (buggy_repo / ".git" / "prtrace" / "recorder.json").exists()
    events = journaled(env)
    assert [
        (e["type"], e["payload"].get("argv"), e["payload"].get("exit_code")) for e in events
    ] == [
        ("cmd_run", ["bash", "-c", "echo x > NOTES.md"], 0),
        ("file_edit", None, None),
        ("cmd_run", ["false"], 1),
    ]


def test_without_a_session_nothing_is_recorded_and_nothing_breaks(
    buggy_repo: Path, env: Path
) -> None:
    lines = [f'eval "$({PY} record shell bash)"', "echo still works", "false", "exit"]
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i"],
        cwd=buggy_repo,
        input="\n".join([*lines, ""]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "still works" in done.stdout
    assert "prtrace:" not in done.stderr, done.stderr
    assert not env.exists() or journaled(env) == []


def test_record_start_refuses_an_unknown_shell(buggy_repo: Path, env: Path) -> None:
    done = subprocess.run(
        [*FAST, "record", "start", "--title", "x", "--shell", "fish"],
        cwd=buggy_repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no shell integration for 'fish'" in done.stderr
    assert not (buggy_repo / ".git" / "prtrace" / "session.json").exists()


SLOW_AGENT = """\
import os, sys, time
log = open(sys.argv[1], "a")
buffer = b""
while chunk := os.read(0, 4096):
    buffer += chunk
    fields = buffer.split(b"\\0")
    while fields[:1] and len(fields) > (size := 5 if fields[0][:1] == b"B" else 2):
        head, fields = fields[0].decode(), fields[size:]
        log.write(head + "\\n"); log.flush()
        if head == "B1":
            time.sleep(3)  # past the shell's patience (2 s), answered well before B2's ends
        os.write(1, f"{head[1:]} {'rec' if head[0] == 'B' else 'ok'}\\n".encode())
    buffer = b"\\0".join(fields)
"""


@pytest.mark.slow  # waits out the shell's 2 s patience
def test_an_answer_that_comes_too_late_is_passed_over(tmp_path: Path) -> None:
    """The shell numbers its messages: a late answer is not taken for the next one's."""
    agent = tmp_path / "agent.py"
    agent.write_text(SLOW_AGENT)
    log = tmp_path / "agent.log"
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {agent} {log}\n")
    fake.chmod(0o755)
    (tmp_path / "snippet.sh").write_text(snippet("bash", str(fake), timeout_s=2))
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i"],
        cwd=tmp_path,
        input=f"source {tmp_path / 'snippet.sh'}\necho first\necho second\nexit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr.count("did not answer") == 1, done.stderr
    assert "first" in done.stdout
    assert "second" in done.stdout
    assert log.read_text().split() == ["B1", "B2", "E3", "B4"]  # B4: `exit`, answered
