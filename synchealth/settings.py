"""Settings, read from the environment with working local defaults.

Every variable is listed with its default and meaning in `.env.example`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded defaults keep their files (SQLite, the file broker, the
# demo login). Made when the apps start (`dashboard.apps`), not on import.
VAR_DIR = Path(os.environ.get("SYNCHEALTH_VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool = False) -> bool:
    """A yes/no setting; anything but 1/0, true/false, yes/no, on/off is refused."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={os.environ[name]!r} is not a yes/no value: use 1 or 0 (or true/false, "
        "yes/no, on/off)."
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole-number setting of at least `minimum`; anything else is refused."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}.")
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """A number setting (seconds, …) of at least `minimum`; anything else is refused."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not number >= minimum or number == float("inf"):
        raise ImproperlyConfigured(f"{name}={value!r} must be a number of at least {minimum}.")
    return number


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """`HTTP_X_FORWARDED_PROTO,https`: the header a trusted proxy sets, and its value for HTTPS.

    Django compares it with `request.META`, so the name must be spelt as there
    (upper case, `HTTP_` and underscores); a header spelt as on the wire would
    never match, and every request would look like plain HTTP.
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2 or not re.fullmatch(r"HTTP_[A-Z0-9_]+", parts[0]) or not parts[1]:
        raise ImproperlyConfigured(
            f"{name}={value!r} must name a request header as Django sees it and the value "
            "that means HTTPS, e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    return parts[0], parts[1]


DEBUG = env_bool("DEBUG", False)
# The insecure default exists only so that `make run` and the tests work out of
# the box; a production process (DEBUG off, not under tests) refuses to start
# with it.
INSECURE_DEFAULT_SECRET = "insecure-dev-only-secret-key-change-me"
SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_DEFAULT_SECRET)
ALLOW_INSECURE_SECRET = env_bool("SYNCHEALTH_ALLOW_INSECURE_SECRET", False)
# Local development (DEBUG=1) and tools and tests (the variable above) run on
# the development defaults. Any other process is a deployment, held to the
# production requirements: see "Production guards" at the end.
DEPLOYMENT = not (DEBUG or ALLOW_INSECURE_SECRET)
if SECRET_KEY == INSECURE_DEFAULT_SECRET and DEPLOYMENT:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY to a long random value "
        "(or DEBUG=1 for local development)."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "dashboard",
    "alerts",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files before anything that reads the session or the database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # After the login check: every view also needs a support role unless it
    # says otherwise (dashboard/access.py).
    "dashboard.access.RoleRequiredMiddleware",
    "dashboard.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "synchealth.urls"
WSGI_APPLICATION = "synchealth.wsgi.application"
ASGI_APPLICATION = "synchealth.asgi.application"

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

# SQLite is the embedded default; WAL and a busy timeout let the web server,
# the worker and beat share one file. IMMEDIATE transactions take the write
# lock up front, so two writers wait for each other instead of failing with
# "database is locked" half way through.
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'synchealth.sqlite3'}")
# Persistent connections (seconds); 0 for a server that makes a thread per
# request (runserver), so dead threads leave no connection behind.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that the live server's threads and worker
    # processes in tests each open their own connection, as in production.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# Whom the "no access" page tells people to ask for a support role.
SUPPORT_ACCESS_CONTACT = (
    os.environ.get("SUPPORT_ACCESS_CONTACT", "").strip() or "your Sync Health administrator"
)

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Deployment: static files, HTTPS, cookies, Content-Security-Policy ---
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", "").strip() or VAR_DIR / "staticfiles")
# A deployment serves what `collectstatic` gathered into STATIC_ROOT, through
# WhiteNoise: names carry a hash of the content (cached for a year), with
# gzip and Brotli copies made once. Development, tools and tests read the
# files where they are, with no collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if DEPLOYMENT
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not DEPLOYMENT
WHITENOISE_AUTOREFRESH = not DEPLOYMENT

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
# A form refused by the CSRF check gets a page in the site's layout.
CSRF_FAILURE_VIEW = "dashboard.access.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Served over HTTPS unless DEBUG is on: the cookies carry Secure. 0 turns it
# off for a trial over plain HTTP, where a browser would drop them.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SESSION_COOKIE_SECURE)
# Off by default, as in Django: `manage.py check --deploy` (the production
# start runs it) names each one a deployment leaves off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a proxy that ends TLS: how it tells us a request came over HTTPS.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
# System checks a deployment has decided to live with, e.g. security.W008
# when the proxy redirects to HTTPS itself.
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", "")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The covering indexes' INCLUDE columns are PostgreSQL's index-only reads;
    # SQLite builds the same indexes on their keys alone, which is all it needs.
    SILENCED_SYSTEM_CHECKS.append("models.W040")
