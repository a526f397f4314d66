"""The timer store: a port, and its one adapter for any DynamoDB-compatible endpoint."""

from reclaim.store.dynamodb import DynamoTimerStore, StoreError, open_store
from reclaim.store.port import ApplyResult, TimerStore

__all__ = ["ApplyResult", "DynamoTimerStore", "StoreError", "TimerStore", "open_store"]
