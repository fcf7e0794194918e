/* The rvisor commands that talk to a running monitor (`rvisor serve`) over
 * its control socket: create, start, pause, resume, stop, destroy, stats,
 * ls, console, shutdown. */
#ifndef RVISOR_CLIENT_H
#define RVISOR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* The default control socket: $XDG_RUNTIME_DIR/rvisor.sock, or
 * /tmp/rvisor-UID.sock when XDG_RUNTIME_DIR is unset. */
void client_default_socket(char *buf, size_t len);

/* True if name is one of the client commands. */
bool client_is_command(const char *name);

/* Runs a client command; argv[0] is its name. Returns the exit status:
 * 0 done, 1 error (message on stderr). */
int client_command(int argc, char **argv);

/* One request to the monitor at socket_path; the ok reply (the caller puts
 * it), or NULL after printing the error. */
struct json_object;
struct json_object *client_request(const char *socket_path, const char *op, const char *name);

#endif
