"""
The C{twist net} plugin: only the ServiceMaker; everything else lives in
the C{twisted_net} package.
"""

from twisted.application.service import ServiceMaker

TwistedNet = ServiceMaker(
    "twisted-net",
    "twisted_net.tap",
    "TCP and UDP greeting server from the classic socket tutorial.",
    "net",
)
