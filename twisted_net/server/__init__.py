"""
The servers: the TCP sessions and their framings, the UDP protocol, and what
stands beside them (limits, refusals, metrics, listening services, workers).

Public Twisted API only: everything here runs unchanged on any reactor.
"""
