"""{% notifications_client %} puts the script and its JSON configuration on a page."""

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import RequestFactory

from notifications import tasks
from notifications.exceptions import InvalidEventType

from .support import client_config


def render(tag: str, user=None, **context) -> str:
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    return Template("{% load notifications %}" + tag).render(Context({"request": request, **context}))


def test_renders_stylesheet_configuration_and_deferred_script():
    html = render('{% notifications_client types="announcement,beta" %}')

    assert '<link rel="stylesheet" href="/static/notifications/notifications.css"' in html
    assert '<script type="module" src="/static/notifications/notifications.js"' in html
    assert client_config(html) == {
        "url": "/sse/subscribe/",
        "types": ["announcement", "beta"],
        "topics": ["announcement", "beta"],
        "heartbeatMs": 15000,
        "retryMs": 2000,
        "toasts": True,
        "toastMs": 8000,
        "indicator": True,
    }


def test_heartbeat_and_retry_come_from_settings(settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "HEARTBEAT": 2.5, "RETRY_MS": 700}

    config = client_config(render('{% notifications_client types="alpha" %}'))

    assert (config["heartbeatMs"], config["retryMs"]) == (2500, 700)


def test_without_types_subscribes_to_every_declared_public_type(settings):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "ACCESS": {"beta": "authenticated"}}

    config = client_config(render("{% notifications_client %}"))

    declared = ["announcement", "task_started", "task_progress", "task_completed", "alpha"]
    if tasks.available():
        # Declared from code, by the task receivers.
        declared.append("task_enqueued")
    expected = sorted(declared)
    assert config["types"] == config["topics"] == expected


def test_types_may_be_a_list_from_the_context():
    config = client_config(
        render("{% notifications_client types=wanted toasts=False %}", wanted=["beta", "alpha"])
    )

    assert (config["types"], config["toasts"]) == (["beta", "alpha"], False)


def test_undeclared_type_fails_loudly():
    with pytest.raises(InvalidEventType, match="'nonexistent' is not registered"):
        render('{% notifications_client types="announcement,nonexistent" %}')


def test_private_adds_the_logged_in_users_topic_only():
    tag = '{% notifications_client types="task_completed" private=True %}'

    assert client_config(render(tag, user=User(pk=42)))["topics"] == ["task_completed", "user.42"]
    assert client_config(render(tag))["topics"] == ["task_completed"]


def test_private_types_arrive_on_the_private_topic_without_being_subscribed_to():
    tag = '{% notifications_client types="announcement" private=True private_types="task_completed" %}'

    config = client_config(render(tag, user=User(pk=42)))
    anonymous = client_config(render(tag))

    assert (config["types"], config["topics"]) == (
        ["announcement", "task_completed"],
        ["announcement", "user.42"],
    )
    assert (anonymous["types"], anonymous["topics"]) == (["announcement"], ["announcement"])


def test_undeclared_private_type_fails_loudly_without_a_user_too():
    with pytest.raises(InvalidEventType, match="'nonexistent' is not registered"):
        render('{% notifications_client private=True private_types="nonexistent" %}')


def test_csp_nonce_reaches_the_script_and_stylesheet():
    html = render('{% notifications_client types="alpha" %}', csp_nonce="n0nce")

    assert html.count('nonce="n0nce"') == 2


def test_more_topics_than_a_stream_may_have_is_refused_at_render(settings):
    """The server would answer 400, and EventSource never retries after one."""
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "MAX_TYPES_PER_STREAM": 2}
    user = User(pk=7, username="seven")

    with pytest.raises(ImproperlyConfigured, match=r"subscribes to 3 topics \(alpha, beta, user\.7\)"):
        render('{% notifications_client types="alpha,beta" private=True %}', user=user)
