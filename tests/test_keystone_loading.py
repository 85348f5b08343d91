"""Keystone auth built by keystoneauth1's loaders (docs/keystone.md): every auth type it ships,
from storage_options, OS_* variables and clouds.yaml (OS_CLOUD), against the real Keystone."""

from __future__ import annotations

import gc
import pickle
import weakref
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from keystoneauth1 import loading

from zarrstores.auth import (
    ConfigurationError,
    KeystoneAuth,
    PreAuth,
    SwiftAuthError,
    TempAuth,
    swift_auth,
)
from zarrstores.auth.clouds import load_cloud
from zarrstores.auth.keystone import keystone_options_from_env
from zarrstores.devserver.keystone import APPLICATION_CREDENTIAL_NAME
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftStore

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def roundtrip(url: str, **storage_options: object) -> None:
    """Write a small dataset to ``url`` and read it back."""
    ds = xr.Dataset({"t": ("x", np.arange(4.0))})
    ds.to_zarr(url, mode="w", storage_options=storage_options or None)
    xr.testing.assert_identical(xr.open_zarr(url, storage_options=storage_options).compute(), ds)


# -- every auth type, no allow-list ------------------------------------------------------------


@pytest.mark.parametrize("auth_type", sorted(loading.get_available_plugin_names()))
def test_every_auth_type_keystoneauth_ships_is_accepted(auth_type: str) -> None:
    options = {
        o.dest: ("v3password" if o.dest == "auth_methods" else "x")
        for o in loading.get_plugin_loader(auth_type).get_options()
        if o.required
    }
    extra = {
        "auth_url": "https://keystone.example.org:5000/v3",
        "endpoint": "https://swift.example.org/v1/AUTH_p",
        "password": "secret-pw",
        "token": "secret-tok",
        "passcode": "123456",
        "username": "u",
        "user_domain_name": "Default",
        "project_name": "p",
        "project_domain_name": "Default",
        "application_credential_id": "id",
        "discovery_endpoint": "https://idp.example.org/.well-known/openid-configuration",
        "client_id": "zarrstores",
        "client_secret": "secret-client",
    }
    known = {o.dest for o in loading.get_plugin_loader(auth_type).get_options()}
    if auth_type == "v3multifactor":
        known |= {o.dest for o in loading.get_plugin_loader("v3password").get_options()}
    options |= {k: v for k, v in extra.items() if k in known}
    if auth_type == "v3oidcaccesstoken":
        options["access_token"] = JWT
    auth = KeystoneAuth(auth_type=auth_type, **options)
    assert auth.auth_type == auth_type
    assert "secret-" not in repr(auth) and JWT not in repr(auth)
    assert auth._plugin() is not None  # keystoneauth1 builds the plugin from these options
    copy = pickle.loads(pickle.dumps(auth))
    assert copy.describe() == auth.describe()


def test_unknown_auth_type_and_options_are_named() -> None:
    unknown = r"unknown Keystone auth type 'v3oidc'.*OS_AUTH_TYPE"
    with pytest.raises(ConfigurationError, match=unknown):
        swift_auth(auth_type="v3oidc", auth_url="https://k.example.org/v3")
    typo = r"no option 'usrname' \(did you mean 'username'\?\)"
    with pytest.raises(ConfigurationError, match=typo) as e:
        swift_auth(auth_type="v3password", auth_url="https://k/v3", usrname="u", password="p")
    assert len(str(e.value).splitlines()[0]) < 200
    with pytest.raises(ConfigurationError, match=r"needs option 'identity_provider'.*OS_IDENTITY"):
        swift_auth(auth_type="v3oidcaccesstoken", auth_url="https://k/v3", access_token=JWT)
    env = {"OS_AUTH_URL": "https://k/v3", "OS_AUTH_TYPE": "v3applicationcredential"}
    with pytest.raises(ConfigurationError, match="OS_APPLICATION_CREDENTIAL_SECRET is not set"):
        swift_auth(env=env)
    env = {"OS_AUTH_URL": "https://k/v3", "OS_AUTH_TYPE": "v3token"}
    with pytest.raises(ConfigurationError, match="needs option 'token': OS_TOKEN is not set"):
        swift_auth(env=env)


def test_os_variables_are_read_as_the_openstack_cli_reads_them() -> None:
    env = {
        "OS_AUTH_URL": "https://k/v3",
        "OS_IDENTITY_PROVIDER": "egi.eu",
        "OS_PROTOCOL": "openid",
        "OS_PROJECT_ID": "p1",
        "OS_ACCESS_TOKEN": JWT,
        "OS_UNRELATED": "x",
    }
    assert keystone_options_from_env(env, "v3oidcaccesstoken") == {
        "auth_url": "https://k/v3",
        "identity_provider": "egi.eu",
        "protocol": "openid",
        "project_id": "p1",
        "access_token": JWT,
    }
    auth = swift_auth(env={**env, "OS_AUTH_TYPE": "v3oidcaccesstoken"})
    assert isinstance(auth, KeystoneAuth) and auth.token_source is not None
    assert auth.token_source.get() == JWT and JWT not in repr(auth)
    # The swift CLI's OS_AUTH_TOKEN is the Keystone token of the token types.
    env = {"OS_AUTH_URL": "https://k/v3", "OS_AUTH_TOKEN": "t", "OS_PROJECT_ID": "p"}
    tok = swift_auth(env=env)
    assert isinstance(tok, KeystoneAuth) and tok.auth_type == "token"


