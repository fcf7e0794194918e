/* The control socket: serves the protocol of api/protocol.h on a Unix stream
 * socket, one thread per connection. The socket file is created mode 0600
 * and removed when the server closes; each peer is also checked with
 * SO_PEERCRED, so only the monitor's own uid and root are served even if
 * the file's mode is changed.
 *
 * A client can hold up nobody but itself: its connection has its own
 * thread, its socket is non-blocking, and the server holds no lock while it
 * waits on it. It gets one reply at a time (requests pipelined behind it
 * wait in the socket until the reply before them is taken), so what the
 * server keeps for a client is bounded by one reply. A client that leaves a
 * request unfinished for API_REQUEST_TIMEOUT_MS, or takes none of its reply
 * or console output for API_SEND_TIMEOUT_MS, is dropped. A connection
 * between requests may stay idle. */
#ifndef RVISOR_API_SERVER_H
#define RVISOR_API_SERVER_H

#include <stddef.h>

struct monitor;
struct api_server;

/* Limits (see README.md, "The control socket"). */
#define API_MAX_CONNECTIONS 64        /* connections at once; more get "busy" */
#define API_MAX_CONSOLE_CLIENTS 16    /* console streams at once, of those connections */
#define API_REQUEST_TIMEOUT_MS 10000  /* from a request's first byte to its newline */
#define API_SEND_TIMEOUT_MS 30000     /* a client that takes no output for this long is dropped */

/* Creates the socket at path and listens. A stale socket file left by a dead
 * monitor is replaced; a live one, or any other file, is an error. Returns
 * NULL with a message in err on failure. */
struct api_server *api_server_open(struct monitor *m, const char *path, char *err, size_t errlen);

/* Serves until stop_fd (if >= 0) becomes readable, api_server_stop() is
 * called, or a client sends {"op": "shutdown"}. Returns 0, or -1 with a
 * message in err if the server could not go on. Run it in one thread only. */
int api_server_run(struct api_server *s, int stop_fd, char *err, size_t errlen);

/* Changes the two timeouts above (milliseconds, > 0) for connections
 * accepted from now on; for tests. */
void api_server_set_timeouts(struct api_server *s, int request_ms, int send_ms);

/* Makes api_server_run return; callable from any thread or a client thread. */
void api_server_stop(struct api_server *s);

/* Ends every connection (console streams included), waits for their threads,
 * closes and removes the socket file, frees the server. */
void api_server_close(struct api_server *s);

/* All of the above: open, run, close. Returns 0 or -1 with a message in err. */
int api_serve(struct monitor *m, const char *path, int stop_fd, char *err, size_t errlen);

#endif
