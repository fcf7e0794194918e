#include "vm/loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/host_file.h"

/* Reads exactly len bytes from the start of fd: a file that ends sooner
 * changed under us, and whatever lies past the size it had is not read. */
static bool read_exactly(int fd, uint8_t *buf, size_t len, const char *path, const char *what, char *err,
                         size_t errlen) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read %s '%s': %s", what, path, strerror(errno));
            return false;
        }
        if (n == 0) {
            snprintf(err, errlen, "%s '%s' ended after %zu of its %zu bytes (did it change while being read?)", what,
                     path, got, len);
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

bool load_file(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size, char *err,
               size_t errlen) {
    struct host_file_rules rules = {.what = what, .max_size = max_size, .max_name = "guest memory"};
    struct host_file f;
    if (!host_file_open(path, &rules, &f, err, errlen)) return false;
    uint8_t *buf = malloc((size_t)f.size);
    bool ok = buf != NULL;
    if (!ok) snprintf(err, errlen, "out of memory reading %s '%s'", what, path);
    ok = ok && read_exactly(f.fd, buf, (size_t)f.size, path, what, err, errlen);
    close(f.fd);
    if (!ok) {
        free(buf);
        return false;
    }
    *data = buf;
    *size = (size_t)f.size;
    return true;
}
