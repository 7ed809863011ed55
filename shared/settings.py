"""Process settings, read once from the environment (pydantic-settings).

Every setting is documented in README.md ("Settings"). Names are upper-case environment variables.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
DEV_FLOWER_BASIC_AUTH = "admin:reserved-share-dev"

EMBEDDED_URLS_FILE = Path(__file__).resolve().parent.parent / ".embedded" / "urls.json"
"""Written by deploy/embedded.py while it serves embedded servers (git-ignored): the URLs a
command started without DATABASE_URL/REDIS_URL uses (e.g. the import command beside `make run`)."""


def _socket_alive(url: str) -> bool:
    """A unix-socket URL whose socket file exists (a TCP URL is taken as it is)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return Path(parts.path).exists()
    host = parse_qs(parts.query).get("host", [""])[0]
    if host.startswith("/"):
        port = parts.port or 5432
        return (Path(host) / f".s.PGSQL.{port}").exists()
    return True


def embedded_urls(path: Path | None = None) -> dict[str, str]:
    """`database_url` / `redis_url` of the embedded servers being served, when still alive."""
    try:
        data = json.loads((path or EMBEDDED_URLS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        key: url
        for key in ("database_url", "redis_url")
        if isinstance(url := data.get(key), str) and url and _socket_alive(url)
    }


# Development keys of the SMS mobile encryption (AES-256-GCM, `key_id:base64`) and keyed hash;
# refused in production like the development JWT secret.
DEV_SMS_MOBILE_KEYS = "dev1:ZGV2LW9ubHktc21zLW1vYmlsZS1rZXktMzItYnl0ZXM="
DEV_SMS_MOBILE_HASH_KEY = "dev-only-sms-mobile-hash-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/reserved_share"
    redis_url: str = "redis://127.0.0.1:6379/0"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "reserved-share"
    jwt_default_ttl_seconds: int = Field(default=8 * 3600, ge=1)
    # key rotation: tokens are signed with JWT_SECRET and carry `kid` = JWT_KEY_ID; tokens signed
    # with an earlier key still verify while it is listed in JWT_PREVIOUS_KEYS ("kid=secret,...")
    jwt_key_id: str = Field(default="k1", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")
    jwt_previous_keys: SecretStr = SecretStr("")

    # HTTP: browser origins allowed by CORS (comma-separated; empty = no CORS headers)
    cors_origins: str = ""
    # request body limits: multipart uploads (150 receipts x 5 MB), everything else (JSON)
    http_max_upload_bytes: int = Field(default=800 * 2**20, ge=1)
    http_max_body_bytes: int = Field(default=2**20, ge=1)

    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    log_format: Literal["plain", "json"] = "plain"

    # Flower (Celery monitor): "user:password" for its page and API; a development default
    flower_basic_auth: SecretStr = SecretStr(DEV_FLOWER_BASIC_AUTH)

    # payments
    match_batch_size: int = Field(default=5_000, ge=1)
    import_batch_size: int = Field(default=5_000, ge=1)
    # CSV statements read and COPYed by Arrow when possible (parsers/native.py); false: Python
    import_native: bool = True
    voucher_dir: str = ".embedded/vouchers"

    # confirmation (checks and exports)
    deadline_warning_days: int = Field(default=7, ge=0)

    # notify
    sms_max_attempts: int = Field(default=8, ge=1)

    # statement import limits (docs/statements.md)
    import_max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    import_max_uncompressed_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    import_max_rows: int = Field(default=2_000_000, ge=1)
    import_max_cell_chars: int = Field(default=131_072, ge=1)
    import_max_xml_elements: int = Field(default=5_000_000, ge=1)
    import_max_blank_rows: int = Field(default=10_000, ge=1)
    import_lease_seconds: int = Field(default=900, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _embedded_servers(cls, data: Any) -> Any:
        """Unset DATABASE_URL/REDIS_URL: the embedded servers `make run` serves, if any (never
        in tests: they must use the variables)."""
        if not isinstance(data, dict):
            return data
        keys = {str(k).lower() for k in data}
        if str(data.get("environment", "development")).lower() == "test":
            return data
        missing = {"database_url", "redis_url"} - keys
        if missing:
            found = embedded_urls()
            data = {**data, **{k: v for k, v in found.items() if k in missing}}
        return data

    # notify: SMS providers (services/notify/providers, docs/sms-providers.md)
    sms_providers: str = "log"  # ordered failover list, comma-separated: log, aliyun, tencent
    sms_http_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    sms_failover_cooldown_seconds: float = Field(default=300.0, ge=0)
    sms_aliyun_access_key_id: str = ""
    sms_aliyun_access_key_secret: SecretStr = SecretStr("")
    sms_aliyun_endpoint: str = "https://dysmsapi.aliyuncs.com"
    sms_aliyun_sign_name: str = ""
    sms_tencent_secret_id: str = ""
    sms_tencent_secret_key: SecretStr = SecretStr("")
    sms_tencent_endpoint: str = "https://sms.tencentcloudapi.com"
    sms_tencent_sdk_app_id: str = ""
    sms_tencent_sign_name: str = ""
    sms_tencent_region: str = "ap-guangzhou"

    # notify: dispatch, receipts, personal data (services/notify, docs/notify.md)
    sms_receipt_token: SecretStr = SecretStr("")  # ?token= of the receipt URLs; empty = refuse
    sms_mobile_keys: SecretStr = SecretStr(DEV_SMS_MOBILE_KEYS)  # "id:b64key[,id:b64key]"
    sms_mobile_hash_key: SecretStr = SecretStr(DEV_SMS_MOBILE_HASH_KEY)
    sms_retention_days: int = Field(default=180, ge=1)
    sms_sending_lease_seconds: float = Field(default=120.0, gt=0)
    sms_query_delay_seconds: float = Field(default=30.0, ge=0)
    sms_retry_base_seconds: float = Field(default=5.0, ge=0)
    sms_retry_max_seconds: float = Field(default=900.0, ge=0)
    sms_wait_default_seconds: float = Field(default=60.0, ge=0)
    sms_sweep_batch_size: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment == "production" and (
            self.sms_mobile_keys.get_secret_value() == DEV_SMS_MOBILE_KEYS
            or self.sms_mobile_hash_key.get_secret_value() == DEV_SMS_MOBILE_HASH_KEY
        ):
            raise ValueError(
                "SMS_MOBILE_KEYS and SMS_MOBILE_HASH_KEY must be set to real keys in production"
            )
        if self.environment == "production" and (
            self.jwt_secret.get_secret_value() == DEV_JWT_SECRET
            or len(self.jwt_secret.get_secret_value()) < 32
        ):
            raise ValueError("JWT_SECRET must be set to a real secret (>= 32 chars) in production")
        if self.environment == "production" and (
            self.flower_basic_auth.get_secret_value() == DEV_FLOWER_BASIC_AUTH
            or ":" not in self.flower_basic_auth.get_secret_value()
        ):
            raise ValueError("FLOWER_BASIC_AUTH must be set to user:password in production")
        self.verification_keys()  # a malformed JWT_PREVIOUS_KEYS fails at start, not per request
        return self

    def verification_keys(self) -> dict[str, str]:
        """`kid` → secret of every key a token may be signed with (current first)."""
        keys = {self.jwt_key_id: self.jwt_secret.get_secret_value()}
        for item in self.jwt_previous_keys.get_secret_value().split(","):
            if not item.strip():
                continue
            kid, sep, secret = item.strip().partition("=")
            if not sep or not kid or not secret:
                raise ValueError("JWT_PREVIOUS_KEYS must read kid=secret[,kid=secret...]")
            keys.setdefault(kid, secret)
        return keys

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def celery_broker_url(self) -> str:
        """Kombu spells a unix socket `redis+socket:///path`; we accept `unix:///path` too."""
        if self.redis_url.startswith("unix://"):
            return "redis+socket://" + self.redis_url.removeprefix("unix://")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
