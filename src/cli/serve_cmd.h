/* `rvisor serve`: runs the monitor and its control socket. */
#ifndef RVISOR_SERVE_CMD_H
#define RVISOR_SERVE_CMD_H

/* argv[0] is "serve". Returns the exit status. */
int serve_command(int argc, char **argv);

#endif
