"""
Template tags that put the browser client on a page.

``{% notifications_client types="announcement,task_completed" %}`` renders
the stylesheet, the client's configuration as a JSON script element (never
interpolated into JavaScript) and the deferred script.
"""

from typing import Any

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from ..access import public_types
from ..conf import setting
from ..topics import check_registered, user_topic

register = template.Library()

# The context key of the CSP nonce: django.utils.csp.CONTEXT_KEY in Django
# 6.1, the same name in 6.0's context processor; on Django 5.2 nothing sets
# it and no nonce is rendered.
CSP_NONCE = "csp_nonce"


def _names(types: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if types is None:
        # Only public types: one refused type would fail the whole stream.
        return public_types()
    if isinstance(types, str):
        types = types.split(",")
    return list(dict.fromkeys(check_registered(name.strip()) for name in types if name.strip()))


@register.inclusion_tag("notifications/client.html", takes_context=True)
def notifications_client(
    context: template.Context,
    types: str | list[str] | None = None,
    private: bool = False,
    private_types: str | list[str] | tuple[str, ...] = (),
    toasts: bool = True,
    toast_ms: int = 8000,
    indicator: bool = True,
) -> dict[str, Any]:
    """
    Return the context of the client for ``types`` (comma-separated; every
    declared public type by default). With ``private``, events of these types
    published to the logged-in user alone arrive too, and so do events of
    ``private_types``, which are not subscribed to as topics of their own
    (they may be types the user may not watch for everyone). ``toast_ms`` 0
    keeps toasts until dismissed.
    """
    names = _names(types)
    topics = list(names)
    private_names = _names(private_types)
    user = getattr(context.get("request"), "user", None)
    if private and user is not None and user.is_authenticated:
        topics.append(user_topic(user))
        names = list(dict.fromkeys([*names, *private_names]))
    limit = setting("MAX_TYPES_PER_STREAM")
    if len(topics) > limit:
        # The server would refuse such a stream with a 400, and EventSource
        # does not retry after one: fail here, where the cause is visible.
        raise ImproperlyConfigured(
            f"notifications_client subscribes to {len(topics)} topics ({', '.join(topics)}), more than "
            f"NOTIFICATIONS['MAX_TYPES_PER_STREAM'] ({limit}). Pass fewer types=, or raise the limit."
        )
    return {
        # The tag's template gets only this dict; pass a CSP nonce through.
        CSP_NONCE: context.get(CSP_NONCE),
        "config": {
            "url": reverse("notifications:subscribe_many"),
            "types": names,
            "topics": topics,
            "heartbeatMs": round(setting("HEARTBEAT") * 1000),
            "retryMs": setting("RETRY_MS"),
            "toasts": bool(toasts),
            "toastMs": int(toast_ms),
            "indicator": bool(indicator),
        },
    }
