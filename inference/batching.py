"""Several requests in one `generate` call, each with its own settings and end.

The Transformers engine runs every active request as one row of a batch.
Each row keeps its own sampling (temperature, top-k, top-p, greedy), length
limit, stop conditions and text decoder. When a new request arrives, the
running batch pauses between two tokens and a new batch starts with the
unfinished rows (their prompt plus what they wrote so far) and the
newcomers: requests are served together, never queued behind a long answer.
Rows that have ended leave at that pause, so a full batch takes a newcomer
as soon as one of its answers ends. A row's images go through the vision
tower once: their features are kept with the row and handed to every later
batch instead of the pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor, StoppingCriteria

from inference.engine import Delta, Finished, Job
from inference.thinking import ThoughtSplitter


class Detokenizer:
    """Turns token ids into text as it becomes printable.

    Decodes a sliding window (prefix/read offsets) so each token costs the
    same however long the answer grows, and holds back the bytes of a
    character that is not complete yet.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0

    def add(self, token: int) -> str:
        self.ids.append(token)
        prefix = self._decode(self.prefix_offset, self.read_offset)
        full = self._decode(self.prefix_offset, len(self.ids))
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return full[len(prefix) :]
        return ""

    def flush(self) -> str:
        prefix = self._decode(self.prefix_offset, self.read_offset)
        full = self._decode(self.prefix_offset, len(self.ids))
        self.read_offset = len(self.ids)
        return full[len(prefix) :] if len(full) > len(prefix) else ""

    def _decode(self, start: int, end: int) -> str:
        return self.tokenizer.decode(self.ids[start:end], skip_special_tokens=True)


@dataclass
class RowState:
    """One request's progress, kept across batches."""

    prompt: dict  # the encoded prompt, batch of one
    prompt_tokens: int
    max_new_tokens: int
    detokenizer: Detokenizer
    # The images' projected features (images x tokens x hidden), once encoded.
    image_features: torch.Tensor | None = None
    splitter: ThoughtSplitter = field(default_factory=ThoughtSplitter)
    generated: list[int] = field(default_factory=list)
    first_token_at: float | None = None
    reason: str | None = None  # set once the row has ended

    def inputs(self) -> dict:
        """The prompt followed by what was written so far, for a new batch."""
        if not self.generated:
            return self.prompt
        new = torch.tensor([self.generated], dtype=self.prompt["input_ids"].dtype)
        new = new.to(self.prompt["input_ids"].device)
        extended = dict(self.prompt)
        extended["input_ids"] = torch.cat([self.prompt["input_ids"], new], dim=1)
        extended["attention_mask"] = torch.cat(
            [self.prompt["attention_mask"], torch.ones_like(new)], dim=1
        )
        if "token_type_ids" in self.prompt:
            extended["token_type_ids"] = torch.cat(
                [self.prompt["token_type_ids"], torch.zeros_like(new)], dim=1
            )
        return extended


def collate(states: list[RowState], pad_token_id: int) -> dict:
    """Left-pad the rows' inputs into one batch; images follow in row order,
    as their kept features where a row has them, else as pixels.

    Token types (which tokens are an image's) go along only when a row has an
    image: without them the model builds its plain causal masks, the same for
    text, at a fraction of the cost of the image-aware ones.
    """
    rows = [state.inputs() for state in states]
    length = max(row["input_ids"].shape[1] for row in rows)
    with_images = any("pixel_values" in row for row in rows)
    features = [s.image_features for s in states if "pixel_values" in s.prompt]
    batch: dict[str, torch.Tensor] = {}
    for key, fill in (("input_ids", pad_token_id), ("attention_mask", 0), ("token_type_ids", 0)):
        if key not in rows[0] or (key == "token_type_ids" and not with_images):
            continue
        padded = []
        for row in rows:
            tensor = row[key]
            pad = torch.full(
                (1, length - tensor.shape[1]), fill, dtype=tensor.dtype, device=tensor.device
            )
            padded.append(torch.cat([pad, tensor], dim=1))
        batch[key] = torch.cat(padded, dim=0)
    if features and all(f is not None for f in features):
        batch["image_features"] = torch.cat(features, dim=0)
    elif features:
        batch["pixel_values"] = torch.cat(
            [row["pixel_values"] for row in rows if "pixel_values" in row]
        )
    return batch


