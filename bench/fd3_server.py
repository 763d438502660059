#!/usr/bin/python3
# A server that serves only from fd 3 (socket activation), answering each connection
# with its PID; on SIGTERM it finishes the connection at hand and exits.
import os, signal, socket, sys
if os.environ.get('LISTEN_PID') != str(os.getpid()):
    sys.exit('no socket for me: LISTEN_PID=%s' % os.environ.get('LISTEN_PID'))
s = socket.socket(fileno=3)
s.settimeout(0.02)
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
while not stop:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(None)
    c.sendall(b'%d\n' % os.getpid())
    c.close()
