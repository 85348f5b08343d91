"""zarrstores: xarray/zarr on OpenStack Swift and MinIO/S3, with the auth research clouds use."""

__version__ = "0.1.0"
