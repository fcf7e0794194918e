/* The seccomp allow-list of the sandbox (sandbox.h): which system calls
 * rvisor may make once it is set up, and with which arguments. */
#ifndef RVISOR_SANDBOX_RULES_H
#define RVISOR_SANDBOX_RULES_H

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "monitor/sandbox.h"

/* Adds the rules for policy p to ctx (whose default action traps). pid is
 * this process's, the only one signals may be sent to. */
bool sandbox_rules_add(scmp_filter_ctx ctx, const struct sandbox_policy *p, pid_t pid, char *err, size_t errlen);

#endif
