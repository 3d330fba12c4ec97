"""
C{python -m twisted_net.cli.bench}: the same as C{twisted-net bench}.
"""

from twisted_net.cli.bench.command import main

raise SystemExit(main())
