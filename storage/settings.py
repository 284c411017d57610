"""Where bytes live: S3 connection settings (typed, part of the settings loaded by flows/settings.py).

One `S3Settings` object is the only source of every S3 filesystem speechtok builds (`storage.fs`): the s3fs one
for reading and writing, and the pyarrow one Ray Train needs (a wrapper around the same s3fs). Fields left empty
are resolved by botocore itself, in each process, exactly as boto3 resolves them: `AWS_ENDPOINT_URL` /
`AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), `AWS_PROFILE`,
`AWS_DEFAULT_REGION`, `~/.aws/config` and `~/.aws/credentials`, instance roles (issue 10).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, SecretStr, model_validator

# Where botocore reads an endpoint override from when none is configured here (for messages only: botocore
# itself applies them).
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class S3Settings(BaseModel):
    """S3 connection options; credentials are secrets.

    Credentials are all-or-nothing: set both `access_key_id` and `secret_access_key` here
    (`SPEECHTOK_S3__ACCESS_KEY_ID`, `SPEECHTOK_S3__SECRET_ACCESS_KEY`) or neither, and boto3's own chain
    supplies a complete pair. A key from one source and a secret from another is refused (issue 10).

    Credentials are `SecretStr` and excluded from serialisation (`model_dump`, JSON): they never reach MLflow
    params, Prefect flow-run parameters or logs. They do travel, pickled, to the Ray tasks of a job, so a
    cluster's workers use the driver's explicit credentials when it has some, else their own environment.
    """

    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint, e.g. http://127.0.0.1:9000; else AWS_ENDPOINT_URL"
    )
    access_key_id: SecretStr | None = Field(default=None, exclude=True, repr=False)
    secret_access_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    session_token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    region: str | None = Field(default=None, description="else AWS_DEFAULT_REGION / AWS config")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="fail fast when the endpoint is unreachable")
    max_attempts: int = Field(default=3, ge=1, description="botocore retries for transient errors")

    @model_validator(mode="after")
    def _complete_credentials(self) -> S3Settings:
        given = {
            "access_key_id": self.access_key_id is not None,
            "secret_access_key": self.secret_access_key is not None,
        }
        if any(given.values()) and not all(given.values()):
            missing = next(name for name, present in given.items() if not present)
            raise ValueError(
                f"s3.{missing} is not set but the other half of the key pair is: set both "
                "SPEECHTOK_S3__ACCESS_KEY_ID and SPEECHTOK_S3__SECRET_ACCESS_KEY, or neither and let "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or an AWS profile) supply the pair"
            )
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("s3.session_token needs s3.access_key_id and s3.secret_access_key")
        return self

    @property
    def has_credentials(self) -> bool:
        return self.access_key_id is not None

    def endpoint(self) -> str | None:
        """The endpoint in effect: this setting, else the AWS variable botocore will use (None: AWS itself)."""
        if self.endpoint_url:
            return self.endpoint_url
        return next((os.environ[name] for name in _ENDPOINT_VARIABLES if os.environ.get(name)), None)

    def storage_options(self) -> dict[str, object]:
        """Keyword arguments for `s3fs.S3FileSystem` / `fsspec.filesystem("s3", ...)`.

        Only what is set here is passed; botocore fills in the rest from the environment of the process that
        builds the filesystem (a Ray worker on another node included).
        """
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
        if self.access_key_id is not None and self.secret_access_key is not None:
            options["key"] = self.access_key_id.get_secret_value()
            options["secret"] = self.secret_access_key.get_secret_value()
            if self.session_token is not None:
                options["token"] = self.session_token.get_secret_value()
        return options
