"""Where bytes live: storage root and S3 connection settings (typed, loaded by flows/settings.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class S3Settings(BaseModel):
    """S3 connection options. Empty fields fall back to the standard AWS variables/config files
    (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, profiles),
    exactly as boto3/s3fs resolve them."""

    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0, description="fail fast when the endpoint is unreachable")
    max_attempts: int = Field(default=3, ge=1, description="botocore retries for transient errors")

    def storage_options(self) -> dict[str, object]:
        """Keyword arguments for `s3fs.S3FileSystem` / `fsspec.filesystem("s3", ...)`."""
        client_kwargs: dict[str, object] = {}
        if self.endpoint_url:
            client_kwargs["endpoint_url"] = self.endpoint_url
        if self.region:
            client_kwargs["region_name"] = self.region
        options: dict[str, object] = {
            "client_kwargs": client_kwargs,
            "config_kwargs": {
                "connect_timeout": self.connect_timeout_s,
                "read_timeout": max(30.0, self.connect_timeout_s),
                "retries": {"max_attempts": self.max_attempts, "mode": "standard"},
            },
        }
        if self.access_key_id:
            options["key"] = self.access_key_id
        if self.secret_access_key:
            options["secret"] = self.secret_access_key
        return options
