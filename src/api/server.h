/* The control socket: serves the protocol of api/protocol.h on a Unix stream
 * socket, one thread per connection. The socket file is created mode 0600
 * (only its owner may connect) and removed when the server closes. */
#ifndef RVISOR_API_SERVER_H
#define RVISOR_API_SERVER_H

#include <stddef.h>

struct monitor;
struct api_server;

#define API_MAX_CONNECTIONS 64

/* Creates the socket at path and listens. A stale socket file left by a dead
 * monitor is replaced; a live one, or any other file, is an error. Returns
 * NULL with a message in err on failure. */
struct api_server *api_server_open(struct monitor *m, const char *path, char *err, size_t errlen);

/* Serves until stop_fd (if >= 0) becomes readable, api_server_stop() is
 * called, or a client sends {"op": "shutdown"}. Returns 0, or -1 with a
 * message in err if the server could not go on. Run it in one thread only. */
int api_server_run(struct api_server *s, int stop_fd, char *err, size_t errlen);

/* Makes api_server_run return; callable from any thread or a client thread. */
void api_server_stop(struct api_server *s);

/* Ends every connection (console streams included), waits for their threads,
 * closes and removes the socket file, frees the server. */
void api_server_close(struct api_server *s);

/* All of the above: open, run, close. Returns 0 or -1 with a message in err. */
int api_serve(struct monitor *m, const char *path, int stop_fd, char *err, size_t errlen);

#endif