def test_swiftclient_style_options_still_work() -> None:
    v1 = swift_auth(authurl="https://s/auth/v1.0", user="a:b", key="k")
    assert isinstance(v1, TempAuth)
    ks = swift_auth(
        authurl="https://k:5000/v3",
        user="u",
        key="p",
        os_options={
            "tenant_name": "proj",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "endpoint_type": "internalURL",
            "region_name": "R",
        },
    )
    assert isinstance(ks, KeystoneAuth) and ks.auth_type == "v3password"
    assert (ks.option("project_name"), ks.interface, ks.region_name) == ("proj", "internal", "R")
    assert ks.option("password") is None  # secrets are never handed out


# -- clouds.yaml --------------------------------------------------------------------------------


def write_clouds(directory: Path, server: SwiftServer) -> None:
    env = server.os_env("password")
    app = server.os_env("application_credential")
    (directory / "clouds.yaml").write_text(
        f"""
clouds:
  site-password:
    auth:
      auth_url: {env["OS_AUTH_URL"]}
      username: {env["OS_USERNAME"]}
      project_name: {env["OS_PROJECT_NAME"]}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {env["OS_REGION_NAME"]}
    interface: public
    identity_api_version: 3
  site-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: {app["OS_AUTH_URL"]}
      application_credential_id: {app["OS_APPLICATION_CREDENTIAL_ID"]}
    regions: [{env["OS_REGION_NAME"]}]
"""
    )
    (directory / "secure.yaml").write_text(
        f"""
clouds:
  site-password:
    auth:
      password: {env["OS_PASSWORD"]}
  site-appcred:
    auth:
      application_credential_secret: {app["OS_APPLICATION_CREDENTIAL_SECRET"]}
"""
    )


