"""batchsite settings: the only settings module, read from the environment (README table)."""

from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from batchsite.env import (
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    AccountKeys,
    account_name,
    data_dir_secret,
    env_accounts,
    env_base64,
    env_bool,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("BATCHSITE_DEBUG", False)
ALLOWED_HOSTS = env_list(
    "BATCHSITE_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("BATCHSITE_CSRF_TRUSTED_ORIGINS", [])
USE_X_FORWARDED_HOST = env_bool("BATCHSITE_USE_X_FORWARDED_HOST", False)

DATA_DIR = Path(env_str("BATCHSITE_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# The SQLite file and node task directories live here; a fresh clone has no var/ yet.
DATA_DIR.mkdir(parents=True, exist_ok=True)
(DATA_DIR / "static").mkdir(exist_ok=True)

# Without DJANGO_SECRET_KEY, a random key made once per data dir (never a key in the code),
# so `make run` needs no configuration and sessions survive restarts.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or data_dir_secret(DATA_DIR / ".secret_key")

# Batch accounts. The default one (it owns the pool `local` and its nodes) comes from
# BATCHSITE_ACCOUNT_NAME/_KEY; BATCHSITE_ACCOUNTS (Azurite's format) adds others, which
# start empty. As in Azurite, listing accounts without BATCHSITE_ACCOUNT_NAME turns the
# development account (its key is public) off: the first one listed is the default.
_LISTED_ACCOUNTS = env_accounts("BATCHSITE_ACCOUNTS")
if env_str("BATCHSITE_ACCOUNT_NAME") or env_str("BATCHSITE_ACCOUNT_KEY") or not _LISTED_ACCOUNTS:
    _name = account_name(
        "BATCHSITE_ACCOUNT_NAME", env_str("BATCHSITE_ACCOUNT_NAME", DEV_ACCOUNT_NAME)
    )
    _key = env_base64("BATCHSITE_ACCOUNT_KEY", DEV_ACCOUNT_KEY if _name == DEV_ACCOUNT_NAME else "")
    if not _key:
        raise ImproperlyConfigured("BATCHSITE_ACCOUNT_KEY must be set with BATCHSITE_ACCOUNT_NAME")
    if any(a.name == _name for a in _LISTED_ACCOUNTS):
        raise ImproperlyConfigured(
            f"account {_name} is both BATCHSITE_ACCOUNT_NAME and in BATCHSITE_ACCOUNTS"
        )
    _LISTED_ACCOUNTS.insert(
        0, AccountKeys(_name, _key, env_base64("BATCHSITE_ACCOUNT_SECONDARY_KEY", ""))
    )
BATCHSITE_ACCOUNTS: list[AccountKeys] = _LISTED_ACCOUNTS  # the default account first
BATCHSITE_ACCOUNT_NAME = BATCHSITE_ACCOUNTS[0].name
BATCHSITE_ACCOUNT_KEY = BATCHSITE_ACCOUNTS[0].key

# Whether a task that asks for an admin auto-user (elevationLevel admin) runs as root, as
# on a Batch node. Here the node is this host, which serves every account: root reaches
# the database, the secret key and every account's files. False refuses such tasks
# (UserIdentityUnavailable), for a host shared by accounts or keys not trusted with it.
BATCHSITE_ADMIN_TASKS_AS_ROOT = env_bool("BATCHSITE_ADMIN_TASKS_AS_ROOT", True)

BATCHSITE_LOCAL_NODES = env_int("BATCHSITE_LOCAL_NODES", 2)
BATCHSITE_LOCAL_SLOTS = env_int("BATCHSITE_LOCAL_SLOTS", 0)  # 0: the number of CPUs

# Compute-node agents (`manage.py runnode`, tasks.node): how often an agent looks for work
# and for terminate/delete requests, how often it heartbeats, after how long without a
# heartbeat a node counts as lost (its running tasks are requeued), and how long a task
# gets between SIGTERM and SIGKILL when its agent shuts down.
BATCHSITE_NODE_POLL_SECONDS = env_float("BATCHSITE_NODE_POLL_SECONDS", 0.2, minimum=0.01)
BATCHSITE_NODE_HEARTBEAT_SECONDS = env_float("BATCHSITE_NODE_HEARTBEAT_SECONDS", 3.0, minimum=0.1)
BATCHSITE_NODE_LOST_SECONDS = env_float("BATCHSITE_NODE_LOST_SECONDS", 30.0, minimum=0.5)
# A job schedule's shortest startWindow and recurrenceInterval (Batch: one minute).
BATCHSITE_SCHEDULE_MINIMUM_SECONDS = env_float(
    "BATCHSITE_SCHEDULE_MINIMUM_SECONDS", 60.0, minimum=0.1
)
# How often the sweep looks for job schedules' run times (and jobs disabled with `wait`).
BATCHSITE_SCHEDULE_TICK_SECONDS = env_float("BATCHSITE_SCHEDULE_TICK_SECONDS", 1.0, minimum=0.05)
# PostgreSQL: the sweep vacuums a table the agents churn once it holds this many dead rows
# (tasks/operations/vacuum.py says why autovacuum is not enough).
BATCHSITE_VACUUM_DEAD_ROWS = env_int("BATCHSITE_VACUUM_DEAD_ROWS", 1000, minimum=1)
BATCHSITE_NODE_KILL_GRACE_SECONDS = env_float("BATCHSITE_NODE_KILL_GRACE_SECONDS", 3.0)
BATCHSITE_NODE_PUBLISH_SECONDS = env_float("BATCHSITE_NODE_PUBLISH_SECONDS", 5.0, minimum=0.1)
BATCHSITE_NODE_IP = env_str("BATCHSITE_NODE_IP", "127.0.0.1")
# AZ_BATCH_ACCOUNT_URL of a task with an authentication token: where the web tier serves
# the API (`manage.py serve` sets it to its own address; empty: http://127.0.0.1:$PORT).
BATCHSITE_ACCOUNT_URL = env_str("BATCHSITE_ACCOUNT_URL", "")

# Pools and node providers (tasks.providers, tasks.operations.reconcile): which provider
# and node size each vmSize gets (a JSON object, validated by tasks.providers.sizes; unset:
# every vmSize is a node on this machine), how long a new node stays `creating` before
# its agent starts (as a cloud VM's allocation would), how often the reconciler looks at
# the pools, and how often it samples their metrics for autoscale formulas.
BATCHSITE_VM_SIZES = env_json_object("BATCHSITE_VM_SIZES")
BATCHSITE_NODE_ALLOCATION_SECONDS = env_float("BATCHSITE_NODE_ALLOCATION_SECONDS", 0.0)
BATCHSITE_RECONCILE_SECONDS = env_float("BATCHSITE_RECONCILE_SECONDS", 1.0, minimum=0.05)
BATCHSITE_POOL_SAMPLE_SECONDS = env_float("BATCHSITE_POOL_SAMPLE_SECONDS", 30.0, minimum=1.0)
# The most nodes the `local` provider runs on this machine, all pools together (each agent
# is a Python process of ~80 MB): a resize beyond it stops with AccountCoreQuotaReached.
BATCHSITE_LOCAL_MAX_NODES = env_int("BATCHSITE_LOCAL_MAX_NODES", 16)

# Auto-storage (tasks/node/auto_storage.py): each Batch account's linked storage account,
# for resourceFiles' autoStorageContainerName, as a JSON object of account name to an
# Azure Storage connection string (with AccountName and AccountKey; Azurite's
# BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1 form works). The key stays with the
# agent: a task gets a short-lived SAS for its container.
BATCHSITE_AUTO_STORAGE = env_json_object("BATCHSITE_AUTO_STORAGE")
for _account, _connection in BATCHSITE_AUTO_STORAGE.items():
    _fields = (
        dict(p.split("=", 1) for p in str(_connection).split(";") if "=" in p)
        if isinstance(_connection, str)
        else {}
    )
    if not {"AccountName", "AccountKey"} <= _fields.keys():
        raise ImproperlyConfigured(
            f"BATCHSITE_AUTO_STORAGE[{_account!r}] must be a storage connection string "
            "with AccountName and AccountKey"
        )

# The `slurm` node provider (tasks/providers/slurm.py): the database URL its agents use,
# when the compute nodes reach the database at another address than this process does
# (default: this process's own database).
BATCHSITE_SLURM_DATABASE_URL = env_str("BATCHSITE_SLURM_DATABASE_URL", "")

INSTALLED_APPS = [
    "batchsite.apps.AdminConfig",  # django.contrib.admin, its modules imported with the URLconf
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "csp",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tasks.middleware.ContentSecurityPolicy",
    "tasks.middleware.refuse_nul_in_path",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# Batch paths carry no trailing slash; never redirect them.
APPEND_SLASH = False

ROOT_URLCONF = "batchsite.urls"
WSGI_APPLICATION = "batchsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_db = f"sqlite:///{DATA_DIR / 'batchsite.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(env_str("DATABASE_URL", _default_db), conn_max_age=60)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend with a fair queue for the write lock (batchsite/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "batchsite.sqlite"
    # Connections are kept between requests (conn_max_age above), as for PostgreSQL:
    # opening one (and its PRAGMAs and lock files) cost a Get Task more than its queries.
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE: a write transaction takes the lock when it starts, so two writers
        # queue instead of failing with "database is locked" on lock upgrade.
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}

# --- Surviving a database restart; serving behind HTTPS (README "Configuration") ---
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that needs no round trip (batchsite/postgresql).
    DATABASES["default"]["ENGINE"] = "batchsite.postgresql"
if DATABASES["default"]["ENGINE"] != "batchsite.sqlite":
    # A kept connection is checked before a request reuses it, so after a database
    # restart no request fails on a connection the server already closed.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# One switch for "clients reach batchsite over HTTPS" (through a TLS proxy in front of
# gunicorn, which must set X-Forwarded-Proto): redirect plain HTTP, secure-only cookies,
# HSTS; each part can be set on its own. `manage.py check --deploy` is clean with it.
BATCHSITE_HTTPS = env_bool("BATCHSITE_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("BATCHSITE_SSL_REDIRECT", BATCHSITE_HTTPS)
SESSION_COOKIE_SECURE = env_bool("BATCHSITE_SECURE_COOKIES", BATCHSITE_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("BATCHSITE_HSTS_SECONDS", 31_536_000 if BATCHSITE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("BATCHSITE_HSTS_INCLUDE_SUBDOMAINS", BATCHSITE_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("BATCHSITE_HSTS_PRELOAD", BATCHSITE_HTTPS)
if BATCHSITE_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Task files (stdout.txt, stderr.txt, wd/...): the web tier reads them only through
    # this storage (tasks.nodehost.storage). By default it is the nodes' own directories on
    # this machine; agents on other machines publish into a shared backend instead.
    "taskfiles": {
        "BACKEND": env_str(
            "BATCHSITE_TASK_FILES_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env_json_object("BATCHSITE_TASK_FILES_OPTIONS")
        or {"location": str(DATA_DIR / "nodes")},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:jobs"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
# No page script reads the CSRF cookie: forms carry {% csrf_token %} and htmx sends the
# token from base.html's hx-headers.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Content-Security-Policy of the dashboard, the admin and the API (django-csp): scripts,
# styles and everything else only from this origin, never inline, so nothing a task writes
# that reaches a page can run there. Responses carrying a task's or a node's file bytes get
# a sandboxing policy of their own instead (tasks.file_responses).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tasks.api.auth.SharedKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["tasks.api.renderers.BatchJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tasks.api.renderers.AlwaysBatchJSON",
    "EXCEPTION_HANDLER": "tasks.api.errors.batch_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "batchsite Batch API",
    "DESCRIPTION": "The Azure Batch data-plane calls batchsite serves (Tasks, Jobs, Pools, "
    "Nodes, task files). Every call needs a Shared Key Authorization header and api-version.",
    "VERSION": "2025-06-01",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tasks.api.schema.add_api_version",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("BATCHSITE_LOG_LEVEL", "WARNING")},
}
