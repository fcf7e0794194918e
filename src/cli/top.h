#ifndef RVISOR_TOP_H
#define RVISOR_TOP_H

/* `rvisor top`: live per-VM statistics from a running monitor. */
int top_command(int argc, char **argv);

#endif
