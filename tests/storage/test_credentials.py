"""Where the default (obstore) backend gets its credentials, region and endpoint: explicit
options, the AWS environment variables, the shared credentials / config files and profiles —
each checked against the real server with a private HOME and environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import aiostore
from aiostore import errors
from aiostore.storage.aws_config import resolve
from aiostore.storage.obstore_s3 import ObstoreStorage
from aiostore.testing import SeaweedFS

_AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
             "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
             "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_ALLOW_HTTP")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no AWS_* variables."""
    for name in _AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".aws").mkdir()
    return tmp_path


async def _roundtrip(bucket: str, **options: Any) -> str:
    """Put and get one object with ``options``; where the credentials came from."""
    async with aiostore.open_storage(f"s3://{bucket}", **options) as st:
        assert isinstance(st, ObstoreStorage)
        await st.put("k", b"v", if_none_match=True)
        assert await st.get("k") == b"v"
        await st.delete("k")
        assert st.credentials_source is not None
        return st.credentials_source


def _files(home: Path, server: SeaweedFS, *, profile: str = "default", secret: str | None = None,
           region: bool = True) -> None:
    section = "default" if profile == "default" else f"profile {profile}"
    (home / ".aws" / "credentials").write_text(
        f"[{profile}]\naws_access_key_id = {server.access_key}\n"
        f"aws_secret_access_key = {secret or server.secret_key}\n")
    (home / ".aws" / "config").write_text(
        f"[{section}]\n" + (f"region = {server.region}\n" if region else "")
        + f"endpoint_url = {server.endpoint_url}\n")


@pytest.mark.asyncio
async def test_explicit_options(home: Path, s3_server: SeaweedFS, s3_bucket: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # an unrelated session token in the environment must not join explicit keys
    monkeypatch.setenv("AWS_SESSION_TOKEN", "someone-elses-token")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert await _roundtrip(s3_bucket, **s3_server.storage_options()) == "options"


@pytest.mark.asyncio
async def test_environment_variables(home: Path, s3_server: SeaweedFS, s3_bucket: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ALLOW_HTTP")  # (aiostore allows http for an http:// endpoint)
    assert await _roundtrip(s3_bucket) == "environment"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(errors.AccessDeniedError):
        await _roundtrip(s3_bucket)


@pytest.mark.asyncio
async def test_shared_files_default_profile(home: Path, s3_server: SeaweedFS,
                                            s3_bucket: str) -> None:
    _files(home, s3_server)
    source = await _roundtrip(s3_bucket)
    assert source.startswith("profile default") and ".aws/credentials" in source
    _files(home, s3_server, secret="wrong")  # the file really is what is used
    with pytest.raises(errors.AccessDeniedError):
        await _roundtrip(s3_bucket)


@pytest.mark.asyncio
async def test_named_profile_from_env_and_option(home: Path, s3_server: SeaweedFS,
                                                 s3_bucket: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _files(home, s3_server, profile="dev")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert (await _roundtrip(s3_bucket)).startswith("profile dev")
    monkeypatch.delenv("AWS_PROFILE")
    # the profile option wins over keys in the environment (as in botocore)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert (await _roundtrip(s3_bucket, profile="dev")).startswith("profile dev")
    # files elsewhere, named by AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (home / ".aws" / "credentials").rename(moved / "creds")
    (home / ".aws" / "config").rename(moved / "conf")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(moved / "creds"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(moved / "conf"))
    assert str(moved / "creds") in await _roundtrip(s3_bucket, profile="dev")


@pytest.mark.asyncio
async def test_profiles_it_cannot_use_are_refused(home: Path) -> None:
    (home / ".aws" / "config").write_text("[profile sso]\nsso_session = corp\nregion = eu-west-1\n"
                                          "[profile proc]\ncredential_process = /bin/false\n")
    for profile, match in (("missing", "neither"), ("sso", "aiobotocore"),
                           ("proc", "credential_process")):
        with pytest.raises(errors.InvalidArgumentError, match=match):
            async with aiostore.open_storage("s3://bucket", profile=profile):
                pass
        st = aiostore.open_storage("s3://bucket", profile=profile)
        with pytest.raises(errors.InvalidArgumentError, match=match):
            await st.head("k")


def test_resolution_order() -> None:
    env = {"HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "ek", "AWS_SECRET_ACCESS_KEY": "es",
           "AWS_SESSION_TOKEN": "et", "AWS_REGION": "r-env", "AWS_DEFAULT_REGION": "r-def",
           "AWS_ENDPOINT_URL": "http://e", "AWS_ENDPOINT_URL_S3": "http://e-s3"}
    s = resolve({"aws_access_key_id": "ok", "aws_secret_access_key": "os",
                 "region_name": "r-opt"}, None, env)
    assert (s.access_key_id, s.session_token, s.region, s.endpoint_url, s.source) == \
        ("ok", None, "r-opt", "http://e-s3", "options")
    s = resolve({}, None, env)
    assert (s.access_key_id, s.session_token, s.region, s.source) == \
        ("ek", "et", "r-env", "environment")
    s = resolve({}, None, {"HOME": "/nonexistent", "AWS_DEFAULT_REGION": "r-def"})
    assert (s.access_key_id, s.region, s.endpoint_url, s.source) == \
        (None, "r-def", None, "object_store")
    with pytest.raises(errors.InvalidArgumentError, match="go together"):
        resolve({"aws_access_key_id": "ok"}, None, env)


def test_profile_files_are_parsed_like_botocore(tmp_path: Path) -> None:
    (tmp_path / "conf").write_text(
        "[default]\nregion = r-default\n[profile dev]\nregion = r-dev\n"
        "aws_access_key_id = from-config\naws_secret_access_key = s\n[dev]\nregion = ignored\n")
    (tmp_path / "creds").write_text("[dev]\naws_access_key_id = from-creds\n"
                                    "aws_secret_access_key = s2\naws_session_token = t\n")
    env = {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "conf"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds")}
    s = resolve({}, "dev", env)  # the credentials file wins over the config file
    assert (s.access_key_id, s.secret_access_key, s.session_token, s.region) == \
        ("from-creds", "s2", "t", "r-dev")
    assert resolve({}, None, env).region == "r-default"
    (tmp_path / "creds").write_text("not an ini file")
    with pytest.raises(errors.InvalidArgumentError, match="cannot read"):
        resolve({}, "dev", env)


@pytest.mark.asyncio
async def test_no_credentials_and_no_metadata_service_is_a_clear_error(
        home: Path, s3_server: SeaweedFS, s3_bucket: str) -> None:
    # (the test suite sets AWS_EC2_METADATA_DISABLED: nothing may ask 169.254.169.254)
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    storage = aiostore.open_storage(f"s3://{s3_bucket}", endpoint_url=s3_server.endpoint_url,
                                    region_name=s3_server.region)
    with pytest.raises(errors.AccessDeniedError, match=r"no AWS credentials.*metadata"):
        await storage.head("anything")
    await storage.aclose()
