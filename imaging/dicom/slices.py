"""The slices of DICOM files that one message carries: read, checked, sampled, rendered.

The chat page stores them as attachments (chat.services.attachments); the APIs
hand them to the model as they are (chat.api.message_images). Both give the
model the same pixels and labels, sample a long series the same way, and say
the same things when they do or when a file is left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from imaging.budget import ImageBudget
from imaging.dicom.read import DicomFile, DicomRejected, Series, read_series, sample_evenly
from imaging.dicom.render import RenderedSlice, render_series
from imaging.dicom.windows import AUTO, PRESETS, WINDOW_CHOICES
from imaging.priors import Interval, intervals_from_dates


@dataclass
class Slices:
    """The slices rendered for one message, and what the clinician should be told."""

    rendered: list[RenderedSlice] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


@dataclass
class SeriesToSend:
    """The series of one upload, checked, and how many slices of them fit in the message."""

    series: list[Series]
    room: int
    notices: list[str] = field(default_factory=list)
    # For each series, how long before the newest it was taken (None: the current
    # study), when the series were taken on different dates; never the dates.
    priors: list[Interval | None] = field(default_factory=list)

    def prior_of(self, number: int) -> Interval | None:
        """How long before the current study series `number` was taken (None: current)."""
        return self.priors[number] if self.priors else None

    def picks(
        self, *, window: str, budget: ImageBudget, answer_tokens: int
    ) -> Iterator[tuple[int, Series, list[int], list[str]]]:
        """For each series: its number, itself, the frames sent (evenly spaced, as
        many as fit) and what the clinician should be told about them."""
        for number, series in enumerate(self.series):
            picked = sample_evenly(len(series.frames), self.room)
            notices = series_notices(
                series,
                picked,
                window=window,
                budget=budget,
                answer_tokens=answer_tokens,
                prior=self.prior_of(number),
            )
            yield number, series, picked, notices

    def with_prior(self, number: int, rendered: list[RenderedSlice]) -> list[RenderedSlice]:
        """The slices of series `number`, carrying its interval when it is a prior study."""
        prior = self.prior_of(number)
        return (
            [dataclasses.replace(piece, prior=prior) for piece in rendered] if prior else rendered
        )


def series_for_message(
    files: Iterable[DicomFile], *, budget: ImageBudget, answer_tokens: int, other_images: int = 0
) -> SeriesToSend:
    """Read the DICOM `files` and check that their slices can go in one message
    beside its `other_images`: `room` is at most what fits the context with
    room for `answer_tokens` and what the `budget` allows per message.

    When the series were taken on different dates, the newest are the current
    study and each older one gets its interval (`priors`), never its date.
    Files that cannot be read are left out and said in the notices. Raise
    DicomRejected when none holds an image, when no image fits, or when
    several series hold more images than fit.
    """
    room = budget.room(answer_tokens, other_images)
    all_series, problems = read_series(files)
    if not all_series:
        raise DicomRejected(problems[0] if problems else "No DICOM images were found.")
    result = SeriesToSend(all_series, room)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        result.notices.append(f"{len(problems)} file(s) left out: {problems[0]}{more}")
    if room <= 0:
        raise DicomRejected(budget.no_room(answer_tokens))
    total = sum(len(series.frames) for series in all_series)
    if total > room and len(all_series) > 1:
        listing = "; ".join(f"{s.describe()}: {len(s.frames)}" for s in all_series)
        raise DicomRejected(
            f"The DICOM files hold {len(all_series)} series, {total} images in all ({listing}), "
            f"and at most {room} fit in one message; upload one series at a time."
        )
    result.priors = intervals_from_dates([series.taken for series in all_series])
    return result


def series_notices(
    series: Series,
    picked: list[int],
    *,
    window: str,
    budget: ImageBudget,
    answer_tokens: int,
    prior: Interval | None = None,
) -> list[str]:
    """What the clinician should be told about sending `picked` of `series`
    rendered with `window`: that a long series was sampled, that a CT preset
    does not apply, that it is a `prior` study."""
    notices = []
    if len(picked) < len(series.frames):
        notices.append(
            f"{series.describe()}: {len(series.frames)} slices, {len(picked)} evenly "
            f"spaced attached (the most that {budget.what_limits(answer_tokens)})."
        )
    if window in PRESETS and series.modality != "CT":
        notices.append(
            f"Window presets are for CT; {series.describe()} is shown with its own window."
        )
    if prior:
        notices.append(f"{series.describe()}: {prior.label()}.")
    return notices


def slices_for_message(
    files: Iterable[DicomFile],
    *,
    budget: ImageBudget,
    answer_tokens: int,
    other_images: int = 0,
    window: str = AUTO,
) -> Slices:
    """Render the DICOM `files` as the slices one message can carry beside its
    `other_images` (series_for_message), a longer series sampled evenly.

    `window` is a key of WINDOW_CHOICES (anything else is AUTO). Raise
    DicomRejected as series_for_message does, or for undecodable pixel data.
    """
    found = series_for_message(
        files, budget=budget, answer_tokens=answer_tokens, other_images=other_images
    )
    if window not in WINDOW_CHOICES:
        window = AUTO
    result = Slices(notices=list(found.notices))
    for number, series, picked, notices in found.picks(
        window=window, budget=budget, answer_tokens=answer_tokens
    ):
        result.notices += notices
        result.rendered += found.with_prior(number, render_series(series, picked, window))
    return result
