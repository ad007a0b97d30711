"""Talking to Slack through slack-sdk: bounded retries, redacted errors, one error taxonomy.

Both modes (incoming webhook, bot token plus ``chat.postMessage``) go through the real
slack-sdk clients. This module decides three things the delivery loop relies on:

* how long a pass may wait: slack-sdk's retry handlers would ``time.sleep`` for whatever
  ``Retry-After`` says; ours sleep through a ``WaitBudget`` that is small, bounded and
  injectable (tests never really sleep);
* what a failure means (``SlackError.scope``): "transient" (try again later), "channel" (the
  config or the app's permissions are wrong: nothing can get through) or "message" (only this
  message is refused);
* that no secret escapes: the clients log through a redacting logger, and every exception
  from slack-sdk or urllib is replaced by a ``SlackError`` with redacted text and no chained
  cause.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from http.client import HTTPException
from typing import Any, cast
from urllib.error import URLError

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry import HttpRequest as RetryHttpRequest
from slack_sdk.http_retry import HttpResponse as RetryHttpResponse
from slack_sdk.http_retry import RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from watcher.config import SlackConfig
from watcher.errors import NotifyError
from watcher.redact import RedactingFilter, Redactor, redact_token

CHANNEL = "slack"


# --- secrets and logging ------------------------------------------------------------------

REDACTOR = Redactor()
"""Every Slack secret this process has seen; shared by the loggers below and the errors."""

for _name in ("watcher.notify", "watcher.slack.sdk"):
    logging.getLogger(_name).addFilter(RedactingFilter(REDACTOR))


def register_secrets(slack: SlackConfig) -> None:
    for secret in (slack.webhook_url, slack.token):
        if secret is not None:
            REDACTOR.add(secret.get_secret_value())


# --- talking to Slack -----------------------------------------------------------------------

# fmt: off
# Nothing gets through until the user fixes the config or the Slack app's permissions.
CHANNEL_ERRORS = frozenset({
    "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
    "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
    "missing_scope", "no_permission", "access_denied", "team_access_not_granted",
    "ekm_access_denied", "org_login_required", "restricted_action", "invalid_token",
    "no_service", "no_active_hooks", "action_prohibited", "team_disabled",
    "posting_to_general_channel_denied",
})
# Only this message is wrong; the next one may well go through.
MESSAGE_ERRORS = frozenset({
    "invalid_blocks", "invalid_blocks_format", "msg_too_long", "invalid_payload", "no_text",
    "too_many_attachments", "invalid_attachments", "invalid_arguments", "invalid_form_data",
    "invalid_json", "json_not_object", "metadata_too_large", "invalid_metadata_format",
    "invalid_metadata_schema", "markdown_text_conflict",
})
# fmt: on
_THREAD_ERRORS = frozenset({"thread_not_found", "invalid_thread_ts"})


class SlackError(NotifyError):
    """Slack did not take a message. ``scope`` is "transient", "channel" or "message".

    ``code`` is Slack's own error code when it gave one (``invalid_auth``); ``message`` is the
    redacted one-line text stored in the outbox and shown to users.
    """

    def __init__(
        self, message: str, code: str, scope: str, *, retry_after: float | None = None
    ) -> None:
        self.code = code
        self.scope = scope
        self.retry_after = retry_after
        super().__init__(CHANNEL, REDACTOR(message), permanent=scope != "transient")


class WaitBudget:
    """Bounds how long slack-sdk's retry handlers may sleep during one delivery pass.

    A 429 asking for more than ``each`` seconds, or a retry that would take the pass past
    ``total``, is not waited for here: the outbox schedules it for a later pass instead, so
    ``watcher check`` never hangs on a rate limit.
    """

    def __init__(self, *, each: float, total: float, sleep: Callable[[float], None]) -> None:
        self.each, self.total, self.sleep, self.spent = each, total, sleep, 0.0

    def allows(self, seconds: float) -> bool:
        return seconds <= self.each and self.spent + seconds <= self.total

    def wait(self, seconds: float) -> None:
        self.spent += seconds
        self.sleep(seconds)


def _retry_after(headers: dict[str, Any]) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(str(value[0] if isinstance(value, list) else value)))
            except (TypeError, ValueError, IndexError):
                break
    return 1.0


class _Budgeted(RetryHandler):
    """slack-sdk retry handlers sleep with ``time.sleep``; these sleep through the budget."""

    budget: WaitBudget

    def delay(self, state: RetryState, response: RetryHttpResponse | None) -> float:
        return 0.5 * 2.0**state.current_attempt

    def can_retry(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return super().can_retry(
            state=state, request=request, response=response, error=error
        ) and self.budget.allows(self.delay(state, response))

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self.budget.wait(self.delay(state, response))
        state.increment_current_attempt()


class RateLimitRetry(_Budgeted, RateLimitErrorRetryHandler):
    def delay(self, state: RetryState, response: RetryHttpResponse | None) -> float:
        return _retry_after(response.headers) if response is not None else 1.0


class ServerErrorRetry(_Budgeted, ServerErrorRetryHandler):
    def _can_retry(
        self,
        *,
        state: RetryState,
        request: RetryHttpRequest,
        response: RetryHttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)


class ConnectionRetry(_Budgeted, ConnectionErrorRetryHandler):
    """Only failures to *send* (refused, DNS, connect timeout: urllib's ``URLError``).

    slack-sdk would also retry a connection dropped after the request went out; Slack may have
    posted that one, so it is left to the outbox's next pass, like a timeout.
    """

    def __init__(self, max_retry_count: int) -> None:
        super().__init__(max_retry_count, error_types=[URLError])


def retry_handlers(budget: WaitBudget) -> list[RetryHandler]:
    """Rate limits, 5xx (500/502/503/504) and dropped connections, all within ``budget``."""
    handlers: list[_Budgeted] = [RateLimitRetry(3), ServerErrorRetry(2), ConnectionRetry(1)]
    for handler in handlers:
        handler.budget = budget
    return [*handlers]


def make_client(
    slack: SlackConfig,
    *,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    max_wait: float = 10.0,
    total_wait: float = 30.0,
) -> WebhookClient | WebClient:
    """The slack-sdk client for the configured mode, with bounded retries.

    It logs through ``watcher.slack.sdk``, whose filter redacts: slack-sdk's own DEBUG lines
    quote the webhook URL.
    """
    register_secrets(slack)
    logger = logging.getLogger("watcher.slack.sdk")
    handlers = retry_handlers(WaitBudget(each=max_wait, total=total_wait, sleep=sleep))
    seconds = cast(int, timeout)  # typed int in slack-sdk, but handed to urllib, which takes float
    if slack.webhook_url is not None:
        url = slack.webhook_url.get_secret_value()
        return WebhookClient(url, timeout=seconds, logger=logger, retry_handlers=handlers)
    assert slack.token is not None  # SlackConfig guarantees one mode
    return WebClient(
        token=slack.token.get_secret_value(),
        base_url=slack.base_url or WebClient.BASE_URL,
        timeout=seconds,
        logger=logger,
        retry_handlers=handlers,
    )


ClientFactory = Callable[[SlackConfig], WebhookClient | WebClient]


# No previews of agency pages cluttering the channel, and no parsing of page text into
# mentions: ``parse: none`` and ``link_names: false`` are Slack's defaults, stated anyway.
_QUIET: dict[str, Any] = {
    "unfurl_links": False,
    "unfurl_media": False,
    "parse": "none",
    "link_names": False,
}


class Poster:
    """Posts one message through either client and turns every failure into a ``SlackError``.

    Errors are built after leaving the ``except`` block, so no slack-sdk exception (whose text
    and traceback may quote the URL) is chained onto ours.
    """

    def __init__(self, client: WebhookClient | WebClient, slack: SlackConfig) -> None:
        self.client = client
        self.channel = slack.channel or ""
        self.threads = isinstance(client, WebClient)
        if isinstance(client, WebhookClient):
            self.where = f"webhook {REDACTOR(client.url)}"
        else:
            self.where = f"{self.channel} as {redact_token(client.token or '')}"

    def post(
        self, text: str, blocks: list[dict[str, Any]], *, thread_ts: str | None = None
    ) -> str | None:
        """Returns the message ts (bot mode) or None (webhooks do not say)."""
        failure: SlackError
        try:
            if isinstance(self.client, WebhookClient):
                resp = self.client.send_dict(dict(_QUIET, text=text, blocks=blocks or None))
                if resp.status_code == 200 and resp.body.strip() == "ok":
                    return None
                failure = _webhook_failure(resp.status_code, resp.body, resp.headers)
            else:
                answer = self.client.chat_postMessage(
                    channel=self.channel,
                    text=text,
                    blocks=blocks or None,
                    thread_ts=thread_ts,
                    **_QUIET,
                )
                return str(answer.get("ts") or "") or None
        except SlackApiError as e:
            failure = _api_failure(e.response.status_code, e.response.data, e.response.headers)
        except SlackRequestError as e:
            failure = SlackError(f"request refused by slack-sdk: {e}", "", "channel")
        except TimeoutError:
            failure = SlackError(f"timed out after {self.client.timeout}s", "", "transient")
        except (OSError, HTTPException) as e:
            reason = getattr(e, "reason", e)
            failure = SlackError(f"cannot reach Slack: {reason}", "", "transient")
        if thread_ts and failure.code in _THREAD_ERRORS:
            return self.post(text, blocks)  # the thread is gone: still say it recovered
        raise failure


def _code(text: object) -> str:
    """Slack's error code (``invalid_auth``), or "" when the answer is not one (an HTML page)."""
    text = str(text or "").strip()
    return text if re.fullmatch(r"[a-z][a-z0-9_]{1,60}", text) else ""


def _webhook_failure(status: int, body: str, headers: dict[str, Any]) -> SlackError:
    code = _code(body)
    message = f"{code} (HTTP {status})" if code else f"HTTP {status}"
    if status == 429:
        return SlackError(message, code, "transient", retry_after=_retry_after(headers))
    if status >= 500 or status == 200:
        return SlackError(message, code, "transient")
    if status == 400 and code not in CHANNEL_ERRORS:
        return SlackError(message, code, "message")
    return SlackError(message, code, "channel")


_TRANSIENT_CODES = ("ratelimited", "internal_error", "fatal_error", "service_unavailable")


def _api_failure(status: int, data: Any, headers: dict[str, Any]) -> SlackError:
    code = _code(data.get("error")) if isinstance(data, dict) else ""
    message = code or f"HTTP {status}"
    if status == 429 or code == "ratelimited":
        return SlackError(message, code, "transient", retry_after=_retry_after(headers))
    if status >= 500 or code in _TRANSIENT_CODES or code == "request_timeout":
        return SlackError(message, code, "transient")
    if code in MESSAGE_ERRORS or code in _THREAD_ERRORS:
        return SlackError(message, code, "message")
    return SlackError(message, code, "channel")
