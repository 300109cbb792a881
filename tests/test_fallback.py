"""The model's stand-in: the offline collage drawn in place of the model takes a CPU slot like any collage."""

from __future__ import annotations

import threading

from imagegen.domain import CartLine, GenerationInput, Product
from imagegen.generators.collage import CollageGenerator
from imagegen.generators.fallback import FallbackGenerator
from imagegen.limits import DailyBudget, InProcessSpendLedger
from imagegen.observability import Metrics
from imagegen.styles import resolve_style


class CountedSlots:
    """One CPU slot (a real BoundedSemaphore) that tells whether it is held right now."""

    def __init__(self) -> None:
        self._slots = threading.BoundedSemaphore(1)
        self.held = False

    def __enter__(self) -> None:
        self._slots.acquire()
        self.held = True

    def __exit__(self, *exc: object) -> None:
        self.held = False
        self._slots.release()


def test_the_collage_drawn_past_the_budget_holds_a_cpu_slot_while_it_draws():
    budget = DailyBudget(InProcessSpendLedger(), cap_usd=0.01)
    budget.record("gemini-model", 1.0)  # the day's budget is spent: the collage stands in
    slots = CountedSlots()
    fallback = FallbackGenerator(CollageGenerator(), CollageGenerator(cpu_slots=slots), budget=budget,
                                 budget_action="collage", when_unavailable="collage", metrics=Metrics())
    request = GenerationInput((CartLine(Product("OLJCESPC7Z", "Sunglasses"), 1),), resolve_style("modern"), None, 256)
    held_while_drawing: list[bool] = []

    picture = fallback.generate(request, lambda fraction: held_while_drawing.append(slots.held))

    assert picture.stand_in
    assert held_while_drawing and all(held_while_drawing)
    assert not slots.held  # given back once drawn
