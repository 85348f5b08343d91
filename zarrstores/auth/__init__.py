"""Credentials for both backends: OIDC token sources, STS exchange with refresh, Swift auth.

Backends build their auth once (``swift_auth(**options)``, ``s3_credentials(endpoint, ...)``),
then only ask it for credentials, and to refresh them after the server rejected them.
"""

from ._secret import Secret
from .adapters import (
    aiobotocore_session,
    botocore_credentials,
    minio_credentials_provider,
    obstore_credential_provider,
)
from .errors import (
    AuthConnectionError,
    AuthError,
    ConfigurationError,
    STSError,
    SwiftAuthError,
    TokenError,
    TokenExpiredError,
    TokenNotFoundError,
    ZarrstoresError,
)
from .export import format_exports, s3_exports, swift_exports
from .keystone import KeystoneAuth
from .loading import (
    acquire_token,
    endpoint_from_env,
    getenv_auth,
    mc_alias,
    s3_credentials,
    swift_auth,
    swift_auth_from_env,
)
from .s3 import AnonymousS3, S3CredentialProvider, S3Credentials, StaticS3Credentials
from .sts import STSCredentials, assume_role_with_web_identity
from .swift import AnonymousSwift, PreAuth, SwiftAuth, SwiftCredentials, TempAuth
from .tokens import (
    CallableToken,
    EnvToken,
    FileToken,
    StaticToken,
    TokenFilePermissionWarning,
    TokenInfo,
    TokenSource,
    decode_claims,
    find_token,
    token_source,
)

__all__ = [
    "AnonymousS3",
    "AnonymousSwift",
    "AuthConnectionError",
    "AuthError",
    "CallableToken",
    "ConfigurationError",
    "EnvToken",
    "FileToken",
    "KeystoneAuth",
    "PreAuth",
    "S3CredentialProvider",
    "S3Credentials",
    "STSCredentials",
    "STSError",
    "Secret",
    "StaticS3Credentials",
    "StaticToken",
    "SwiftAuth",
    "SwiftAuthError",
    "SwiftCredentials",
    "TempAuth",
    "TokenError",
    "TokenExpiredError",
    "TokenFilePermissionWarning",
    "TokenInfo",
    "TokenNotFoundError",
    "TokenSource",
    "ZarrstoresError",
    "acquire_token",
    "aiobotocore_session",
    "assume_role_with_web_identity",
    "botocore_credentials",
    "decode_claims",
    "endpoint_from_env",
    "find_token",
    "format_exports",
    "getenv_auth",
    "mc_alias",
    "minio_credentials_provider",
    "obstore_credential_provider",
    "s3_credentials",
    "s3_exports",
    "swift_auth",
    "swift_auth_from_env",
    "swift_exports",
    "token_source",
]
