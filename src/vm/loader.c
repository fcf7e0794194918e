#include "vm/loader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool load_file(const char *path, const char *what, size_t max_size, uint8_t **data, size_t *size, char *err,
               size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s '%s': %s", what, path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%s' is not a regular file", what, path);
        fclose(f);
        return false;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "%s '%s' is empty", what, path);
        fclose(f);
        return false;
    }
    if ((uint64_t)st.st_size > max_size) {
        snprintf(err, errlen, "%s '%s' (%lld bytes) is larger than guest memory", what, path, (long long)st.st_size);
        fclose(f);
        return false;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf) {
        snprintf(err, errlen, "out of memory reading %s '%s'", what, path);
        fclose(f);
        return false;
    }
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        snprintf(err, errlen, "cannot read %s '%s'", what, path);
        free(buf);
        return false;
    }
    *data = buf;
    *size = got;
    return true;
}
