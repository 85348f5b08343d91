"""Benchmarks: zarrstores against the alternatives on the local servers, side by side.

Run ``python -m benchmarks.run [--quick] [--only swift|s3|xarray|meta|sts|list]``; the table
goes to the terminal and to ``benchmarks/results/latest.md``. Not part of the test suite.
"""
