"""What a job tells the person waiting for it: lines, and steps with a count and the time they took.

A job talks to a :class:`Reporter`: :meth:`Reporter.say` for a line, :meth:`Reporter.step` around
anything that may take more than a moment (with a total when it counts something). This base class
turns both into plain lines for a ``say`` callable (a notebook, a benchmark, a test); the command
line's :class:`ConsoleReporter` draws them as rich progress bars with counts and elapsed time, and
prints one line per finished step.

A fit reports to a :class:`~customer_value.training.fit.FitObserver`; :class:`ProgressFitObserver`
turns what it hears into steps (each stage until the next, the tuning trials as a bar with the
best validation loss so far, the final fit), and :class:`Observers` lets the training job hand the
same fit to it and to the MLflow observer at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any

from customer_value.training.fit import FitObserver, FittedPart
from customer_value.training.tuning import TrialReport

Say = Callable[[str], None]


def elapsed(seconds: float) -> str:
    """``4.2 s``, ``1:05``, ``1:02:03``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Step:
    """One step of a job: ``advance`` its count, ``describe`` it anew; knows when it started."""

    def __init__(self, description: str, total: int | None = None,
                 on_change: Callable[["Step"], None] | None = None) -> None:
        self.description = description
        self.total = total
        self.completed = 0
        self.started = time.perf_counter()
        self.outcome = ""
        self.on_change = on_change

    def advance(self, amount: int = 1) -> None:
        self.completed += amount
        self._changed()

    def update(self, completed: int | None = None, total: int | None = None, description: str | None = None) -> None:
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def finish(self, outcome: str = "") -> None:
        """What the finished step's line adds (e.g. ``best logloss 0.41``)."""
        self.outcome = outcome

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def line(self) -> str:
        count = f" {self.completed:,}/{self.total:,}" if self.total else ""
        outcome = f", {self.outcome}" if self.outcome else ""
        return f"{self.description}{count} ({elapsed(self.seconds)}{outcome})"


class Reporter:
    """Lines to ``say`` (if any): a step says its description when it starts and nothing else."""

    def __init__(self, say: Say | None = None) -> None:
        self._say = say

    def say(self, message: str) -> None:
        if self._say is not None:
            self._say(message)

    def __call__(self, message: str) -> None:  # a Reporter is also a ``say`` callable
        self.say(message)

    @contextmanager
    def step(self, description: str, total: int | None = None) -> Iterator[Step]:
        step = Step(description, total)
        self.say(description)
        yield step

    # a step that lasts until the next one (what a fit's stages are)
    def stage(self, message: str) -> None:
        self.say(message)

    def close(self) -> None:
        """End whatever is still shown (the last stage)."""


def reporter(progress: Reporter | Say | None) -> Reporter:
    """``progress`` as a :class:`Reporter` (a plain callable gets lines)."""
    return progress if isinstance(progress, Reporter) else Reporter(progress)


class ConsoleReporter(Reporter):
    """Rich progress bars on ``console`` (standard error for the command line): a spinner, the
    description, a bar with ``done/total`` when the step counts something, and the elapsed time.
    A finished step leaves one line: ``✓ scoring 1,000,000 customers (42.0 s)``. Lines carry the
    time of day. On a console that is not a terminal only the lines are written."""

    def __init__(self, console: Any) -> None:
        super().__init__(None)
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.fields[count]}"), TimeElapsedColumn(), console=console,
                                  transient=True, redirect_stdout=False, redirect_stderr=False)
        self._live = console.is_terminal
        self._started = False
        self._tasks: dict[int, Any] = {}
        self._stage: tuple[Step, Any] | None = None

    def _print(self, text: str) -> None:
        self.console.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {text}", highlight=False)

    def say(self, message: str) -> None:
        self._print(message)

    def _open(self, step: Step) -> Any:
        if not self._live:
            return None
        if not self._started:
            self._progress.start()
            self._started = True
        return self._progress.add_task(step.description, total=step.total, count=_count(step))

    def _refresh(self, step: Step, task: Any) -> None:
        if task is not None:
            self._progress.update(task, completed=step.completed, total=step.total, description=step.description,
                                  count=_count(step))

    def _close(self, step: Step, task: Any, failed: bool = False) -> None:
        if task is not None:
            self._progress.remove_task(task)
            if not self._progress.tasks:
                self._progress.stop()
                self._started = False
        mark = "[red]✗[/red]" if failed else "[green]✓[/green]"
        self._print(f"{mark} {step.line()}")

    @contextmanager
    def step(self, description: str, total: int | None = None) -> Iterator[Step]:
        self._end_stage()
        step = Step(description, total)
        task = self._open(step)
        step.on_change = lambda changed: self._refresh(changed, task)
        try:
            yield step
        except BaseException:
            self._close(step, task, failed=True)
            raise
        self._close(step, task)

    def stage(self, message: str) -> None:
        """A step that lasts until the next stage or step. Consecutive stages of one part
        (``"activities: orders"``, ``"activities: invoices"``) are one step that says the latest."""
        if self._stage is not None and _part(message) and _part(message) == _part(self._stage[0].description):
            self._stage[0].update(description=message)
            return
        self._end_stage()
        step = Step(message)
        task = self._open(step)
        step.on_change = lambda changed: self._refresh(changed, task)
        self._stage = (step, task)

    def _end_stage(self) -> None:
        if self._stage is not None:
            step, task = self._stage
            self._stage = None
            self._close(step, task)

    def close(self) -> None:
        self._end_stage()
        if self._started:
            self._progress.stop()
            self._started = False


