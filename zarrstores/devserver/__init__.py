"""Real local servers for tests, the demo and ``zarrstores serve``: Swift, Keystone, OIDC, S3."""
