"""The boosted models' trees compiled to native code: the same predictions, several times faster.

LightGBM walks each row through every tree by reading the trees as data, and a scored row runs
through about 3,400 trees (``ValueModel.tree_counts``), so at a million customers its ``predict``
was most of the weekly job (``benchmarks/score.py``). `lleaves <https://github.com/siboehm/lleaves>`_
compiles a LightGBM model's text with LLVM into a function of the feature row: on the 1M
benchmark's models it predicts a 250,000-row batch in 3.7 s against LightGBM's 26.6 s, equal to
LightGBM's output to 1e-9 relative (the comparisons in double precision, the same leaf values
added in a different order).

Compiling costs about 0.04 s per tree on two cores, once per model version: objects are cached under
``settings.compiled_trees_dir`` by the SHA-256 of the model text, the compiler's version and this
machine's CPU (compiled code runs where it was compiled). So the weekly job compiles once and
every later scoring loads the objects in milliseconds. There are two builds of an object:

- **full** (``<key>.o``): each tree inlined into its block, the fastest code (the 1M benchmark's
  model stage 15.5 s against LightGBM's 79 s), 143 s to compile that model's 3,393 trees;
- **quick** (``<key>.quick.o``): the trees left as functions (lleaves' ``finline=False``), about
  six times faster to compile (25 s for the same model) and about a third slower to run (20.5 s),
  still about four times faster than LightGBM.

``settings.compiled_trees`` decides:

- ``auto`` (default): use the cached objects of this model (full before quick); compile the
  missing ones quickly when the scored base is large enough (:data:`COMPILE_PAYS_FROM` customers)
  for that to pay for itself within the run; otherwise LightGBM scores, and the progress line
  says how to compile;
- ``always``: compile the full build of what lacks one, then score with it (what
  ``customer-value compile`` does once per model version);
- ``never``: LightGBM.

Only plain predictions go through the compiled code; explanations (``pred_contrib``,
``pred_leaf``), raw scores and fewer trees go to the LightGBM booster it wraps. The Spark path
keeps LightGBM (its executors unpickle the model; compiled functions are process-local).
lleaves is the optional extra ``customer-value[compiled]``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np

CompiledTrees = Literal["auto", "always", "never"]
COMPILE_PAYS_FROM = 400_000
"""Customers from which ``auto`` compiles missing objects (the quick build) before scoring:
measured on the 1M benchmark's models, the quick build took 25 s on two cores and saved ~74 µs
per scored customer against LightGBM (79 s against 20.5 s for the model stage over 786,495),
so it pays for itself within one run from about 340,000 customers."""
COMPILE_HINT_FROM = 100_000
"""Customers from which scoring with LightGBM says how to compile (below it the hint is noise)."""
INSTALL_HINT = "pip install 'customer-value[compiled]'"


def available() -> bool:
    """Whether the compiler (lleaves with its llvmlite) can be imported here."""
    try:
        import lleaves  # noqa: F401
    except Exception:  # an llvmlite that does not match fails at import, not only a missing package
        return False
    return True


def _require() -> Any:
    try:
        import lleaves
    except Exception as error:  # noqa: BLE001 - any import failure means the same to the user
        raise RuntimeError(f"compiled trees need lleaves ({error}); install it with: {INSTALL_HINT}") from error
    return lleaves


def compiler_fingerprint() -> str:
    """What a compiled object depends on besides the model: compiler versions and the CPU."""
    import llvmlite.binding as llvm

    versions = [f"{p}={metadata.version(p)}" for p in ("lleaves", "llvmlite")]
    return ";".join([*versions, platform.machine(), llvm.get_host_cpu_name()])


def model_key(model_text: str, fingerprint: str) -> str:
    """The cache name of one booster's compiled object."""
    return hashlib.sha256(f"{fingerprint}\n{model_text}".encode()).hexdigest()[:32]


