"""Settings of the bus runtime (``reclaim listen``, ``publish``, ``deadletters``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from reclaim.redact import check_url

#: A transport URL whose credentials read as written (reserved characters percent-encoded).
TransportUrl = Annotated[str, AfterValidator(check_url)]


class BusSettings(BaseModel):
    """How reclaim reaches the message bus and consumes from it.

    Read from the ``bus`` section of the config file or ``RECLAIM_BUS__*`` variables
    (e.g. ``RECLAIM_BUS__TRANSPORT_URL``); ``reclaim listen`` flags override both.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    transport_url: TransportUrl = Field(
        "rabbit://guest:guest@127.0.0.1:5672/",
        description="oslo.messaging transport URL (percent-encode , / @ : % in a password)",
    )
    pool: str = Field(
        "reclaim",
        min_length=1,
        description="listener pool: reclaim's own queue, so it never takes Ceilometer's messages",
    )
    exchanges: tuple[str, ...] = Field(
        (), description="exchanges to listen on (default: every exchange of the route table)"
    )
    durable_queues: bool = Field(
        False,
        description="declare durable exchanges and queues: must equal the cloud's "
        "[oslo_messaging_rabbit] amqp_durable_queues (oslo's default: false); every reclaim "
        "publisher and consumer (listen, run, sweep, publish, allocation, mailer) follows it",
    )
    batch_size: int = Field(100, ge=1, description="messages handed to the pipeline at once")
    batch_timeout: float = Field(0.02, gt=0, description="seconds to wait to fill a batch")
    prefetch: int = Field(
        400, ge=0, description="unacknowledged messages the broker may send (0: no limit)"
    )
    executor_threads: int = Field(4, ge=1, description="batches processed concurrently")
    apply_threads: int = Field(8, ge=1, description="concurrent store writers per batch")
    handler_retries: int = Field(
        2, ge=0, description="retries of a failing policy handler before dead-lettering"
    )
    store_retry_delay: float = Field(
        1.0, ge=0, description="pause before requeueing a batch the store refused"
    )
    metrics_host: str = Field("127.0.0.1", description="address of the Prometheus metrics server")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus metrics port (0: off)")
    driver: str = Field("messagingv2", pattern=r"^messaging(v2)?$", description="publish driver")
