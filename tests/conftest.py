"""Session-wide real servers on 127.0.0.1, started by the package's own launchers."""

from fixtures_net import *  # noqa: F403
from fixtures_rgw import *  # noqa: F403
from fixtures_s3 import *  # noqa: F403
from fixtures_swift import *  # noqa: F403