# Every script and style comes from our own static files: templates hold no
# <script> body, no on…= handler and no style= attribute (static/js/app.js
# gives data- attributes their behaviour; classes live in static/css/app.css).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
# --- end of Deployment ---

# Redis serves as cache (shared rate-limit counters) whenever the broker is
# Redis; otherwise a per-process memory cache, which is enough for the single
# web process that `make run` starts.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
REDIS_URL = os.environ.get(
    "REDIS_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""
)
# Keys in a shared Redis: the cache's and the metrics' (`dashboard.metrics`).
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "").strip() or "synchealth"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery. The default broker keeps its queue in files under var/broker, so
# web, worker and beat talk to each other with no server to install.
BROKER_DIR = VAR_DIR / "broker"
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=5)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}


def filesystem_broker_options(broker_dir: Path) -> dict[str, object]:
    """The file broker's folders under `broker_dir` (also for tests that send to a worker)."""
    return {
        "data_folder_in": str(broker_dir / "out"),
        "data_folder_out": str(broker_dir / "out"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }


if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR)
else:
    # Tasks are acknowledged late, so a task must finish (or hit its hard
    # time limit) well inside the time after which Redis hands an unacked
    # message to another worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # How often a worker looks for messages whose worker died unacked.
        "unacked_restore_interval": min(10, max(1, CELERY_VISIBILITY_TIMEOUT // 6)),
        "unacked_restore_throttle": 1,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Below the visibility timeout, so a running task is never handed to a second
# worker; a task killed with its worker is redelivered once that time passes.
CELERY_TASK_TIME_LIMIT = min(15 * 60, int(CELERY_VISIBILITY_TIMEOUT * 0.9))
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - max(1, CELERY_TASK_TIME_LIMIT // 15)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat copies these into its database schedule at start; admins change them
# in Django admin (Periodic tasks). The sandbox's two sweeps do nothing
# unless the sandbox is enabled.
CELERY_BEAT_SCHEDULE = {
    "sandbox-finalize-due": {"task": "sandbox.finalize_due", "schedule": 5.0},
    "sandbox-redeliver-due": {"task": "sandbox.redeliver_due", "schedule": 5.0},
    # Webhook events stored but never processed (their task was lost).
    "dashboard-pending-webhooks": {"task": "dashboard.process_pending_webhooks", "schedule": 60.0},
    # Syncs found without their webhook whose grace period has passed: missed.
    "dashboard-webhook-gaps": {"task": "dashboard.settle_webhook_gaps", "schedule": 60.0},
    # Retries whose new sync is still running, in case its webhook never comes.
    "dashboard-follow-retries": {"task": "dashboard.follow_retries", "schedule": 30.0},
    # The dashboard's hourly rollup, for the hours whose syncs changed (exact
    # without it: a changed hour is read from the syncs until it is rebuilt).
    "dashboard-rollup": {"task": "dashboard.refresh_rollup", "schedule": 60.0},
    # The dashboard's rankings (failing companies, frequent errors) for each
    # preset range; the page shows when they were counted.
    "dashboard-rankings": {"task": "dashboard.refresh_rankings", "schedule": 60.0},
    # Problems: snoozes that end at a date, and merges left half-moved.
    "dashboard-problems": {"task": "dashboard.problems_upkeep", "schedule": 120.0},
    # The retention policy (RETENTION_* below), a bounded amount of work an
    # hour; it also carries on with a company purge whose worker died.
    "dashboard-retention": {"task": "dashboard.apply_retention", "schedule": 3600.0},
    "sandbox-prune-request-log": {"task": "sandbox.prune_request_log", "schedule": 3600.0},
    # Alerts: the time-based conditions (long-running syncs, our own health),
    # deliveries that are due again, and digests.
    "alerts-evaluate": {"task": "alerts.evaluate", "schedule": 60.0},
    "alerts-deliver-due": {"task": "alerts.deliver_due", "schedule": 30.0},
    "alerts-digests": {"task": "alerts.send_digests", "schedule": 300.0},
}
# Autodiscovery imports each app's `tasks` module; the alerts' sending tasks
# (alerts.deliver, alerts.deliver_due, alerts.send_digests) live in a module of their own.
CELERY_IMPORTS = ["alerts.delivery_tasks"]
CELERY_TIMEZONE = "UTC"

# The upstream: the real Codat API or the embedded sandbox. Pointing
# CODAT_BASE_URL at https://api.codat.io is the only change needed.
# A deployment must name it (see the guards at the end).
CODAT_BASE_URL = os.environ.get("CODAT_BASE_URL", "").strip() or "http://127.0.0.1:8000/sandbox"
CODAT_API_KEY = os.environ.get("CODAT_API_KEY", "")
# The Codat Portal, for the pages' links to a company there ({this}/companies/<id>).
CODAT_PORTAL_URL = (
    os.environ.get("CODAT_PORTAL_URL", "").strip().rstrip("/") or "https://app.codat.io"
)
if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", CODAT_PORTAL_URL):
    raise ImproperlyConfigured(
        f"CODAT_PORTAL_URL={CODAT_PORTAL_URL!r} is not an http(s) address "
        "such as https://app.codat.io."
    )
CODAT_WEBHOOK_SECRET = os.environ.get("CODAT_WEBHOOK_SECRET", "")
# The request budget shared by every worker (see dashboard/ratelimit.py):
# Codat allows about 1,000 a minute per IP and 10 in flight per company.
CODAT_RATE_LIMIT_PER_MINUTE = env_int("CODAT_RATE_LIMIT_PER_MINUTE", 900, minimum=1)
CODAT_RATE_LIMIT_WINDOW_SECONDS = env_float("CODAT_RATE_LIMIT_WINDOW_SECONDS", 60, minimum=1)
CODAT_MAX_IN_FLIGHT_PER_COMPANY = env_int("CODAT_MAX_IN_FLIGHT_PER_COMPANY", 10, minimum=1)
CODAT_RATE_LIMIT_PREFIX = os.environ.get("CODAT_RATE_LIMIT_PREFIX", "synchealth:rl")
# A slot held by a killed worker frees itself after this long.
CODAT_REQUEST_LEASE_SECONDS = env_float("CODAT_REQUEST_LEASE_SECONDS", 120)
# The longest a task sleeps for the budget or a Retry-After; a longer wait
# becomes a recorded "paused until" and a rescheduled task.
CODAT_MAX_WAIT_SECONDS = env_float("CODAT_MAX_WAIT_SECONDS", 30)
# Adaptive polling (dashboard.polling) takes at most this share (0-1) of the
# request budget; the rest is for webhook refreshes, retries and people. The
# default of the schedule admins change in Django admin (Polling schedule).
CODAT_POLL_SHARE = env_float("CODAT_POLL_SHARE", 0.5)
if CODAT_POLL_SHARE > 1:
    raise ImproperlyConfigured(f"CODAT_POLL_SHARE={CODAT_POLL_SHARE} must be between 0 and 1.")
CODAT_MAX_ATTEMPTS = env_int("CODAT_MAX_ATTEMPTS", 6, minimum=1)
CODAT_MAX_RETRY_SECONDS = env_float("CODAT_MAX_RETRY_SECONDS", 120)
CODAT_CONNECT_TIMEOUT = env_float("CODAT_CONNECT_TIMEOUT", 5)
CODAT_READ_TIMEOUT = env_float("CODAT_READ_TIMEOUT", 30)
# Threads per company refresh that fetch sync items concurrently.
CODAT_FETCH_THREADS = env_int("CODAT_FETCH_THREADS", 4, minimum=1)
# Bulk retry: above this many syncs the person types the number to confirm;
# a preview holds at most BULK_RETRY_MAX_SYNCS (a wider filter is refused).
BULK_RETRY_CONFIRM_THRESHOLD = env_int("BULK_RETRY_CONFIRM_THRESHOLD", 100)
BULK_RETRY_MAX_SYNCS = env_int("BULK_RETRY_MAX_SYNCS", 10_000, minimum=1)
# The history's CSV export: above this many syncs only a Support lead may
# export (everyone else is asked to narrow the filters). Every export is audited.
CSV_EXPORT_MAX_ROWS = env_int("CSV_EXPORT_MAX_ROWS", 50_000, minimum=1)
# A retry request's worker holds it this long; a request whose worker died (or
# hit an unexpected error) is picked up again once it passes. It must outlast
# one POST to the upstream (connect and read timeouts, with the client's waits).
RETRY_CLAIM_LEASE_SECONDS = env_int("RETRY_CLAIM_LEASE_SECONDS", 300, minimum=5)
# Webhook bodies above this size are refused with 413.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 20 * 1024 * 1024, minimum=1)
# Receiver configured: a sync polling finds finished without its webhook this
# long after it ended counts as a missed webhook (dashboard.health_signals).
WEBHOOK_GAP_GRACE_SECONDS = env_int("WEBHOOK_GAP_GRACE_SECONDS", 300)
# Open pages ask again this often while their tab is visible: the dashboard's
# totals, the history's "N new syncs", the first import's banner.
LIVE_POLL_SECONDS = env_int("LIVE_POLL_SECONDS", 15, minimum=1)

# Retention (README "Retention and erasure"): days each kind of row is kept;
# 0 keeps it for ever. History: syncs and their items (never what is still
# outstanding, or what a retry, a streak or a kept sync still needs).
RETENTION_HISTORY_DAYS = env_int("RETENTION_HISTORY_DAYS", 400)
RETENTION_WEBHOOK_DAYS = env_int("RETENTION_WEBHOOK_DAYS", 30)
# The access audit (sign-ins, exports, downloads, refusals): as long as the
# history it speaks of, by default.
RETENTION_AUDIT_DAYS = env_int("RETENTION_AUDIT_DAYS", 400)
# The sandbox's request log (the sandbox prunes it itself).
RETENTION_REQUEST_LOG_DAYS = env_int("RETENTION_REQUEST_LOG_DAYS", 30)
# One transaction removes at most this many syncs and items (a larger retry
# chain goes alone), so no lock is held for long.
RETENTION_BATCH_SYNCS = env_int("RETENTION_BATCH_SYNCS", 500, minimum=1)
RETENTION_BATCH_ITEMS = env_int("RETENTION_BATCH_ITEMS", 5000, minimum=1)
# Seconds of work per hourly run (kept below the task's soft time limit); a
# backlog, such as the first run on an old mirror, is spread over the hours.
RETENTION_RUN_SECONDS = env_int("RETENTION_RUN_SECONDS", 600, minimum=1)

# The sandbox upstream: off unless enabled.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", False)
# The demo key is in the repository for anyone to read: refused with DEBUG off.
DEMO_SANDBOX_API_KEY = "sandbox-demo-key"
SANDBOX_API_KEY = os.environ.get("SANDBOX_API_KEY", "").strip() or DEMO_SANDBOX_API_KEY
SANDBOX_RATE_LIMIT_PER_MINUTE = env_int("SANDBOX_RATE_LIMIT_PER_MINUTE", 1000, minimum=1)
SANDBOX_RATE_LIMIT_PER_DAY = env_int("SANDBOX_RATE_LIMIT_PER_DAY", 1_000_000, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"broker_hostname": {"()": "synchealth.logs.BrokerHostnameFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request at INFO: tens of thousands of lines in one
        # refresh. The upstream client logs its retries and failures itself.
        "httpx": {"level": "WARNING"},
        # Its version, once per process start; lockouts are logged at WARNING.
        "axes.apps": {"level": "WARNING"},
        "kombu.connection": {"filters": ["broker_hostname"]},
    },
}

# --- Signing in: lockout, trusted proxies, passwords, sessions, single sign-on ---
# Everything `accounts/` drives lives in this block. README "Signing in" says
# what each part does and why its defaults are what they are.


def env_networks(name: str) -> list[str]:
    """A comma-separated list of IP addresses or CIDR ranges; anything else is refused."""
    networks = env_list(name, "")
    for value in networks:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {value!r} is not an IP address or a CIDR range (e.g. 10.0.0.0/8)."
            ) from None
    return networks


def env_mapping(name: str) -> dict[str, str]:
    """`key=value` pairs separated by commas, e.g. `a=Support viewer,b=Support runner`."""
    mapping: dict[str, str] = {}
    for pair in env_list(name, ""):
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not key or not value:
            raise ImproperlyConfigured(f"{name}: {pair!r} is not of the form name=value.")
        if key in mapping:
            raise ImproperlyConfigured(f"{name}: {key!r} is given more than once.")
        mapping[key] = value
    return mapping


INSTALLED_APPS += ["axes", "accounts"]
# The session timeout reads `request.htmx`, so it follows the htmx middleware.
# Axes turns a refused sign-in into the lockout page: its middleware stays last.
MIDDLEWARE += ["accounts.sessions.SessionTimeoutMiddleware", "axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out sign-in before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.LocalPasswordBackend",
    # Answers only the single sign-on callback, and only when OIDC is configured.
    "accounts.oidc.SingleSignOnBackend",
]

PASSWORD_MIN_LENGTH = env_int("PASSWORD_MIN_LENGTH", 12, minimum=8)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The addresses of the reverse proxies in front of the app. Only a request
# from one of them has its X-Forwarded-For read (`accounts.clientip`); by
# default none is trusted and the client is the connection's own address.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")

# Failed sign-ins (both login pages) are counted per username and client
# address together, so nobody can lock a colleague out from elsewhere.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "accounts.clientip.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
AXES_RESET_ON_SUCCESS = True
# The log names who failed and from where (passwords are always masked).
AXES_SENSITIVE_PARAMETERS: list[str] = []

# Password reset by e-mail exists only when there is a mail server to send it.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Sync Health <noreply@localhost>")
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST)
PASSWORD_RESET_TIMEOUT = 60 * 60

# A session ends after this long without a page view (background polling does
# not count), and this long after sign-in whatever happens.
SESSION_IDLE_TIMEOUT_MINUTES = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 60, minimum=1)
SESSION_MAX_AGE_HOURS = env_int("SESSION_MAX_AGE_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = SESSION_MAX_AGE_HOURS * 60 * 60

# Single sign-on with OpenID Connect: on when a client ID is set.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_OP_ISSUER = os.environ.get("OIDC_OP_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
OIDC_GROUP_ROLES = env_mapping("OIDC_GROUP_ROLES")
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT_SECONDS", 10, minimum=1)
OIDC_USE_PKCE = True
OIDC_AUTHENTICATION_CALLBACK_URL = "sso-callback"
if OIDC_ENABLED:
    _oidc_required = [
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_OP_ISSUER",
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
    ]
    if not OIDC_RP_SIGN_ALGO.startswith("HS"):
        _oidc_required.append("OIDC_OP_JWKS_ENDPOINT")
    _oidc_missing = [name for name in _oidc_required if not globals()[name]]
    if _oidc_missing:
        raise ImproperlyConfigured(
            f"OIDC_RP_CLIENT_ID is set, so single sign-on needs {', '.join(_oidc_missing)} too."
        )
    if "openid" not in OIDC_RP_SCOPES.split():
        raise ImproperlyConfigured("OIDC_RP_SCOPES must include 'openid'.")
# --- end of signing in ---
# --- Health and metrics (README "Health and metrics") ---
# /healthz and /readyz answer anyone (a load balancer has no session); /metrics
# answers only a scraper that shows the token and/or comes from an allowed
# address, and is off (404) until one of them is set.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN is shorter than 16 characters: use a long random value "
        "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
    )
