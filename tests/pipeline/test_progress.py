"""What a job tells the person waiting (pipeline/progress.py): steps with counts and elapsed time,
a fit's stages and tuning trials, several observers hearing one fit."""

from __future__ import annotations

import io
import re
from contextlib import contextmanager

import pytest
from rich.console import Console

from customer_value.pipeline.progress import ConsoleReporter, Observers, ProgressFitObserver, Reporter, elapsed
from customer_value.training.fit import FitObserver
from customer_value.training.tuning import TrialReport

TIME = re.compile(r"^\d\d:\d\d:\d\d ")


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False, color_system=None), out


def _lines(out: io.StringIO) -> list[str]:
    return [TIME.sub("", line) for line in out.getvalue().splitlines()]


def _trial(task: str, number: int, value: float | None, state: str = "COMPLETE") -> TrialReport:
    return TrialReport(task, f"{task}-2024-07-01", number, {}, state, "binary_logloss", value, 10, 0.1)


def test_elapsed_reads_like_a_clock():
    assert [elapsed(s) for s in (4.21, 65, 3723)] == ["4.2 s", "1:05", "1:02:03"]


def test_a_plain_reporter_says_each_step_as_it_starts():
    said: list[str] = []
    plain = Reporter(said.append)
    with plain.step("scoring 10 customers", total=10) as step:
        step.update(completed=10)
    plain.stage("churn: stacking snapshots")
    plain("a line")
    assert said == ["scoring 10 customers", "churn: stacking snapshots", "a line"]
    Reporter(None).say("nobody listens")  # no say: nothing, no error


def test_the_console_leaves_one_line_per_step_with_count_time_and_outcome():
    console, out = _console()
    shown = ConsoleReporter(console)
    with shown.step("churn drivers", total=1200) as step:
        for _ in range(3):
            step.advance(400)
        step.finish("100 of 277 trees")
    with pytest.raises(OSError):
        with shown.step("writing 1,200 rows"):
            raise OSError("disk full")
    shown.say("report: r.html")
    lines = _lines(out)
    assert re.fullmatch(r"✓ churn drivers 1,200/1,200 \(\d+\.\d s, 100 of 277 trees\)", lines[0]), lines
    assert re.fullmatch(r"✗ writing 1,200 rows \(\d+\.\d s\)", lines[1]), lines
    assert lines[2] == "report: r.html"


def test_stages_of_one_part_are_one_step_and_the_last_ends_on_close():
    console, out = _console()
    shown = ConsoleReporter(console)
    for message in ("activities: one volume forecast per activity, priced", "activities: orders",
                    "activities: cost forecast from activities", "intervals: calibrating"):
        shown.stage(message)
    assert len(_lines(out)) == 1  # the activities ended when the intervals began
    shown.close()
    lines = _lines(out)
    assert [line.split(" (")[0] for line in lines] == ["✓ activities: cost forecast from activities",
                                                       "✓ intervals: calibrating"]


def test_a_fit_shows_its_stages_then_the_trials_counted_then_the_final_fit():
    console, out = _console()
    shown = ConsoleReporter(console)
    observer = ProgressFitObserver(shown, trials=3)
    observer.stage("churn: stacking snapshots")
    observer.stage("churn: 2 training snapshot(s) ...; tuning 3 trial(s)")
    with observer.part("churn"):
        observer.trial(_trial("churn", 0, 0.45))
        observer.trial(_trial("churn", 1, None, "PRUNED"))
        observer.trial(_trial("churn", 2, 0.40))
        observer.fitted(None)
    shown.close()
    lines = _lines(out)
    assert re.fullmatch(r"✓ churn: 2 training snapshot\(s\) \.\.\.; tuning 3 trial\(s\) \(\d+\.\d s\)", lines[0]), lines[0]
    assert re.fullmatch(r"✓ churn: tuning trials \(best binary_logloss 0\.4000, 1 pruned\) 3/3 \(\d+\.\d s\)",
                        lines[1]), lines[1]
    assert lines[2].startswith("✓ churn: final fit on every training row (")
    assert len(lines) == 3


def test_several_observers_hear_one_fit_in_order():
    heard: list[str] = []

    class Recording(FitObserver):
        def __init__(self, name: str) -> None:
            super().__init__(None)
            self.name = name

        def stage(self, message: str) -> None:
            heard.append(f"{self.name} stage {message}")

        @contextmanager
        def part(self, name: str):
            heard.append(f"{self.name} enter {name}")
            yield
            heard.append(f"{self.name} exit {name}")

        def trial(self, report: TrialReport) -> None:
            heard.append(f"{self.name} trial {report.number}")

        def fitted(self, part) -> None:
            heard.append(f"{self.name} fitted")

    both = Observers([Recording("a"), Recording("b")])
    both.stage("go")
    with both.part("churn"):
        both.trial(_trial("churn", 0, 0.5))
        both.fitted(None)
    assert heard == ["a stage go", "b stage go", "a enter churn", "b enter churn", "a trial 0", "b trial 0",
                     "a fitted", "b fitted", "b exit churn", "a exit churn"]
