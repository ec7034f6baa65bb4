"""Daily integration: the REST client, webhook verification, and their typed data.

The only package of flowengine that imports httpx and daily-python. The REST client and the
webhook code depend on nothing of flowengine but ``flowengine.errors``; the in-room participant
(``participant*``, the optional extra ``flowengine[daily]``, imported on its own so that this
package never loads daily-python) also speaks the runtime's Telephony port. Module by module:
``client`` (``DailyClient``), ``requester`` (the retry loop), ``retry`` (which endpoint may be
repeated), ``limiter`` (pacing), ``models`` (requests and responses), ``webhooks``
(signatures), ``events`` (envelopes, pinless requests), ``dedupe``, ``errors``, ``participant``.
"""

from __future__ import annotations

from flowengine.daily.client import DEFAULT_BASE_URL, DailyClient
from flowengine.daily.dedupe import Deduplicator, MemoryDeduplicator
from flowengine.daily.errors import (
    DailyAPIError,
    DailyConfigError,
    DailyError,
    DailyOutcomeUnknownError,
    DailyRateLimitError,
    DailyRequestError,
    DailyServerError,
    DailyTransportError,
    WebhookError,
    WebhookPayloadError,
    WebhookReplayError,
    WebhookSignatureError,
)
from flowengine.daily.events import (
    PinlessCall,
    PinlessRequest,
    PinlessTest,
    WebhookEvent,
    parse_event,
    parse_pinless,
)
from flowengine.daily.limiter import Limiter, RateLimiter, telephony_limiter
from flowengine.daily.models import (
    Codecs,
    DialOutRequest,
    MeetingTokenSpec,
    PinlessCallUpdateRequest,
    Room,
    RoomSpec,
    SendDtmfRequest,
    SipCallTransferRequest,
    SipConfig,
    SipReferRequest,
    StopDialOutRequest,
)
from flowengine.daily.retry import NO_RETRY, RetryPolicy
from flowengine.daily.secret import Secret
from flowengine.daily.webhooks import (
    SignatureVerifier,
    is_test_request,
    pinless_verifier,
    sign_pinless,
    sign_webhook,
    webhook_verifier,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "NO_RETRY",
    "Codecs",
    "DailyAPIError",
    "DailyClient",
    "DailyConfigError",
    "DailyError",
    "DailyOutcomeUnknownError",
    "DailyRateLimitError",
    "DailyRequestError",
    "DailyServerError",
    "DailyTransportError",
    "Deduplicator",
    "DialOutRequest",
    "Limiter",
    "MeetingTokenSpec",
    "MemoryDeduplicator",
    "PinlessCall",
    "PinlessCallUpdateRequest",
    "PinlessRequest",
    "PinlessTest",
    "RateLimiter",
    "RetryPolicy",
    "Room",
    "RoomSpec",
    "Secret",
    "SendDtmfRequest",
    "SignatureVerifier",
    "SipCallTransferRequest",
    "SipConfig",
    "SipReferRequest",
    "StopDialOutRequest",
    "WebhookError",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookReplayError",
    "WebhookSignatureError",
    "is_test_request",
    "parse_event",
    "parse_pinless",
    "pinless_verifier",
    "sign_pinless",
    "sign_webhook",
    "telephony_limiter",
    "webhook_verifier",
]
