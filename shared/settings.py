"""Process settings, read once from the environment (pydantic-settings).

Every setting is documented in README.md ("Settings"). Names are upper-case environment variables.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
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

    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"

    # payments
    match_batch_size: int = Field(default=5_000, ge=1)
    import_batch_size: int = Field(default=5_000, ge=1)
    voucher_dir: str = ".embedded/vouchers"

    # notify
    sms_provider: Literal["log", "http"] = "log"
    sms_http_url: str = ""
    sms_http_token: SecretStr = SecretStr("")
    sms_max_attempts: int = Field(default=8, ge=1)

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
        return self

    @property
    def celery_broker_url(self) -> str:
        """Kombu spells a unix socket `redis+socket:///path`; we accept `unix:///path` too."""
        if self.redis_url.startswith("unix://"):
            return "redis+socket://" + self.redis_url.removeprefix("unix://")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
