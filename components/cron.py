"""Cron schedules as Kubernetes CronJobs and Longhorn RecurringJobs parse them.

Both run robfig/cron's ParseStandard: Kubernetes (pkg/apis/batch/validation/validation.go
validateScheduleFormat) with robfig/cron/v3 v3.0.1, longhorn-manager 1.10.1 (datastore/longhorn.go:5574
ValidateRecurringJob, go.mod:83) with robfig/cron v1.2.0. Longhorn then runs each RecurringJob as a
CronJob with the same schedule (controller/recurring_job_controller.go:491 newCronJob), so a Longhorn
schedule passes both parsers. For five fields and the named macros v1.2.0 and v3.0.1 accept the same
text (parser.go getRange and parseDescriptor are unchanged but for the error wording); v3 alone
accepts a TZ=/CRON_TZ= prefix, which v1 counts as a sixth field and Kubernetes refuses on create
("cannot use TZ or CRON_TZ in schedule", validateScheduleFormat). What croniter accepts on top of
that, and both parsers refuse: L, W, #, H, 7 for Sunday, and a seconds or a year field.

Two deliberate narrowings, each stricter than the parsers: ``@every <duration>`` (parsed, but not a
schedule the CronJob documentation lists, and it counts from the controller's last run rather than
the clock), and a field made only of commas (parsed to "never": the job would never run).
"""

from __future__ import annotations

import re

# robfig/cron v1.2.0 spec.go:19-45 (v3.0.1 the same): each field's bounds and, for month and
# weekday, the names parseIntOrName looks up after strings.ToLower.
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_WEEKDAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _WEEKDAYS),
)
# parser.go parseDescriptor: the macros both versions know, matched exactly (no spaces around).
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# Go's strconv.Atoi, which mustParseInt calls: an optional sign and ASCII digits, within int64.
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1

ACCEPTED_FORM = (
    "a five-field cron schedule as Kubernetes and Longhorn parse it (robfig/cron ParseStandard): minute 0-59, hour "
    "0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-6 or sun-sat (0 is Sunday, 7 is refused), each field "
    "*, ?, a number, a range a-b, a step */n or a-b/n, or a comma list of those; or one of " + ", ".join(MACROS) + ". "
    "No L, W, #, H, seconds or year field, and no TZ=/CRON_TZ= prefix"
)


def _number(text: str, names: dict[str, int]) -> int:
    """parser.go parseIntOrName and mustParseInt."""
    if text.lower() in names:
        return names[text.lower()]
    if not _GO_INT.fullmatch(text) or abs(int(text)) > _INT64_MAX:
        raise ValueError(f"{text!r} is not a number{' or a name' if names else ''}")
    if int(text) < 0:
        raise ValueError(f"negative number {text!r}")
    return int(text)


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> None:
    """parser.go getRange: number | number "-" number [ "/" number ], or * and ? for the whole range."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high  # getRange ignores whatever follows a '-' here
    else:
        if len(low_and_high) > 2:
            raise ValueError(f"too many hyphens in {expr!r}")
        start = _number(low_and_high[0], names)
        end = _number(low_and_high[1], names) if len(low_and_high) == 2 else start
    if len(range_and_step) > 2:
        raise ValueError(f"too many slashes in {expr!r}")
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], {})
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
    if start < low or end > high:
        raise ValueError(f"{expr!r} leaves {low}-{high}")
    if start > end:
        raise ValueError(f"{expr!r} starts after it ends")
    if step == 0:
        raise ValueError(f"step 0 in {expr!r}")


def schedule_problem(schedule: str) -> str | None:
    """Why Kubernetes or Longhorn would refuse this schedule, or None when both accept it."""
    if "TZ" in schedule:
        return "a time zone prefix (TZ=, CRON_TZ=): Kubernetes refuses it in a CronJob's schedule"
    if schedule.startswith("@"):
        if schedule in MACROS:
            return None
        if schedule.startswith("@every "):
            return "@every: use a five-field schedule (the CronJob documentation lists only the macros)"
        return f"the macro {schedule!r} is not one of {', '.join(MACROS)}"
    fields = schedule.split()
    if len(fields) != len(FIELDS):
        return f"{len(fields)} fields where ParseStandard takes exactly {len(FIELDS)}"
    for text, (what, low, high, names) in zip(fields, FIELDS, strict=True):
        ranges = [r for r in text.split(",") if r]  # strings.FieldsFunc drops empty pieces
        if not ranges:
            return f"the {what} field {text!r} names no time, so the job would never run"
        try:
            for expr in ranges:
                _range(expr, low, high, names)
        except ValueError as err:
            return f"the {what} field ({low}-{high}): {err}"
    return None