class RowSampling(LogitsProcessor):
    """Each row's own temperature, top-k and top-p; greedy rows always take their best token.

    Rows that must write every token (ignore_eos) cannot end early.
    """

    def __init__(self, jobs: list[Job], states: list[RowState], eos_ids: list[int]) -> None:
        self.temperature = torch.tensor(
            [max(j.request.sampling.temperature, 1e-5) for j in jobs], dtype=torch.float32
        )[:, None]
        self.top_k = [j.request.sampling.top_k for j in jobs]
        self.top_p = [j.request.sampling.top_p for j in jobs]
        self.greedy = [j.request.sampling.temperature == 0 for j in jobs]
        self.keep_going = [j.request.sampling.ignore_eos for j in jobs]
        self.states = states
        self.eos_ids = eos_ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        scores = scores / self.temperature.to(scores.device)
        for row, state in enumerate(self.states):
            if self.keep_going[row] and len(state.generated) < state.max_new_tokens - 1:
                scores[row, self.eos_ids] = -float("inf")
            if self.greedy[row]:
                best = scores[row].argmax()
                scores[row] = -float("inf")
                scores[row, best] = 0.0
                continue
            if 0 < self.top_k[row] < scores.shape[-1]:
                kth = torch.topk(scores[row], self.top_k[row]).values[-1]
                scores[row] = scores[row].masked_fill(scores[row] < kth, -float("inf"))
            if self.top_p[row] < 1.0:
                scores[row] = _top_p(scores[row], self.top_p[row])
        return scores


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    ordered, order = torch.sort(logits, descending=True)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative > top_p
    drop[1:] = drop[:-1].clone()  # keep the token that crosses the threshold
    drop[0] = False
    logits = logits.clone()
    logits[order[drop]] = -float("inf")
    return logits


class RowProgress(StoppingCriteria):
    """Called after every decode step: hands each row its new token and ends rows.

    A row ends at end-of-turn, at its length limit, or when its request is
    cancelled; the whole batch pauses when `should_yield(running)` wants room,
    and when half of its rows or more have ended (so the rest stop paying
    for them).
    """

    def __init__(self, jobs, states, eos_ids: set[int], should_yield) -> None:
        self.jobs = jobs
        self.states = states
        self.eos_ids = eos_ids
        self.should_yield = should_yield
        self.paused = False

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        tokens = input_ids[:, -1].tolist()
        now = time.perf_counter()
        for job, state, token in zip(self.jobs, self.states, tokens, strict=True):
            if state.reason is not None:
                continue
            if state.first_token_at is None:
                state.first_token_at = now
            if token in self.eos_ids:
                state.reason = "stop"
            else:
                state.generated.append(token)
                text = state.detokenizer.add(token)
                if text:
                    emit_text(job, state, text)
                if job.should_stop():
                    state.reason = "cancelled"
                elif len(state.generated) >= state.max_new_tokens:
                    state.reason = "length"
            if state.reason is not None:
                # Its reader hears at once; the row idles masked until the batch ends.
                finish(job, state)
        running = sum(s.reason is None for s in self.states)
        done = len(self.states) - running
        if running and (self.should_yield(running) or (done > 1 and done * 2 >= len(self.states))):
            self.paused = True
        ended = [self.paused or s.reason is not None for s in self.states]
        return torch.tensor(ended, dtype=torch.bool, device=input_ids.device)


def emit_text(job: Job, state: RowState, text: str) -> None:
    for kind, piece in state.splitter.feed(text):
        job.emit(Delta(kind, piece))


def finish(job: Job, state: RowState) -> None:
    """Send the row's last text and its Finished event."""
    tail = state.detokenizer.flush()
    if tail:
        emit_text(job, state, tail)
    for kind, piece in state.splitter.flush():
        job.emit(Delta(kind, piece))
    first = state.first_token_at
    job.emit(
        Finished(
            reason=state.reason or "stop",
            prompt_tokens=state.prompt_tokens,
            completion_tokens=len(state.generated),
            first_token_seconds=None if first is None else first - job.started,
            total_seconds=time.perf_counter() - job.started,
        )
    )