class CompiledBooster:
    """A LightGBM booster whose plain predictions run the compiled code (see the module
    docstring); every other call, and every attribute, is the wrapped booster's."""

    def __init__(self, booster: lgb.Booster, compiled: Any, num_threads: int, source: Path | None = None) -> None:
        self.booster = booster
        self.compiled = compiled
        self.source = source
        """The compiled object it runs (the full or the quick build), when loaded from the cache."""
        self.num_threads = num_threads
        self.trees = booster.current_iteration()

    def predict(self, data: Any, num_iteration: int | None = None, **kwargs: Any) -> np.ndarray:
        plain = not any(kwargs.get(k) for k in ("raw_score", "pred_leaf", "pred_contrib"))
        every_tree = num_iteration is None or num_iteration <= 0 or num_iteration >= self.trees
        if plain and every_tree and isinstance(data, np.ndarray) and data.ndim == 2:
            rows = np.ascontiguousarray(data, dtype=np.float64)
            return np.asarray(self.compiled.predict(rows, n_jobs=self.num_threads), dtype=float)
        return self.booster.predict(data, num_iteration=num_iteration, **kwargs)

    def __getattr__(self, name: str) -> Any:  # model_to_string, feature_name, ... of the booster
        return getattr(self.booster, name)


@dataclass(frozen=True)
class BoosterSlot:
    """Where a fitted model keeps one booster: ``getattr(owner, attribute)``."""

    owner: Any
    attribute: str

    @property
    def booster(self) -> lgb.Booster:
        value = getattr(self.owner, self.attribute)
        return value.booster if isinstance(value, CompiledBooster) else value


def booster_slots(models: list[Any]) -> list[BoosterSlot]:
    """Every place the fitted ``models`` hold a LightGBM booster, found through their attributes
    (our estimators, their dicts of per-activity models and their fitted parts). A booster kept
    in two places (a model's ``booster_`` beside its fitted part's) has two slots: both are swapped."""
    slots: list[BoosterSlot] = []
    seen: set[int] = set()

    def visit(value: Any) -> Iterator[Any]:
        if isinstance(value, dict):
            yield from value.values()
        elif isinstance(value, (list, tuple)):
            yield from value
        elif type(value).__module__.startswith("customer_value.boosted") and hasattr(value, "__dict__"):
            for attribute, item in vars(value).items():
                if isinstance(item, (lgb.Booster, CompiledBooster)):
                    slots.append(BoosterSlot(value, attribute))
                else:
                    yield item

    pending = list(models)
    while pending:
        value = pending.pop()
        if value is not None and id(value) not in seen:
            seen.add(id(value))
            pending.extend(visit(value))
    return slots


def _compile_one(model_text_path: str, object_path: str, quick: bool = False) -> str:
    """One booster's model text to a cached object (a process of its own: LLVM holds the GIL);
    ``quick``: the trees not inlined (see the module docstring)."""
    lleaves = _require()
    partial = Path(object_path).with_suffix(f".{os.getpid()}.partial")
    lleaves.Model(model_file=model_text_path).compile(cache=str(partial), finline=not quick)
    partial.replace(object_path)  # whole or absent, also when two jobs compile the same model
    return object_path


