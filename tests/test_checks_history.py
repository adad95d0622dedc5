"""Check E007 for the in-memory and database histories: bad options refused by the check, not at a publish."""

from notifications.checks import check_settings

DATABASE_HISTORY = "notifications.history.database.DatabaseHistory"


def history_errors(settings, **options):
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, **options}
    return [error for error in check_settings() if error.id.startswith("notifications.")]


def test_an_option_given_to_the_in_memory_history_is_an_error_naming_it(settings):
    [error] = history_errors(settings, HISTORY_OPTIONS={"url": "redis://127.0.0.1:6379/0"})

    assert error.id == "notifications.E007"
    assert error.msg.startswith(
        "NOTIFICATIONS['HISTORY_OPTIONS'] is not accepted by InMemoryHistory: TypeError:"
    )
    assert "'url'" in error.msg


def test_a_database_alias_not_in_databases_is_an_error_naming_the_known_ones(settings):
    [error] = history_errors(settings, HISTORY_BACKEND=DATABASE_HISTORY, HISTORY_OPTIONS={"database": "nope"})

    assert error.id == "notifications.E007"
    assert error.msg == (
        "NOTIFICATIONS['HISTORY_OPTIONS'] is not accepted by DatabaseHistory: ValueError: "
        "DatabaseHistory option 'database' must be an alias in DATABASES, not 'nope'. "
        "Known aliases: 'default'."
    )


def test_the_histories_pass_with_their_own_options(settings):
    assert history_errors(settings, HISTORY_OPTIONS={}) == []
    assert (
        history_errors(settings, HISTORY_BACKEND=DATABASE_HISTORY, HISTORY_OPTIONS={"database": "default"})
        == []
    )
