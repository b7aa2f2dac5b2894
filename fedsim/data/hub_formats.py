"""Where each online data set lives and which columns hold what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class HubFormat:
    """Where an online data set lives and which columns hold what.

    Attributes:
        hub_id: the Hugging Face Hub data set.
        kind: ``image`` (an image column) or ``text`` (string windows and next characters).
        x_column: the image, or the input window (a string).
        label_column: the class label, or the next character (a string).
        group_column: the natural user (writer, speaking role), or None.
        has_test_split: whether the Hub data set ships a ``test`` split.
    """

    hub_id: str
    kind: Literal["image", "text"]
    x_column: str
    label_column: str
    group_column: str | None = None
    has_test_split: bool = True


HUB_FORMATS: dict[str, HubFormat] = {
    "mnist": HubFormat("ylecun/mnist", "image", "image", "label"),
    "femnist": HubFormat(
        "flwrlabs/femnist", "image", "image", "character", "writer_id", has_test_split=False
    ),
    "cifar10": HubFormat("uoft-cs/cifar10", "image", "img", "label"),
    "shakespeare": HubFormat("flwrlabs/shakespeare", "text", "x", "y", "character_id", has_test_split=False),
}
