"""
C{twist net --workers N}: a supervisor (L{twisted_net.server.workers.supervisor})
binds the listening sockets (L{twisted_net.server.workers.sockets}) and runs N
worker processes (L{twisted_net.server.workers.pool}), each told what to serve
by a L{twisted_net.server.workers.spec.WorkerSpec} and running
L{twisted_net.server.workers.worker}.
"""
