"""Benchmarks: zarrstores against the alternatives on the local servers, side by side.

``python -m benchmarks.run [--quick] [--only swift,s3,xarray,meta,sts,list]`` (``make bench``)
prints the tables and writes them to ``benchmarks/results/latest.md`` (a full run of every
section) or a temporary file (anything less). ``python -m benchmarks.profile swift|s3`` profiles
one contender's array round. Not part of the test suite; ``tests/test_benchmarks_smoke.py``
runs one tiny round.
"""
