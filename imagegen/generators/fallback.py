"""The model first, the offline collage when the day's budget is spent or the model stays unavailable."""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

from opentelemetry import trace

from imagegen.domain import GenerationInput, Generator, Picture, Progress
from imagegen.errors import GenerationFailed, ModelUnavailable

log = logging.getLogger(__name__)

_PAUSED = "Pictures by the image model are paused for today. Please try again tomorrow."


class Budget(Protocol):
    """limits.DailyBudget, as this wrapper sees it."""

    def reached(self) -> bool: ...


class FallbackMetrics(Protocol):
    """observability.Metrics, as this wrapper sees it."""

    def served(self, model: str) -> None: ...

    def fallback(self, reason: str) -> None: ...


class FallbackGenerator:
    """Wraps the model's generator; keeps its name, so statuses and metrics still say which one was asked."""

    def __init__(
        self,
        model: Generator,
        collage: Generator,
        *,
        budget: Budget | None,
        budget_action: str,  # collage | fail (BUDGET_EXCEEDED_ACTION)
        when_unavailable: str,  # collage | none (GEMINI_FALLBACK)
        metrics: FallbackMetrics,
    ) -> None:
        self.name = model.name
        self._model = model
        self._collage = collage
        self._budget = budget
        self._budget_action = budget_action
        self._when_unavailable = when_unavailable
        self._metrics = metrics

    def generate(self, request: GenerationInput, progress: Progress) -> Picture:
        """The model's picture, or the collage's when the budget or the model's health says so."""
        if self._budget is not None and self._budget.reached():
            if self._budget_action == "fail":
                trace.get_current_span().set_attribute("imagegen.fallback", "budget_reached_fail")
                raise GenerationFailed(_PAUSED)
            return self._draw_collage(request, progress, "budget_reached")
        try:
            return self._model.generate(request, progress)
        except ModelUnavailable as unavailable:
            if self._when_unavailable != "collage":
                raise
            log.warning("image model unavailable; drawing the offline collage", extra={"reason": str(unavailable)})
            return self._draw_collage(request, progress, "model_unavailable")

    def _draw_collage(self, request: GenerationInput, progress: Progress, reason: str) -> Picture:
        self._metrics.fallback(reason)
        span = trace.get_current_span()
        span.set_attribute("imagegen.fallback", reason)
        picture = self._collage.generate(request, progress)  # the collage takes its own CPU slot
        span.set_attribute("imagegen.model", "collage")
        self._metrics.served("collage")
        return dataclasses.replace(picture, stand_in=True)
