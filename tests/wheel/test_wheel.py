"""The built wheel carries playbooks, stacks, templates and inventories and works from any folder."""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("oscar_deploy-*.whl")
    return built


def test_wheel_carries_the_layers_and_no_test_doubles(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for layer in ("playbooks", "stacks", "templates", "inventories"):
        source_files = [p for p in (ROOT / layer).rglob("*") if p.is_file()]
        for source in source_files:
            assert f"oscar_deploy/_bundled/{source.relative_to(ROOT)}" in names
    assert "oscar_deploy/spec/catalogue.yaml" in names
    assert not [name for name in names if name.startswith("tests/") or "/tests/" in name]


def test_installed_wheel_runs_from_an_unrelated_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from this environment (no index needed); the package itself only from the wheel.
    new_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    dependency_dirs = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (new_site / "zz_dependencies.pth").write_text("\n".join(sorted(dependency_dirs)) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "OSCAR_DEPLOY_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import oscar_deploy, oscar_deploy.support.layers as r; print(oscar_deploy.__file__); "
            "print('\\n'.join(str(r.layer_dir(n)) for n in r.LAYERS))",
        ],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert where[0].startswith(str(new_site)), "oscar_deploy must come from the installed wheel"
    for layer, layer_path in zip(("playbooks", "stacks", "templates", "inventories"), where[1:], strict=True):
        assert layer_path == str(new_site / "oscar_deploy" / "_bundled" / layer)
        if any(p.is_file() for p in (ROOT / layer).rglob("*")):
            assert Path(layer_path).is_dir()

    executable = str(venv / "bin" / "oscar-deploy")
    help_run = subprocess.run([executable, "--help"], cwd=work, env=env, capture_output=True, text=True)
    assert help_run.returncode == 0, help_run.stderr
    assert "init" in help_run.stdout and "validate" in help_run.stdout
    init_run = subprocess.run(
        [executable, "init", "--name", "wheel-test"], cwd=work, env=env, capture_output=True, text=True
    )
    assert init_run.returncode == 0, init_run.stderr
    assert "name: wheel-test" in (work / "cluster.yaml").read_text()
    validate_run = subprocess.run([executable, "validate"], cwd=work, env=env, capture_output=True, text=True)
    assert validate_run.returncode == 0, validate_run.stderr
