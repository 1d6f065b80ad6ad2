"""Build the lepton extension with CMake for `pip install --no-build-isolation bindings/python`.

The wheel bundles liblepton_runtime.so and liblepton_train.so in lepton.libs/ next to the module, whose
RPATH points there; LibTorch stays a shared system library. Set CMAKE_BUILD_PARALLEL_LEVEL to use more cores.
NOTE: static Lepton libraries would need no bundling, but they fail to link today because
lepton::detail::edit_distance is defined in both src/runtime/table.cpp and src/train/requirements.cpp.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
PROJECT = HERE.parents[1]


def project_version() -> str:
    text = (PROJECT / "CMakeLists.txt").read_text(encoding="utf-8")
    match = re.search(r"project\(lepton VERSION (\d+\.\d+\.\d+)", text)
    if match is None:
        raise RuntimeError(f"no 'project(lepton VERSION x.y.z' line in {PROJECT / 'CMakeLists.txt'}")
    return match.group(1)


class CMakeBuild(build_ext):
    """Configure and build the lepton_python target, then copy the module and its stubs."""

    def build_extension(self, extension: Extension) -> None:
        build_dir = pathlib.Path(self.build_temp).resolve() / "cmake"
        configure = [
            "cmake", "-S", str(PROJECT), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=ON",
            "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",
            "-DLEPTON_PYTHON_RPATH=$ORIGIN/lepton.libs",
            "-DLEPTON_BUILD_TESTS=OFF",
            "-DLEPTON_BUILD_EXAMPLES=OFF",
            "-DLEPTON_BUILD_PYTHON=ON",
            f"-DLEPTON_PYTHON_EXECUTABLE={sys.executable}",
        ]
        subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "lepton_python", "-j", jobs], check=True)

        built = next((build_dir / "bindings" / "python").glob("lepton*.so"), None)
        if built is None:
            raise RuntimeError(f"CMake did not build the module; look for 'lepton: skipping' in its output "
                               f"({build_dir})")
        target = pathlib.Path(self.get_ext_fullpath(extension.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, target)
        shutil.copy2(HERE / "lepton.pyi", target.parent / "lepton.pyi")

        libraries = target.parent / "lepton.libs"
        libraries.mkdir(exist_ok=True)
        for name in ("liblepton_runtime.so", "liblepton_train.so"):
            shutil.copy2(build_dir / name, libraries / name)


setup(
    version=project_version(),
    ext_modules=[Extension("lepton", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    py_modules=[],
    zip_safe=False,
)
