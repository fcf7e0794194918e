/* Which engine runs a VM's harts, and its names on the command line and
 * in the API. */
#ifndef RVISOR_ENGINE_H
#define RVISOR_ENGINE_H

#include <stdbool.h>
#include <string.h>

enum vm_engine {
    VM_ENGINE_DEFAULT, /* the translator where the host has a backend, else the interpreter */
    VM_ENGINE_JIT,
    VM_ENGINE_INTERP,
};

/* Bounds of a hart's translated-code buffer (`--jit-cache`, the API's "jit_cache"). */
#define VM_JIT_CACHE_MIN (1ull << 20)
#define VM_JIT_CACHE_MAX (4ull << 30)

/* "jit" or "interp"; false for anything else. */
static inline bool vm_engine_parse(const char *name, enum vm_engine *out) {
    if (!strcmp(name, "jit")) *out = VM_ENGINE_JIT;
    else if (!strcmp(name, "interp")) *out = VM_ENGINE_INTERP;
    else return false;
    return true;
}

/* The name of a chosen engine (vm_create resolves VM_ENGINE_DEFAULT). */
static inline const char *vm_engine_name(enum vm_engine e) {
    return e == VM_ENGINE_JIT ? "jit" : e == VM_ENGINE_INTERP ? "interp" : "default";
}

#endif
