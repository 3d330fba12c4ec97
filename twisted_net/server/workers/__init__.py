"""
C{twist net --workers N}: a supervisor (L{twisted_net.server.workers.supervisor})
that binds the listening sockets and runs N worker processes
(L{twisted_net.server.workers.worker}).
"""
