"""
The version matrix: the parts of the suite that depend on Django, Channels,
Daphne and channels-redis releases, against each combination pyproject.toml
allows (`make matrix`; `make test` runs the suite on the exact pins of
requirements.txt only).

    nox -l                         # the sessions
    nox -s "matrix(django='5.2', stack='oldest')"

Each session installs its releases into its own virtualenv under .nox/, the
app from this checkout, and the suite's tools at the pins of
requirements-test.txt.
"""

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.12"

# The Channels-side releases: the oldest and the newest of each range in
# pyproject.toml.
STACKS = {
    "oldest": ["channels~=4.2.0", "daphne~=4.1.0", "channels-redis~=4.2.0"],
    "newest": ["channels~=4.3.0", "daphne~=4.2.0", "channels-redis~=4.3.0"],
}
DJANGO = {"5.2": "Django~=5.2.0", "6.0": "Django~=6.0.0", "6.1": "Django~=6.1.0"}

# The suite's tools and the other dependencies, at the suite's pins.
TOOLS = [
    "pytest==9.2.0",
    "pytest-django==4.14.0",
    "pytest-asyncio==1.5.0",
    "pytest-timeout==2.4.0",
    "hypothesis==6.170.17",
    "playwright==1.65.2",
    "redis==8.1.0",
    "prometheus-client==0.26.0",
]

# Tests of what leans on those releases: Django's ASGI handler and views,
# the channel layers, Daphne's server and runserver's reloader (the server
# adapters in lifecycle.py and backpressure.py), and the version checks.
VERSION_DEPENDENT = [
    "tests/test_asgi.py",
    "tests/test_views.py",
    "tests/test_streams.py",
    "tests/test_hub.py",
    "tests/test_hub_redis.py",
    "tests/test_publishing.py",
    "tests/test_client_tag.py",
    "tests/test_checks.py",
    "tests/test_dependencies.py",
    "tests/test_daphne_stream.py",
    "tests/test_backpressure.py",
    "tests/test_lifecycle_daphne.py",
    "tests/test_lifecycle_exit.py",
    "tests/test_lifecycle_runserver.py",
    "tests/test_servers_daphne.py",
]
# django.tasks exists from Django 6.0: the task integration's tests.
TASKS = [
    "tests/test_receivers.py",
    "tests/test_task_progress.py",
    "tests/test_task_checks.py",
]
# The demo under runserver with its embedded task worker: the demo's
# templates use Django 6.1's {% csp_nonce_attr %}, so the demo needs 6.1.
DEMO = ["tests/test_tasks_runserver.py"]


@nox.session(python=PYTHON)
@nox.parametrize("stack", list(STACKS))
@nox.parametrize("django", list(DJANGO))
def matrix(session: nox.Session, django: str, stack: str) -> None:
    """Run the version-dependent tests on one Django release and one Channels stack."""
    packages = [DJANGO[django], *STACKS[stack], *TOOLS]
    if django != "5.2":
        packages.append("django-tasks-db==0.13.0")
    session.install(*packages)
    # The app itself, without letting pip move the releases chosen above.
    session.install("--no-deps", "-e", ".")
    session.run("python", "-m", "pip", "freeze", "--all", silent=False)
    tests = VERSION_DEPENDENT + (TASKS if django != "5.2" else []) + (DEMO if django == "6.1" else [])
    session.run("python", "-m", "pytest", "-q", *tests, *session.posargs)
