"""Ctrl-C, SIGTERM, a full disk and process exit, with real subprocesses and real signals.

Stop points are deterministic: a signal is sent once the command has printed the
progress line of the step to interrupt (never after a sleep), or by the process
itself at a chosen import. Nothing here is timed.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap

import pytest

TINY = ["cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "16,16", "-g", "8", "-c", "16"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mgcompile", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, **kw)


def signal_when(proc: subprocess.Popen, needle: str, sig: int) -> tuple[int, str]:
    """Send ``sig`` as soon as stderr shows ``needle``; returns (exit code, the whole stderr)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            proc.send_signal(sig)
            break
    rest = proc.communicate(timeout=300)[1]
    return proc.returncode, "".join(seen) + rest


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_during_the_onnx_export_stops_it_cleanly(tmp_path, sig, code, name):
    out = tmp_path / "m.onnx"
    rc, err = signal_when(start("export", *TINY, "-o", str(out)), "exporting ONNX", sig)
    assert rc == code, err
    assert err.strip().splitlines()[-1] == f"interrupted by {name}; nothing was left half-written"
    assert "Traceback" not in err and "legacy" not in err  # no fallback exporter after an interrupt
    assert leftovers(tmp_path) == []  # no model, no verification, no hidden temporary file


def test_ctrl_c_while_importing_is_one_line_and_exit_130(tmp_path):
    """SIGINT arrives while numpy is being imported (the process sends it to itself at that import)."""
    script = tmp_path / "hook.py"
    script.write_text(textwrap.dedent("""
        import builtins, os, signal, sys
        real_import = builtins.__import__
        def hooked(name, *args, **kwargs):
            if name == "numpy" and not getattr(hooked, "sent", False):
                hooked.sent = True
                os.kill(os.getpid(), signal.SIGINT)
            return real_import(name, *args, **kwargs)
        builtins.__import__ = hooked
        sys.argv = ["mgcompile", "audit", "cifar_resnet", "--json"]
        from mgcompile.__main__ import main
        main()
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == ["interrupted by SIGINT; nothing was left half-written"]


def _file_size_limit(limit: int):
    def apply() -> None:  # the kernel then fails writes beyond `limit` bytes with EFBIG, as a full disk does
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_during_convert_is_one_line_naming_the_path(tmp_path):
    out = tmp_path / "mg"
    proc = start("--quiet", "convert", *TINY, "-o", str(out), preexec_fn=_file_size_limit(64 * 1024))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: writing {out}/model.pt failed ("), lines
    assert ".tmp" not in lines[0] and "Traceback" not in stderr
    assert not out.exists()  # the folder it would have created is gone again


def test_a_full_disk_during_training_is_one_line_and_leaves_no_run_behind(tmp_path):
    out = tmp_path / "run"
    proc = start("--quiet", "train", *TINY, "--data", "digits", "--epochs", "1", "--out", str(out),
                 preexec_fn=_file_size_limit(64 * 1024))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 2, stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith(f"Error: writing {out}/checkpoint.pt failed"), lines
    assert not out.exists()


def test_exit_runs_atexit_work_and_leaves_no_thread_running(tmp_path):
    """The executable ends with os._exit (skipping torch's slow teardown) only after all pending work is done."""
    script = tmp_path / "exit.py"
    script.write_text(textwrap.dedent(f"""
        import atexit, sys, threading
        def at_exit():
            alive = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
            print("atexit ran; non-daemon threads:", alive, flush=True)
        atexit.register(at_exit)
        sys.argv = ["mgcompile", "export", *{TINY!r}, "-o", {str(tmp_path / 'm.onnx')!r}]
        from mgcompile.__main__ import main
        main()
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "atexit ran; non-daemon threads: []"
