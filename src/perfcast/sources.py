"""Where the numbers in perfcast's catalogs come from: one type for hardware and models.

Every figure from outside (a datasheet peak, a model's config, a published measurement)
names a :class:`Source`. Catalog models derive from :class:`Frozen`: immutable, and a
field that is not in the schema is an error, not a silent extra.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """An immutable catalog record that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Frozen):
    """A datasheet, whitepaper, paper, model card, config file, price page or measurement."""

    title: str
    url: str | None = None