@dataclass
class CompiledTreesCache:
    """The directory of compiled objects: ``<key>.txt`` (the model text lleaves reads its
    structure from), ``<key>.o`` (the full build's code) and ``<key>.quick.o`` (the quick build's)."""

    directory: Path
    fingerprint: str
    _keys: dict[int, str] = field(default_factory=dict)

    def paths(self, booster: lgb.Booster, quick: bool = False) -> tuple[Path, Path]:
        """(model text, compiled object) of ``booster``: the full build's object, or the quick one's."""
        if id(booster) not in self._keys:  # the model text of 1,000 trees takes a while to write out
            self._keys[id(booster)] = model_key(booster.model_to_string(), self.fingerprint)
        key = self._keys[id(booster)]
        return self.directory / f"{key}.txt", self.directory / f"{key}{'.quick' if quick else ''}.o"

    def cached(self, booster: lgb.Booster) -> Path | None:
        """The object ``booster`` runs from: the full build when there is one, else the quick one."""
        for quick in (False, True):
            obj = self.paths(booster, quick)[1]
            if obj.exists():
                return obj
        return None

    def missing(self, boosters: list[lgb.Booster], quick: bool = False) -> list[lgb.Booster]:
        """The ``boosters`` without an object: without any (``quick``), or without the full build."""
        if quick:
            return [b for b in boosters if self.cached(b) is None]
        return [b for b in boosters if not self.paths(b)[1].exists()]

    def compile(self, boosters: list[lgb.Booster], workers: int,
                progress: Callable[[int, int], None] | None = None, quick: bool = False) -> dict[str, str]:
        """Compile the ``boosters`` that lack the build asked for (full, or ``quick``), the largest
        first, on ``workers`` processes; the error of each that could not be compiled, by object path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        jobs: list[tuple[str, str]] = []
        for booster in sorted(self.missing(boosters, quick), key=lambda b: -b.current_iteration()):
            text, obj = self.paths(booster, quick)
            if not text.exists():
                with tempfile.NamedTemporaryFile("w", dir=self.directory, suffix=".tmp", delete=False) as handle:
                    handle.write(booster.model_to_string())
                os.chmod(handle.name, 0o644)  # readable like the objects beside it
                Path(handle.name).replace(text)
            jobs.append((str(text), str(obj)))
        failed: dict[str, str] = {}
        if not jobs:
            return failed
        # spawned, not forked: a fork of a process that ran LightGBM's OpenMP threads may hang
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_compile_one, text, obj, quick): obj for text, obj in jobs}
            for done, future in enumerate(as_completed(futures), start=1):
                try:
                    future.result()
                except Exception as error:  # noqa: BLE001 - that booster stays on LightGBM, said so
                    failed[futures[future]] = f"{type(error).__name__}: {error}"
                if progress is not None:
                    progress(done, len(jobs))
        return failed

    def load(self, booster: lgb.Booster, obj: Path, num_threads: int) -> CompiledBooster:
        """``booster`` running the cached object ``obj`` (its :meth:`cached` one)."""
        lleaves = _require()
        text, _ = self.paths(booster)
        compiled = lleaves.Model(model_file=str(text))
        compiled.compile(cache=str(obj))  # loads the object; the flags only matter when compiling
        return CompiledBooster(booster, compiled, num_threads, obj)


def use_compiled_trees(models: list[Any], directory: Path, mode: CompiledTrees, customers: int,
                       num_threads: int = 2, say: Callable[[str], None] | None = None,
                       progress: Callable[[int, int], None] | None = None) -> bool:
    """Swap the boosters of ``models`` for their compiled code as ``mode`` says (see the module
    docstring), compiling into ``directory`` when it should; whether they now run compiled. A
    booster the compiler refuses (an objective lleaves does not know) stays on LightGBM, said so.

    ``customers`` is the size of the base about to be scored (``auto`` compiles the quick build
    from :data:`COMPILE_PAYS_FROM`)."""
    say = say or (lambda _text: None)
    slots = booster_slots(models)
    if mode == "never" or not slots:
        return False
    if not available():
        if mode == "always":
            _require()
        if customers >= COMPILE_HINT_FROM:
            say(f"scoring with LightGBM (compiled trees are faster on large bases: {INSTALL_HINT})")
        return False
    cache = CompiledTreesCache(Path(directory), compiler_fingerprint())
    boosters = list({id(s.booster): s.booster for s in slots}.values())
    quick = mode == "auto"  # auto compiles the quick build; always (the compile command) the full one
    missing = cache.missing(boosters, quick)
    trees = sum(b.current_iteration() for b in missing)
    if missing and mode == "auto" and customers < COMPILE_PAYS_FROM:
        if customers >= COMPILE_HINT_FROM:
            say(f"scoring with LightGBM: {len(missing)} of {len(boosters)} boosters ({trees:,} trees) are not "
                f"compiled in {directory}; compile them once per model version with `customer-value compile` or "
                "--compiled-trees always (about 0.04 s a tree), and later scorings of this model run several "
                "times faster")
        return False
    if missing:
        build = ("quickly (`customer-value compile` makes the fastest code, once per model version)" if quick
                 else "once for this model version")
        say(f"compiling {len(missing)} boosters ({trees:,} trees) to native code in {directory}, {build}")
        for obj, error in cache.compile(missing, num_threads, progress, quick).items():
            say(f"kept on LightGBM, the compiler refused {obj}: {error}")
    loaded: dict[int, CompiledBooster] = {}
    for slot in slots:
        booster = slot.booster
        if id(booster) not in loaded and (obj := cache.cached(booster)) is not None:
            loaded[id(booster)] = cache.load(booster, obj, num_threads)
        if id(booster) in loaded:
            setattr(slot.owner, slot.attribute, loaded[id(booster)])
    return bool(loaded)
