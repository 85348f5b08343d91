"""Keeps ``swift://`` and ``minio://`` zarrstores' in every Python process.

fsspec takes, for each protocol name, the first ``fsspec.specs`` entry point that
``importlib.metadata`` lists, and that order is the order of files in site-packages: with
swiftspec installed too (it claims ``swift``), which one answers ``swift://`` would be chance.
``zarrstores-protocols.pth``, installed beside this module, imports it when Python starts. It
imports nothing itself: it waits for ``fsspec`` to be imported, then registers zarrstores'
classes by name (after fsspec has read the entry points, so they are the last word). A later
``import swiftspec``, which registers its class as well, is undone with a warning that says how
to choose swiftspec on purpose.
"""

from __future__ import annotations

import sys

CLASSES = {
    "swift": "zarrstores.swift.fs.SwiftFileSystem",
    "minio": "zarrstores.minio.fs.MinioFileSystem",
}

SWIFTSPEC_WARNING = (
    "swiftspec was imported, and registers itself for swift:// URLs; zarrstores keeps them (it "
    "reads swiftspec's swift://<host>/<account>/<container>/<path> form too). To use "
    "swiftspec anyway: fsspec.register_implementation('swift', swiftspec.SWIFTFileSystem, "
    "clobber=True)"
)


def claim(fsspec: object) -> None:
    """Make ``swift`` and ``minio`` zarrstores' in ``fsspec``'s registry."""
    registry = sys.modules["fsspec.registry"]
    for name, path in CLASSES.items():
        current = registry.registry.get(name)
        if current is not None and f"{current.__module__}.{current.__qualname__}" != path:
            registry._registry.pop(name)  # a class already loaded would otherwise stay
        fsspec.register_implementation(name, path, clobber=True)


def _before_swiftspec() -> None:
    # swiftspec registers without clobber=True: with our class loaded, its import would fail.
    registry = sys.modules.get("fsspec.registry")
    if registry is not None:
        registry._registry.pop("swift", None)


def _after_swiftspec(swiftspec: object) -> None:
    fsspec = sys.modules["fsspec"]
    if fsspec.registry.get("swift") is getattr(swiftspec, "SWIFTFileSystem", None):
        import warnings

        claim(fsspec)
        warnings.warn(SWIFTSPEC_WARNING, stacklevel=3)


def _nothing() -> None:
    pass


# module name -> (run before it executes, run after with the module)
_HOOKS = {"fsspec": (_nothing, claim), "swiftspec": (_before_swiftspec, _after_swiftspec)}


class _AfterImport:
    """A ``sys.meta_path`` entry that finds nothing itself: it lets the other finders find
    ``fsspec`` (or ``swiftspec``) and runs functions before and after the module executes."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        hooks = _HOOKS.get(name)
        if hooks is None:
            return None
        before, after = hooks
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module: object) -> None:
            before()
            execute(module)
            after(module)

        loader.exec_module = exec_module
        return spec


NO_HOOK_WARNING = (
    "zarrstores' start-up hook (zarrstores-protocols.pth) did not run, so swift:// URLs go to "
    "swiftspec in processes that do not import zarrstores. Install zarrstores into a site "
    "directory (a venv, not --target or PYTHONPATH), or import zarrstores first"
)


def warn_if_unhooked() -> None:
    """Warn when another package claims ``swift`` and this module was not loaded at start-up
    (the caller imports it only now): processes that never import zarrstores get the other."""
    from importlib.metadata import entry_points

    claims = {e.value.partition(":")[0].partition(".")[0]
              for e in entry_points(group="fsspec.specs") if e.name == "swift"}
    if claims - {"zarrstores"}:
        import warnings

        warnings.warn(NO_HOOK_WARNING, stacklevel=3)


def install() -> None:
    """Claim the protocols now if fsspec is loaded, and whenever it (or swiftspec) loads."""
    if "fsspec" in sys.modules:
        claim(sys.modules["fsspec"])
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


install()
