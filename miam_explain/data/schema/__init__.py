"""The token schema: which token is which, the named groupings of tokens, and selectors.

* :mod:`~miam_explain.data.schema.token_schema`: :class:`TokenSchema`, the one adapter
  between the model input and the players of an explanation;
* :mod:`~miam_explain.data.schema.layout`: :class:`ModalityLayout`, one modality's tokens,
  read from a dataset's attributes;
* :mod:`~miam_explain.data.schema.groupings`: the built-in groupings, user groupings
  (TOML; :func:`read_groupings` reads a ``groupings=`` option) and :class:`Players`;
* :mod:`~miam_explain.data.schema.selectors`: the ``grouping:member`` and
  ``grouping:start..end`` syntax;
* :mod:`~miam_explain.data.schema.describe`: the coordinates of each player (modality, band,
  channel, variable, year, patch) and one number per token for a site;
* :mod:`~miam_explain.data.schema.messages`: wording of the error messages.

``docs/schema.md`` describes the token order, the groupings and the selectors.
"""

from __future__ import annotations

from miam_explain.data.schema.describe import PLAYER_COORDS, player_coords, token_summaries
from miam_explain.data.schema.groupings import BUILTIN_GROUPINGS, GroupingSpec, GroupingsInput, Players, read_groupings
from miam_explain.data.schema.layout import ModalityLayout
from miam_explain.data.schema.token_schema import SCHEMA_FORMAT, TokenSchema

__all__ = [
    "BUILTIN_GROUPINGS",
    "PLAYER_COORDS",
    "SCHEMA_FORMAT",
    "GroupingSpec",
    "GroupingsInput",
    "ModalityLayout",
    "Players",
    "TokenSchema",
    "player_coords",
    "read_groupings",
    "token_summaries",
]