@pytest.mark.parametrize("cloud", ["site-password", "site-appcred"])
def test_os_cloud_with_clouds_yaml_and_secure_yaml(
    swift_server: SwiftServer,
    swift_container: str,
    cloud: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_clouds(tmp_path, swift_server)
    monkeypatch.chdir(tmp_path)  # ./clouds.yaml comes first in the search path
    for name in [v for v in __import__("os").environ if v.startswith(("OS_", "ST_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLOUD", cloud)
    auth = swift_auth()
    assert isinstance(auth, KeystoneAuth)
    assert swift_server.keystone_project_id in auth.get().storage_url
    roundtrip(f"swift://{swift_container}/cloud.zarr")
    # the same cloud as a storage option, in a process without OS_CLOUD
    monkeypatch.delenv("OS_CLOUD")
    roundtrip(f"swift://{swift_container}/option.zarr", cloud=cloud)


def test_clouds_yaml_errors_name_the_file_and_the_clouds(tmp_path: Path) -> None:
    (tmp_path / "clouds.yaml").write_text("clouds:\n  a:\n    profile: vexxhost\n  b: {}\n")
    env = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml")}
    listed = r"'nope' is not in .*clouds.yaml \(clouds there: a, b"
    with pytest.raises(ConfigurationError, match=listed):
        load_cloud("nope", env)
    with pytest.raises(ConfigurationError, match="vendor profiles are not read"):
        load_cloud("a", env)
    with pytest.raises(ConfigurationError, match="has no 'auth' section"):
        load_cloud("b", env)
    missing = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "none.yaml")}
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_cloud("a", missing)


# -- real logins -----------------------------------------------------------------------------


def test_v3token_from_a_token_of_another_login(
    swift_server: SwiftServer, swift_container: str
) -> None:
    password = swift_auth(env=swift_server.os_env("password"))
    keystone_token = password.get().token.reveal()
    env = {
        "OS_AUTH_URL": swift_server.keystone_url,
        "OS_AUTH_TYPE": "v3token",
        "OS_TOKEN": keystone_token,
        "OS_PROJECT_NAME": "test",
        "OS_PROJECT_DOMAIN_NAME": "Default",
    }
    auth = swift_auth(env=env)
    assert isinstance(auth, KeystoneAuth) and auth.auth_type == "v3token"
    assert auth.identity().user == "tester"
    assert keystone_token not in repr(auth)
    roundtrip(f"swift://{swift_container}/v3token.zarr", auth=auth)


@pytest.mark.parametrize(
    "auth_type", ["password", "v3password", "v3multifactor", "v3applicationcredential"]
)
def test_auth_types_log_in_from_storage_options(
    swift_server: SwiftServer, swift_container: str, auth_type: str
) -> None:
    env = swift_server.os_env("password")
    options: dict[str, object] = {"auth_type": auth_type, "auth_url": env["OS_AUTH_URL"]}
    if auth_type == "v3applicationcredential":
        app = swift_server.os_env("application_credential")
        options["application_credential_name"] = APPLICATION_CREDENTIAL_NAME
        options["application_credential_secret"] = app["OS_APPLICATION_CREDENTIAL_SECRET"]
        options["username"], options["user_domain_name"] = "tester", "Default"
    else:
        options |= {
            "username": env["OS_USERNAME"],
            "password": env["OS_PASSWORD"],
            "user_domain_name": "Default",
            "project_name": env["OS_PROJECT_NAME"],
            "project_domain_name": "Default",
        }
    if auth_type == "v3multifactor":
        options["auth_methods"] = "v3password"
    roundtrip(f"swift://{swift_container}/{auth_type}.zarr", **options)
    identity = swift_auth(**options).identity()
    assert identity.project_id == swift_server.keystone_project_id


def test_stores_opened_with_the_same_login_share_it(
    swift_server: SwiftServer, swift_container: str
) -> None:
    """A notebook opening dataset after dataset: one Keystone or tempauth login for all, kept
    after the stores are dropped; a different secret or proxy is a login of its own."""
    env = swift_server.os_env("password")
    keystone = {k: env[f"OS_{k.upper()}"] for k in ("auth_url", "username", "password")}
    keystone |= {"project_name": env["OS_PROJECT_NAME"], "project_domain_name": "Default"}
    keystone["user_domain_name"] = "Default"
    tempauth = {"authurl": swift_server.auth_url, "user": "test:tester", "key": "testing"}
    for options in (keystone, tempauth):
        first = SwiftStore(swift_container, "a", storage_options=options)
        first["k"] = b"a"
        second = SwiftStore(swift_container, "b", storage_options=dict(options))
        assert second.client.auth is first.client.auth
        second["k"] = b"b"
        assert first.client.auth.exchanges == 1 and first["k"] == b"a"
    wrong = SwiftStore(swift_container, "c", storage_options={**tempauth, "key": "wrong"})
    assert wrong.client.auth is not first.client.auth
    with pytest.raises(SwiftAuthError, match="rejected user"):
        wrong["k"] = b"c"  # never written with the other store's login
    proxied = SwiftStore(swift_container, storage_options={**tempauth, "proxy": "http://p:3128"})
    assert proxied.client.auth is not first.client.auth and proxied.client.auth.proxy
    login = weakref.ref(first.client.auth)
    del first, second
    gc.collect()  # the stores are gone; the login they shared is kept for the next one
    again = SwiftStore(swift_container, "a", storage_options=dict(tempauth))
    assert again.client.auth is login() and again["k"] == b"a" and again.client.auth.exchanges == 1


def test_preauth_from_env_still_comes_first(swift_server: SwiftServer) -> None:
    env = {**swift_server.os_env("password"), "OS_STORAGE_URL": "http://h/v1/AUTH_x"}
    env["OS_AUTH_TOKEN"] = "t"
    assert isinstance(swift_auth(env=env), PreAuth)


def test_oidc_auth_sends_the_token_file_path_to_dask_workers_not_the_token(
    tmp_path: Path,
) -> None:
    from distributed.protocol.pickle import dumps, loads

    token_file = tmp_path / "token"
    token_file.write_text(JWT)
    token_file.chmod(0o600)
    auth = KeystoneAuth(
        "https://keystone.example.org:5000/v3",
        auth_type="v3oidcaccesstoken",
        identity_provider="egi.eu",
        protocol="openid",
        project_id="p",
        access_token_file=token_file,
    )
    shipped = dumps(auth)
    assert JWT.encode() not in shipped
    newer = JWT.replace("c2ln", "bmV3")
    token_file.write_text(newer)
    assert loads(shipped).token_source.get() == newer  # read where it runs, at each login


def fresh_passcode(server: SwiftServer) -> str:
    """tester's TOTP passcode with at least 10 s of its 30 s window left (Keystone accepts only
    the current window)."""
    import time

    left = 30 - time.time() % 30
    if left < 10:
        time.sleep(left + 0.1)
    assert server.keystone is not None
    return server.keystone.totp_passcode()


@pytest.mark.parametrize("auth_type", ["v3totp", "v3multifactor"])
def test_totp_and_multifactor_logins(
    swift_server: SwiftServer, swift_container: str, auth_type: str
) -> None:
    env = swift_server.os_env("password")
    options: dict[str, object] = {
        "auth_type": auth_type,
        "auth_url": env["OS_AUTH_URL"],
        "username": "tester",
        "user_domain_name": "Default",
        "project_name": "test",
        "project_domain_name": "Default",
        "passcode": fresh_passcode(swift_server),
    }
    if auth_type == "v3multifactor":
        options |= {"auth_methods": "v3password,v3totp", "password": env["OS_PASSWORD"]}
    auth = swift_auth(**options)
    assert auth.identity().project_id == swift_server.keystone_project_id
    assert "passcode" not in repr(auth) and str(options["passcode"]) not in repr(auth)
    roundtrip(f"swift://{swift_container}/{auth_type}.zarr", auth=auth)
    wrong = {**options, "passcode": "000000" if options["passcode"] != "000000" else "111111"}
    with pytest.raises(PermissionError, match=r"rejected the v3\w+ credentials: check .*PASSCODE"):
        swift_auth(**wrong).get()
