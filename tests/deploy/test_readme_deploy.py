"""README's "Production" commands: the backup and restore lines are run as written (into temporary folders), the
files the compose and kubectl lines name exist; the compose file and the manifests themselves are tested in
tests/backend/test_compose.py, tests/integration/test_compose_smoke.py and tests/deploy/test_kubernetes.py."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from harness.stack import REPO, migrate, prunelab, sqlite_stack

README = (REPO / "README.md").read_text()
SECTION = README[
    README.index("## Production: PostgreSQL, Redis, many workers") : README.index("### Workers on other machines")
]


def command_lines(program: str) -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", SECTION, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(part) for line in lines for part in line.split("&&") if part.strip().startswith(program)]


def test_readmes_backup_and_restore_lines_run_as_written(tmp_path: Path) -> None:
    lines = command_lines("prunelab")
    assert [line[1] for line in lines] == ["backup", "restore"]
    (folder,) = {line[2] for line in lines}  # the same folder: what one wrote, the other reads
    assert folder.startswith("/")
    original, restored = sqlite_stack(tmp_path / "original"), sqlite_stack(tmp_path / "restored")
    migrate(original)
    for config, (_, verb, _, *options) in zip((original, restored), lines, strict=True):
        done = subprocess.run(prunelab(verb, str(tmp_path / folder.lstrip("/")), *options), env=config.env(),
                              cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "restored" / "prunelab.sqlite").is_file()


def test_the_files_readmes_compose_and_kubectl_lines_name_exist() -> None:
    (copy,) = command_lines("cp")
    assert copy == ["cp", ".env.example", ".env"] and (REPO / ".env.example").is_file()
    applied = [line[index + 1] for line in command_lines("kubectl") for index, word in enumerate(line) if word == "-f"]
    assert applied and all((REPO / path).is_file() for path in applied), applied
    manifests = {path.relative_to(REPO).as_posix() for path in (REPO / "deploy" / "kubernetes").glob("*.yaml")}
    assert manifests - set(applied) == {"deploy/kubernetes/worker-gpu.yaml"}  # the alternative to worker-cpu.yaml
    assert "worker-gpu.yaml" in SECTION
