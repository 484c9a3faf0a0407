"""Input pipelines: ``Dataset`` and the TSV feature columns."""
from propeller.data.dataset import Dataset
from propeller.data.feature_column import (
    BadLineError,
    BadLineStats,
    Column,
    FeatureColumns,
    LabelColumn,
    TextColumn,
    TextIDColumn,
    read_vocab,
)

__all__ = [
    "Dataset",
    "Column",
    "TextColumn",
    "TextIDColumn",
    "LabelColumn",
    "FeatureColumns",
    "BadLineError",
    "BadLineStats",
    "read_vocab",
]
