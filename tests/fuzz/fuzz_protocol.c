/* libFuzzer harness: the control API's request parser (api/protocol.h).
 * The input is one request line as the server hands it over (without its
 * newline): it is parsed, checked, and freed. A parse that succeeds must
 * give back a request whose strings are all readable. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/protocol.h"

static void touch(const char *s) {
    if (s) (void)strlen(s);
}

static void check(bool ok) {
    if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct api_request req;
    char err[256];
    if (api_parse_request((const char *)data, size, &req, err, sizeof err)) {
        /* Everything a handler reads: must point into req.root, alive until the free. */
        touch(req.spec.kernel);
        touch(req.spec.initrd);
        touch(req.spec.append);
        touch(req.spec.bios);
        check(req.spec.ndrives <= VM_MAX_DRIVES && req.spec.nnets <= VM_MAX_NETS);
        for (unsigned i = 0; i < req.spec.ndrives; i++) check(req.spec.drives[i] && *req.spec.drives[i]);
        for (unsigned i = 0; i < req.spec.nnets; i++) check(req.spec.nets[i] && *req.spec.nets[i]);
        if (req.op == API_OP_CREATE) { /* what the header promises of a create */
            check(req.spec.kernel || req.spec.bios);
            check(req.spec.cpus >= 1 && req.spec.cpus <= VM_MAX_HARTS);
            check(req.spec.mem_size >= (1u << 20) && req.spec.mem_size % 4096 == 0);
            check(req.spec.mem_min <= req.spec.mem_size);
            check(req.spec.shares >= 1 && req.spec.shares <= 100000 && req.spec.cap_percent <= 100);
            check(strlen(req.spec.share_group) <= VM_NAME_MAX);
        }
        if (req.op != API_OP_LIST && req.op != API_OP_MEMORY && req.op != API_OP_SHUTDOWN)
            check(api_valid_name(req.name));
        touch(req.file);
        touch(req.uri);
        api_request_free(&req);
    } else {
        (void)strlen(err);
    }
    return 0;
}
