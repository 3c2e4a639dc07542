"""agentstate from Python: the run API client, LangGraph's checkpointer, the load suite."""

from agentstate.admin import Admin, SyncAdmin
from agentstate.errors import (
    AgentstateError,
    ConflictError,
    CorruptionError,
    DeadlineError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedByStoreError,
    RateLimitedError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
)
from agentstate.runs import ActiveRun, RunCheckpoint, RunClient, RunRecord, SaveAck, SyncRunClient
from agentstate.saver import AgentstateSaver, PruneReport

__all__ = [
    "ActiveRun",
    "Admin",
    "AgentstateError",
    "AgentstateSaver",
    "ConflictError",
    "CorruptionError",
    "DeadlineError",
    "ForbiddenError",
    "InvalidArgumentError",
    "NotFoundError",
    "NotImplementedByStoreError",
    "PruneReport",
    "RateLimitedError",
    "RunCheckpoint",
    "RunClient",
    "RunRecord",
    "SaveAck",
    "SyncAdmin",
    "SyncRunClient",
    "TooLargeError",
    "UnauthenticatedError",
    "UnavailableError",
]
