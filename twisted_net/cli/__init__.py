"""
The C{twisted-net} command: the tutorial's clients as subcommands
(L{twisted_net.cli.main}), its console and progress output, and C{bench}.
"""

from twisted_net.cli.main import main

__all__ = ["main"]
