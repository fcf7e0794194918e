#ifndef RVISOR_RUN_CMD_H
#define RVISOR_RUN_CMD_H

/* `rvisor run`: boots one VM on this terminal; returns the exit status. */
int run_command(int argc, char **argv);

#endif
