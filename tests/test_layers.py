"""The layers stay apart: the Python layer reaches compiled network code only through
the seam (streamrnn.core.backend), and the compiled core imports nothing above it but
the optimizer and loss steps it runs."""

import ast
from pathlib import Path

import streamrnn

PACKAGE = Path(streamrnn.__file__).resolve().parent
KERNELS = {"kernels", "bptt", "tbptt", "encdec", "native", "_simd", "_activations"}
ABOVE_CORE = {"models", "stream", "learner", "seq2seq", "backfill", "cli", "demo", "report",
              "evaluate", "adapters", "compiling", "relative"}  # fmt: skip


def imported(path):
    """The package modules a file imports, as dotted names below ``streamrnn``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(parts[: len(parts) - node.level])
            elif node.module and node.module.startswith("streamrnn"):
                base, node.module = [], node.module[len("streamrnn.") :]
            else:
                continue
            module = base + (node.module.split(".") if node.module else [])
            out.add(".".join(module))
            out.update(".".join(module + [a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name[len("streamrnn.") :] for a in node.names
                       if a.name.startswith("streamrnn."))  # fmt: skip
    return out


def test_only_the_core_imports_kernel_modules():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "core":
            continue
        kernel = {m for m in imported(path) if m.startswith("core.") and m[5:] in KERNELS}
        if kernel:
            offenders[str(path.relative_to(PACKAGE))] = sorted(kernel)
    assert offenders == {}


def test_the_core_does_not_import_the_layers_above_it():
    offenders = {}
    for path in (PACKAGE / "core").rglob("*.py"):
        above = {m for m in imported(path) if m.split(".")[0] in ABOVE_CORE}
        if above:
            offenders[str(path.relative_to(PACKAGE))] = sorted(above)
    assert offenders == {}


def test_the_checker_sees_imports_in_both_forms():
    assert {"core.kernels", "core.tbptt"} <= imported(PACKAGE / "core" / "backend.py")
    assert "core.backend" in imported(PACKAGE / "models.py")
    assert "learner" in imported(PACKAGE / "backfill" / "runner.py")
