"""Puts ``zarrstores-protocols.pth`` at the top of the wheel, editable ones included (see
``_zarrstores_protocols``): setuptools' pyproject.toml settings cannot install a top-level
``.pth`` file."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "zarrstores-protocols.pth"


class BuildWithPth(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            self.copy_file(PTH, str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


class EditableWithPth(editable_wheel):
    def _install_namespaces(self, installation_dir: str, pth_prefix: str) -> None:
        # called with the directory that becomes the editable wheel's contents
        super()._install_namespaces(installation_dir, pth_prefix)
        shutil.copy(PTH, Path(installation_dir) / PTH)


setup(cmdclass={"build_py": BuildWithPth, "editable_wheel": EditableWithPth})
