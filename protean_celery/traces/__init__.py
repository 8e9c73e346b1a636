"""Protean's trace events for the work protean-celery does, so ``protean observatory`` shows it (I/O).

Protean's own server reports each stage of a message's journey as a ``MessageTrace``
through ``domain.trace_emitter``: a Redis stream (``protean:traces``) the Observatory
reads, and a Pub/Sub channel for its live view. Under Celery the same events, with
the same names and fields, come from here:

====================  ===============================================  ==========================
event                 when                                             emitted by
====================  ===============================================  ==========================
``handler.started``   a handler task starts on a message               ``task_prerun``
``handler.completed`` the handler's Unit of Work committed             ``task_postrun``
``pm.transition``     ... and the handler is a process manager         ``task_postrun``
``handler.skipped``   a command past its deadline (status ``expired``) ``task_postrun``
                      or a message its inbox already saw (``duplicate``)
``handler.failed``    the handler raised (retried or dead-lettered)    ``task_postrun``
``message.acked``     the task ended and Celery acknowledges it        ``task_postrun``
``message.nacked``    the task is retried (status ``retry``)           ``task_postrun``
``message.dlq``       the message was dead-lettered                    :func:`dead_lettered`
``outbox.published``  an outbox row went to its handler tasks          :func:`relayed` (the relay)
``outbox.failed``     an outbox row could not be published             :func:`relayed`
====================  ===============================================  ==========================

Cost: Protean's emitter writes only when the domain's default broker is Redis
(``[brokers.default] provider = "redis"``) and someone reads: trace persistence is
on (``[observatory] trace_retention_days``, 7 by default) or an Observatory is
subscribed. :func:`listening` asks the emitter exactly that, first, so with any
other broker no event is even built. Tracing never fails a handler: an error is
logged once and the work goes on.

Trace context: each handler task runs inside Protean's span
``protean.engine.handle_message``, opened with Protean's tracer (``domain.tracer``)
as a child of the message's ``traceparent``, as Protean's engine does. Events and
commands the handler raises take their ``traceparent`` from that span, so an
OpenTelemetry trace continues across tasks (with OpenTelemetry installed; without
it Protean carries no trace context, here as in its own server).
"""

from protean_celery.traces.events import MessageFacts, dead_lettered, listening, relayed
from protean_celery.traces.handlers import TaskTraces, connect

__all__ = ["MessageFacts", "TaskTraces", "connect", "dead_lettered", "listening", "relayed"]
