"""Where the obstore backend's credentials, region and endpoint come from.

object_store reads the ``AWS_*`` environment variables but not the shared files
(``~/.aws/credentials``, ``~/.aws/config``) nor profiles, so aiostore resolves them here, the
way botocore does, and passes the result explicitly:

* credentials: the ``aws_access_key_id`` / ``aws_secret_access_key`` / ``aws_session_token``
  options; else (unless the ``profile`` option names a profile) ``AWS_ACCESS_KEY_ID`` /
  ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``; else the profile (the ``profile`` option,
  ``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE`` or ``default``) in the credentials file
  (``AWS_SHARED_CREDENTIALS_FILE``, ``~/.aws/credentials``), then in the config file
  (``AWS_CONFIG_FILE``, ``~/.aws/config``); else none, and object_store's own chain applies
  (web identity, ECS/EKS container credentials, EC2 instance metadata).
* region: ``region_name``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's ``region``.
* endpoint: ``endpoint_url``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, the profile's
  ``endpoint_url``.

A profile that needs anything else (``credential_process``, SSO, ``role_arn``) is refused with
:class:`~aiostore.errors.InvalidArgumentError`: botocore resolves those
(``backend="aiobotocore"``). Reading the files blocks, so callers run :func:`resolve` in the
worker pool.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidArgumentError

__all__ = ["AwsSettings", "read_profile", "resolve"]

_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
#: profile settings that only botocore's credential chain knows how to use
_UNSUPPORTED = ("credential_process", "sso_session", "sso_start_url", "role_arn",
                "web_identity_token_file", "credential_source")


@dataclass(frozen=True)
class AwsSettings:
    """The resolved connection settings; None where object_store's defaults apply."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    #: where the credentials came from: "options", "environment", "profile NAME (PATH)" or
    #: "object_store" (its own chain: web identity, container, instance metadata)
    source: str = "object_store"


def _read(path: str) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        return None
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"cannot read the AWS file {path}: {exc}") from exc
    return parser


def read_profile(name: str, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The settings of profile ``name`` (the credentials file's entries over the config
    file's) and the files it was found in (empty: no such profile)."""
    home = environ.get("HOME") or os.path.expanduser("~")
    cred_path = os.path.expanduser(environ.get("AWS_SHARED_CREDENTIALS_FILE")
                                   or os.path.join(home, ".aws", "credentials"))
    conf_path = os.path.expanduser(environ.get("AWS_CONFIG_FILE")
                                   or os.path.join(home, ".aws", "config"))
    settings: dict[str, str] = {}
    found: list[str] = []
    config = _read(conf_path)
    if config is not None:
        for section in ((f"profile {name}", name) if name == "default" else (f"profile {name}",)):
            if config.has_section(section):
                settings.update(config.items(section))
                found.append(conf_path)
                break
    credentials = _read(cred_path)
    if credentials is not None and credentials.has_section(name):
        settings.update(credentials.items(name))
        found.append(cred_path)
    return {k.strip().lower(): v.strip() for k, v in settings.items()}, found


def resolve(options: Mapping[str, str], profile: str | None,
            environ: Mapping[str, str]) -> AwsSettings:
    """The settings for ``options`` (the connection options given to ``open_storage``),
    the ``profile`` option and the environment ``environ``."""
    given = [k for k in _KEYS if options.get(k)]
    if given and not (options.get("aws_access_key_id") and options.get("aws_secret_access_key")):
        raise InvalidArgumentError("aws_access_key_id and aws_secret_access_key go together; "
                                   f"got only {given}")
    name = profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE")
    named = name is not None
    name = name or "default"
    prof, found = read_profile(name, environ)
    if named and not found:
        raise InvalidArgumentError(f"the AWS profile {name!r} is in neither the config nor the "
                                   "credentials file")
    region = (options.get("region_name") or environ.get("AWS_REGION")
              or environ.get("AWS_DEFAULT_REGION") or prof.get("region") or None)
    endpoint = (options.get("endpoint_url") or environ.get("AWS_ENDPOINT_URL_S3")
                or environ.get("AWS_ENDPOINT_URL") or prof.get("endpoint_url") or None)
    if given:
        return AwsSettings(options["aws_access_key_id"], options["aws_secret_access_key"],
                           options.get("aws_session_token"), region, endpoint, "options")
    if profile is None and environ.get("AWS_ACCESS_KEY_ID") and \
            environ.get("AWS_SECRET_ACCESS_KEY"):
        return AwsSettings(environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"],
                           environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN")
                           or None, region, endpoint, "environment")
    if prof.get("aws_access_key_id") and prof.get("aws_secret_access_key"):
        return AwsSettings(prof["aws_access_key_id"], prof["aws_secret_access_key"],
                           prof.get("aws_session_token") or None, region, endpoint,
                           f"profile {name} ({', '.join(found)})")
    unsupported = sorted(k for k in _UNSUPPORTED if k in prof)
    if unsupported:
        raise InvalidArgumentError(
            f"the AWS profile {name!r} gets its credentials through {unsupported}, which only "
            "botocore resolves: pass backend='aiobotocore', or explicit credentials")
    return AwsSettings(region=region, endpoint_url=endpoint)
