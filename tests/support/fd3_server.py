#!/usr/bin/python3
# A server that serves only from fd 3 (socket activation): it refuses to run unless
# LISTEN_PID is its own PID and LISTEN_FDS is 1, answers each connection with its PID,
# and on SIGTERM finishes the connection at hand and exits. Used by the socket tests
# and `make bench`.
import os, signal, socket, sys
if os.environ.get('LISTEN_PID') != str(os.getpid()) or os.environ.get('LISTEN_FDS') != '1':
    sys.exit('not for me: LISTEN_PID=%s LISTEN_FDS=%s' % (os.environ.get('LISTEN_PID'), os.environ.get('LISTEN_FDS')))
s = socket.socket(fileno=3)
s.settimeout(0.02)
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
print('serving %s from fd 3' % os.environ.get('LISTEN_FDNAMES'), flush=True)
while not stop:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(None)
    c.sendall(b'%d\n' % os.getpid())
    c.close()