METRICS_ALLOWED_IPS = env_networks("METRICS_ALLOWED_IPS")
# How often each process writes the counts it gathered to the shared store (and
# once more as it exits); 0: only at the end of each task and at each scrape.
METRICS_FLUSH_SECONDS = env_float("METRICS_FLUSH_SECONDS", 10)
# /readyz reports whether the upstream answers, asking it at most this often
# (one request from the shared budget); 0: never asks, reports "not checked".
HEALTH_UPSTREAM_CHECK_SECONDS = env_int("HEALTH_UPSTREAM_CHECK_SECONDS", 60)
HEALTH_UPSTREAM_TIMEOUT_SECONDS = env_float("HEALTH_UPSTREAM_TIMEOUT_SECONDS", 3, minimum=0.1)
# Probes and scrapers often speak plain HTTP to the server itself, inside the
# network: a redirect to HTTPS would fail them.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
# --- end of Health and metrics ---
# --- Production guards: a deployment refuses to start half configured ---
# (The development broker is a warning instead: synchealth/checks.py.)
if DEPLOYMENT and not SANDBOX_ENABLED and not os.environ.get("CODAT_BASE_URL", "").strip():
    raise ImproperlyConfigured(
        "CODAT_BASE_URL is not set. Set it to https://api.codat.io (or enable the sandbox "
        "upstream with SANDBOX_ENABLED=1, or DEBUG=1 for local development)."
    )
if SANDBOX_ENABLED and not DEBUG and SANDBOX_API_KEY == DEMO_SANDBOX_API_KEY:
    raise ImproperlyConfigured(
        "The sandbox is enabled with its demo API key, which anyone can read in the "
        "repository. Set SANDBOX_API_KEY to a long random value (or DEBUG=1 for local "
        "development)."
    )
# --- end of Production guards ---


# --- Alerts ---
# Absolute links in alert messages ("https://synchealth.example.com"); without
# it, messages carry the path alone.
SITE_URL = os.environ.get("SITE_URL", "").strip().rstrip("/")
# Channel secrets are encrypted with this key (any long random text); when
# unset, with a key derived from SECRET_KEY.
ALERTS_ENCRYPTION_KEY = os.environ.get("ALERTS_ENCRYPTION_KEY", "")
# Channels may not point at private, loopback or link-local addresses (a lead
# must not reach internal services through the worker) unless listed here.
ALERTS_ALLOWED_NETWORKS = env_networks("ALERTS_ALLOWED_NETWORKS")
