__version__ = "0.1.0"

# The handshake response header naming the host and process that serves a connection (the server
# sets it, wsfleet-load counts the spread by it).
PROCESS_HEADER = "X-Wsfleet-Process"