def _count(step: Step) -> str:
    return f"{step.completed:,}/{step.total:,}" if step.total else ""


def _part(message: str) -> str:
    """``"churn"`` of ``"churn: stacking snapshots"``; ``""`` when a message names no part."""
    head, sep, _ = message.partition(": ")
    return head if sep and " " not in head else ""


class ProgressFitObserver(FitObserver):
    """A fit told to a :class:`Reporter`: each stage a step until the next, each part's tuning
    trials a bar (``trials`` of them, the best validation loss so far), then its final fit."""

    def __init__(self, progress: Reporter | Say | None, trials: int) -> None:
        super().__init__(None)
        self.reporter = reporter(progress)
        self.trials = trials
        self._tuning: dict[str, Any] = {}

    def stage(self, message: str) -> None:
        self._end_tuning()
        self.reporter.stage(message)

    def trial(self, report: TrialReport) -> None:
        state = self._tuning.get(report.task)
        if state is None:
            self.reporter.close()  # the stage that announced the tuning
            stack = ExitStack()
            step = stack.enter_context(self.reporter.step(f"{report.task}: tuning trials", self.trials))
            state = self._tuning[report.task] = {"stack": stack, "step": step, "best": None, "pruned": 0}
        if report.state == "PRUNED":
            state["pruned"] += 1
        elif report.value is not None and (state["best"] is None or report.value < state["best"]):
            state["best"] = report.value
        step = state["step"]
        best = "" if state["best"] is None else f"best {report.metric} {state['best']:.4f}"
        pruned = f"{state['pruned']} pruned" if state["pruned"] else ""
        outcome = ", ".join(p for p in (best, pruned) if p)
        step.update(completed=report.number + 1, description=f"{report.task}: tuning trials" + (f" ({outcome})" if outcome else ""))
        if step.total is not None and step.completed >= step.total:
            self._end_tuning(final_fit=report.task)

    def _end_tuning(self, final_fit: str | None = None) -> None:
        for task, state in list(self._tuning.items()):
            if state.get("done"):
                continue
            state["done"] = True
            state["stack"].close()
            if final_fit == task:
                self.reporter.stage(f"{task}: final fit on every training row")

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        try:
            yield
        finally:
            self._end_tuning()

    def fitted(self, part: FittedPart) -> None:
        self._end_tuning()
        self.reporter.close()


class Observers(FitObserver):
    """Several observers hearing one fit, in order (parts nest: the first one's is outermost)."""

    def __init__(self, observers: Sequence[FitObserver]) -> None:
        super().__init__(None)
        self.observers = list(observers)

    def stage(self, message: str) -> None:
        for observer in self.observers:
            observer.stage(message)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        with ExitStack() as stack:
            for observer in self.observers:
                stack.enter_context(observer.part(name))
            yield

    def trial(self, report: TrialReport) -> None:
        for observer in self.observers:
            observer.trial(report)

    def fitted(self, part: FittedPart) -> None:
        for observer in self.observers:
            observer.fitted(part)


class StageClock:
    """Seconds per stage, summed over repeats (batches, partitions): what the benchmarks print.
    ``with clock("features"): ...`` adds the block's wall time to ``seconds["features"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
