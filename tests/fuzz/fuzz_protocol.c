/* libFuzzer harness: the control API's request parser (api/protocol.h).
 * The input is one request line as the server hands it over (without its
 * newline): it is parsed, checked, and freed. A parse that succeeds must
 * give back a request whose strings are all readable. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/protocol.h"

static void touch(const char *s) {
    if (s) (void)strlen(s);
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
        for (unsigned i = 0; i < req.spec.ndrives && i < VM_MAX_DRIVES; i++) touch(req.spec.drives[i]);
        for (unsigned i = 0; i < req.spec.nnets && i < VM_MAX_NETS; i++) touch(req.spec.nets[i]);
        touch(req.file);
        touch(req.uri);
        (void)api_valid_name(req.name);
        api_request_free(&req);
    } else {
        (void)strlen(err);
    }
    return 0;
}
