"""Prior studies: images marked as taken some time before the current study, and the
labels the model reads with them.

MedGemma 1.5 compares a current chest X-ray with a prior one (Google's
longitudinal notebook, google-health/medgemma,
cxr_longitudinal_comparison_with_hugging_face: both images in one user turn, the
earlier first, then the question). MedServer keeps that order, oldest study
first, and says which is which after each image, as the CT notebook follows each
slice with its label: "Prior study (14 months before the current one)", then
"Current study". A study's own label follows ("Prior study (…): CT slice 3 of 10
(lung window)").

Only the interval is ever kept. A date of service identifies a patient as much as
a name, so DICOM dates (StudyDate, SeriesDate, AcquisitionDate, ContentDate) are
read here, turned into the interval between two studies of one upload, and
dropped: no date is stored, shown, logged or sent. For plain images the
clinician states the interval ("prior, 14 months before").

Plain Python: nothing of Django.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from imaging.errors import ImageRejected

# The units a clinician may state an interval in, and their length in days
# (for ordering studies only; months and years on average).
UNITS = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}
UNIT_CHOICES = {"days": "days", "weeks": "weeks", "months": "months", "years": "years"}
MAX_AMOUNT = 1200  # 100 years in months: anything more is a typing slip
CURRENT_LABEL = "Current study"
# Where a DICOM file says when it was taken, the study's own date first.
DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")

T = TypeVar("T")


class IntervalRejected(ImageRejected):
    """An interval the clinician stated that is not a whole number of days, weeks,
    months or years before the current study."""


@dataclass(frozen=True)
class Interval:
    """How long before the current study a prior one was taken: `amount` `unit`."""

    amount: int
    unit: str

    @property
    def days(self) -> float:
        return self.amount * UNITS[self.unit]

    def describe(self) -> str:
        """ "14 months", "1 week"."""
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"

    def label(self) -> str:
        """What the model and the clinician read with a prior image."""
        return f"Prior study ({self.describe()} before the current one)"


def interval_from_form(amount: object, unit: object) -> Interval:
    """The interval a clinician typed: a whole `amount` (1..MAX_AMOUNT) of a `unit`
    in UNITS. Raise IntervalRejected, saying what is expected, otherwise."""
    text = str(amount if amount is not None else "").strip()
    if unit not in UNITS or not text.isdigit() or not 1 <= int(text) <= MAX_AMOUNT:
        raise IntervalRejected(
            "Say how long before the current study the prior one was taken: a whole "
            f"number from 1 to {MAX_AMOUNT} of days, weeks, months or years."
        )
    return Interval(int(text), str(unit))


def interval_between(earlier: datetime.date, later: datetime.date) -> Interval:
    """The interval from `earlier` to `later`, in the unit a report would use:
    days under two weeks, weeks under two months, months under two years, then
    years. Rounded, so that it says no more than it must."""
    days = max((later - earlier).days, 0)
    if days < 14:
        return Interval(max(days, 1), "days")
    if days < 61:
        return Interval(round(days / UNITS["weeks"]), "weeks")
    months = round(days / UNITS["months"])
    if months < 24:
        return Interval(months, "months")
    return Interval(round(days / UNITS["years"]), "years")


def dicom_date(dataset) -> datetime.date | None:
    """When the DICOM `dataset` was taken (its first valid date of DATE_KEYWORDS),
    or None. For working out an interval only: never keep what this returns."""
    for keyword in DATE_KEYWORDS:
        text = str(dataset.get(keyword) or "").strip()
        if len(text) == 8 and text.isdigit():  # DA: YYYYMMDD
            try:
                return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
            except ValueError:
                continue
    return None


def intervals_from_dates(dates: Sequence[datetime.date | None]) -> list[Interval | None] | None:
    """For studies taken on `dates`: None for the newest (the current study) and
    the interval before it for each older one. Return None when they cannot be
    told apart: fewer than two distinct dates, or any study without a date."""
    if len(set(dates)) < 2 or any(date is None for date in dates):
        return None
    newest = max(dates)
    return [None if date == newest else interval_between(date, newest) for date in dates]


def in_study_order(
    items: Sequence[T], prior_of: Callable[[T], Interval | None], label_of: Callable[[T], str]
) -> list[tuple[T, str]]:
    """Return `items` in the order the model should see them, each with the label
    it reads after the image: prior studies first, oldest first (items of one
    study keep their order), then the current study. When no item is prior, the
    order and the labels are left as they are."""
    priors = [prior_of(item) for item in items]
    if not any(priors):
        return [(item, label_of(item)) for item in items]
    ranked = sorted(range(len(items)), key=lambda i: (-(priors[i].days if priors[i] else 0.0), i))
    ordered = []
    for index in ranked:
        item, prior = items[index], priors[index]
        heading = prior.label() if prior else CURRENT_LABEL
        own = label_of(item)
        ordered.append((item, f"{heading}: {own}" if own else heading))
    return ordered
